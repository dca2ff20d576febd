"""Compact number arrays for the HTML pages' embedded JSON: small integers in base64 instead of decimal text.

A packed array is ``{"packed": "<dtype>", "b64": "<little-endian bytes, base64>", "div": D}``; its values are the
integers divided by ``D`` (1 when absent). Numbers that were rounded to ``d`` decimals pack as integers with
``D = 10**d``, and unpack to exactly the doubles their decimal text parsed to (``i / 10**d`` is correctly rounded,
as the parse is), so a page reads the same numbers either way, in about a third of the bytes. The page's script
unpacks them into plain arrays when it loads (``unpack`` in the templates); :func:`unpack_tree` does the same for
Python readers.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

_KINDS = (np.uint8, np.int8, np.uint16, np.int16, np.int32)


def pack(values: Any, decimals: int = 0) -> Any:
    """``values`` (numbers) rounded to ``decimals`` and packed in the smallest integer type that holds them.

    ``None`` stays ``None``; values that do not fit 32-bit integers (or are not finite) are returned as a plain list
    of rounded numbers instead.
    """
    if values is None:
        return None
    x = np.asarray(values, dtype=np.float64).ravel()
    scaled = np.rint(x * 10.0**decimals) if decimals else np.rint(x)
    if not np.isfinite(scaled).all() or (len(scaled) and np.abs(scaled).max() > np.iinfo(np.int32).max):
        return np.round(x, decimals).tolist()
    lo, hi = (float(scaled.min()), float(scaled.max())) if len(scaled) else (0.0, 0.0)
    kind = next(k for k in _KINDS if np.iinfo(k).min <= lo and hi <= np.iinfo(k).max)
    out = {"packed": np.dtype(kind).name, "b64": base64.b64encode(scaled.astype(np.dtype(kind).newbyteorder("<")).tobytes())
           .decode("ascii")}
    if decimals:
        out["div"] = 10**decimals
    return out


def is_packed(value: Any) -> bool:
    """Whether ``value`` is a packed array."""
    return isinstance(value, dict) and "packed" in value and "b64" in value


def unpack(value: dict[str, Any]) -> list[float] | list[int]:
    """The numbers of a packed array, as a list (ints when it has no divisor)."""
    ints = np.frombuffer(base64.b64decode(value["b64"]), dtype=np.dtype(value["packed"]).newbyteorder("<"))
    div = value.get("div", 1)
    return ints.astype(np.int64).tolist() if div == 1 else (ints.astype(np.float64) / div).tolist()


def unpack_tree(obj: Any) -> Any:
    """``obj`` (parsed JSON) with every packed array inside replaced by its list of numbers."""
    if is_packed(obj):
        return unpack(obj)
    if isinstance(obj, dict):
        return {k: unpack_tree(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], (dict, list)):
        return [unpack_tree(v) for v in obj]
    return obj

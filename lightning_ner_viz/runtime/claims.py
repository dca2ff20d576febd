"""Which callback writes where, per Trainer: two writers of one file or snapshot root are refused at setup."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CLAIMS: weakref.WeakKeyDictionary[Any, dict[Path, tuple[int, str]]] = weakref.WeakKeyDictionary()


def claim_outputs(trainer: Any, owner: object, outputs: Iterable[tuple[str, Path | None]]) -> None:
    """Record that ``owner`` writes each of ``outputs`` (description, path) for ``trainer``.

    The same owner may claim its outputs again (a second ``fit`` or a ``validate``). Nothing is
    recorded when a claim is refused.

    Raises:
        ValueError: when two outputs resolve to the same path, naming both and what to change.
    """
    try:
        claims = _CLAIMS.setdefault(trainer, {})
    except TypeError:  # a trainer that cannot be weakly referenced: check this owner's outputs only
        claims = {}
    mine: dict[Path, str] = {}
    for what, path in outputs:
        if path is None:
            continue
        key = Path(path).resolve()
        holder = claims.get(key)
        other = mine.get(key) or (holder[1] if holder is not None and holder[0] != id(owner) else None)
        if other is not None:
            raise ValueError(
                f"{what} and {other} both write {key}. Give each its own path (a sink's `path=`/`save_dir=`, "
                "or a different `save_dir=` per EmbeddingDriftCallback, under which default outputs go)."
            )
        mine[key] = what
    claims.update({key: (id(owner), what) for key, what in mine.items()})

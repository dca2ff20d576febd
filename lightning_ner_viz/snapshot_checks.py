"""Checks that a snapshot's files are the ones :meth:`~lightning_ner_viz.snapshot.Snapshot.save` writes; each
failure is a ``ValueError`` naming the file and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz.keys import STAGES

FORMAT_VERSION = 1
"""The snapshot format this version writes and reads."""

INT_FIELDS = ("token_id", "sentence_id", "position", "gold", "pred")
"""The per-token integer arrays of ``arrays.npz``."""


def damaged(file: Path, reason: str) -> ValueError:
    return ValueError(
        f"The snapshot file {file} is damaged ({reason}). "
        f"Delete {file.parent}, or re-run validation to write it again."
    )


_META_LISTS = ("token", "word", "label_names", "views")


def check_meta(meta: Any, path: Path) -> None:
    """Refuse a ``meta.json`` that is not the object :meth:`Snapshot.save` writes."""
    file = path / "meta.json"
    if not isinstance(meta, dict):
        raise damaged(file, f"it holds a JSON {type(meta).__name__}, not an object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"The snapshot in {path} is not one this version reads (format {meta.get('format_version')!r} "
            f"in {file}, expected {FORMAT_VERSION}). Read it with the version that wrote it, or delete it."
        )
    missing = [k for k in ("epoch", "step", *_META_LISTS, "sentences") if k not in meta]
    if missing:
        raise damaged(file, f"keys {missing} are missing")
    wrong = [k for k in ("epoch", "step", "run") if k in meta and (not isinstance(meta[k], int) or isinstance(meta[k], bool))]
    if meta.get("stage", "fit") not in STAGES:
        wrong.append("stage")
    wrong += [k for k in _META_LISTS if not isinstance(meta[k], list) or not all(isinstance(x, str) for x in meta[k])]
    sentences = meta["sentences"]
    if not isinstance(sentences, dict) or not all(
        isinstance(v, str) and k.lstrip("-").isdigit() for k, v in sentences.items()
    ):
        wrong.append("sentences")
    if not isinstance(meta.get("stats", {}), dict):
        wrong.append("stats")
    if wrong:
        raise damaged(file, f"keys {wrong} have the wrong type (epoch, step, run: int; stage: {' or '.join(STAGES)}; "
                      f"{', '.join(_META_LISTS)}: "
                      "lists of strings; sentences: sentence id to text; stats: an object)")


def check_arrays(arrays: dict[str, np.ndarray], views: list[str], path: Path) -> None:
    """Refuse an ``arrays.npz`` that lacks a field or a view meta.json names, or holds one of the wrong shape."""
    missing = [k for k in INT_FIELDS if k not in arrays] + [f"view.{v}" for v in views if f"view.{v}" not in arrays]
    if missing:
        raise damaged(path / "arrays.npz", f"arrays {missing} are missing")
    shapes = {k: arrays[k].ndim for k in INT_FIELDS if arrays[k].ndim != 1}
    shapes.update({f"view.{v}": arrays[f"view.{v}"].ndim for v in views if arrays[f"view.{v}"].ndim != 2})
    if shapes:
        raise damaged(path / "arrays.npz", f"arrays of the wrong number of dimensions {shapes} "
                       f"(fields: 1, views: 2)")

"""The Snapshot: one validation's sampled tokens, the only data type that crosses stages.

Snapshots are saved as ``arrays.npz`` (loaded with ``allow_pickle=False``) plus
``meta.json``; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz.keys import STAGES, SnapshotKey

POSITION_BITS = 20
"""A token id is ``sentence_id << POSITION_BITS | position``: stable across epochs."""

LOADER_BITS = 32
"""A sentence id is ``dataloader_idx << LOADER_BITS | example index``: loaders' ids never collide."""

_FORMAT_VERSION = 1
_INT_FIELDS = ("token_id", "sentence_id", "position", "gold", "pred")


def make_token_id(sentence_id: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Combine sentence ids and positions into stable int64 token ids."""
    return (np.asarray(sentence_id, dtype=np.int64) << POSITION_BITS) | np.asarray(position, dtype=np.int64)


def split_token_id(token_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sentence ids and positions of token ids (the inverse of :func:`make_token_id`)."""
    ids = np.asarray(token_id, dtype=np.int64)
    return ids >> POSITION_BITS, ids & ((1 << POSITION_BITS) - 1)


def loader_of(sentence_id: np.ndarray) -> np.ndarray:
    """The validation dataloader index of each sentence id (0 unless ``dataloader_idx`` chose another, or ``"all"``)."""
    return np.asarray(sentence_id, dtype=np.int64) >> LOADER_BITS


def sentence_of(token_id: np.ndarray) -> np.ndarray:
    """The sentence id of each token id."""
    return np.asarray(token_id, dtype=np.int64) >> POSITION_BITS


@dataclass
class Snapshot:
    """One captured validation's sample of tokens (one per epoch by default; see :mod:`lightning_ner_viz.keys`).

    Every per-token field has length ``n_tokens`` and rows are aligned across fields.

    Attributes:
        epoch: the trainer's epoch when the tokens were captured.
        step: the trainer's global step.
        token_id: array of shape (n_tokens,), stable across epochs (see :func:`make_token_id`).
        sentence_id: array of shape (n_tokens,), the example's index in the validation set.
        position: array of shape (n_tokens,), the token's position in its example.
        token: the subword text of each token.
        word: the whole word each token belongs to.
        gold: array of shape (n_tokens,), gold label ids.
        pred: array of shape (n_tokens,), predicted label ids (argmax or CRF decode); -1 if unknown.
        views: view name (``hidden``, ``emissions``, ...) to an array of shape (n_tokens, n_features).
        label_names: label id to name.
        sentences: sentence id to its text, for hover text.
        sentence_tags: sentence id to ``(gold, pred)`` label-id arrays over every labelled
            token of that sentence (not only the sampled ones), for entity-level F1.
        stats: epoch counters (tokens seen, filtered, ...).
        groups: views whose rows are not tokens, by name: ``entities`` (one row per gold
            entity span: the mean hidden vector of its subwords, class = entity type) and
            ``cls`` (one row per sentence: its first token's hidden vector, class = the
            sentence's most frequent entity type).
        stage: ``"fit"`` or ``"validate"`` (a ``trainer.validate()`` call; at step 0, a baseline).
        run: for ``validate``: which of the callback's ``validate()`` calls; 0 for ``fit``.
    """

    epoch: int
    step: int
    token_id: np.ndarray
    sentence_id: np.ndarray
    position: np.ndarray
    token: list[str]
    word: list[str]
    gold: np.ndarray
    pred: np.ndarray
    views: dict[str, np.ndarray]
    label_names: list[str]
    sentences: dict[int, str] = field(default_factory=dict)
    sentence_tags: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Snapshot] = field(default_factory=dict)
    stage: str = "fit"
    run: int = 0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r} is not one of {STAGES}.")
        n = len(self.token_id)
        for name in _INT_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        lengths = {name: len(getattr(self, name)) for name in (*_INT_FIELDS, "token", "word")}
        lengths.update({f"views[{k!r}]": len(v) for k, v in self.views.items()})
        wrong = {k: v for k, v in lengths.items() if v != n}
        if wrong:
            raise ValueError(f"Snapshot fields must all have {n} rows (len(token_id)); got {wrong}.")

    def __len__(self) -> int:
        return len(self.token_id)

    @property
    def key(self) -> SnapshotKey:
        """Which validation this is: stage, epoch, step and run (its ``name`` is the directory name)."""
        return SnapshotKey(self.stage, int(self.epoch), int(self.step), int(self.run))  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """How pictures name it, e.g. ``epoch 2 · step 120`` or ``baseline · validate 0 · step 0``."""
        return self.key.label

    @property
    def correct(self) -> np.ndarray:
        """Boolean array of shape (n_tokens,): prediction equals gold."""
        return self.gold == self.pred

    def gold_names(self) -> list[str]:
        """Gold label names, one per token."""
        return [self.label_names[i] for i in self.gold]

    def pred_names(self) -> list[str]:
        """Predicted label names, one per token (``?`` when unknown)."""
        return [self.label_names[i] if 0 <= i < len(self.label_names) else "?" for i in self.pred]

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the snapshot atomically to ``directory`` (created; replaced if present).

        Files go to a temporary sibling first and are renamed into place, so a crash
        never leaves a half-written snapshot under the final name.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tmp.chmod(0o755)
            arrays = {name: getattr(self, name) for name in _INT_FIELDS}
            arrays.update({f"view.{k}": np.asarray(v, dtype=np.float32) for k, v in self.views.items()})
            arrays.update(_flatten_tags(self.sentence_tags))
            np.savez(tmp / "arrays.npz", **arrays)
            meta = {
                "format_version": _FORMAT_VERSION,
                "epoch": int(self.epoch),
                "step": int(self.step),
                "stage": self.stage,
                "run": int(self.run),
                "token": list(self.token),
                "word": list(self.word),
                "label_names": list(self.label_names),
                "views": list(self.views),
                "sentences": {str(k): v for k, v in self.sentences.items()},
                "stats": self.stats,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            for name, group in self.groups.items():
                group.save(tmp / name)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Snapshot:
        """Read a snapshot written by :meth:`save`, without unpickling anything.

        Raises:
            ValueError: when the files are missing, truncated or malformed (JSON of the
                wrong shape, missing keys, wrong types, arrays of mismatched lengths),
                naming the file and what to do.
        """
        path = Path(directory)
        file = path / "meta.json"
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
            file = path / "arrays.npz"
            with np.load(file, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError as err:
            raise ValueError(f"{path} is not a complete snapshot: {err.filename} is missing. "
                             f"Delete {path}, or re-run validation to write it again.") from err
        except (json.JSONDecodeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
            raise _damaged(file, f"{type(err).__name__}: {err}") from err
        _check_meta(meta, path)
        _check_arrays(arrays, meta["views"], path)
        try:
            snapshot = cls(
                epoch=meta["epoch"],
                step=meta["step"],
                **{k: arrays[k] for k in _INT_FIELDS},
                token=meta["token"],
                word=meta["word"],
                views={v: arrays[f"view.{v}"] for v in meta["views"]},
                label_names=meta["label_names"],
                sentences={int(k): v for k, v in meta["sentences"].items()},
                stats=meta.get("stats", {}),
                sentence_tags=_unflatten_tags(arrays),
                stage=meta.get("stage", "fit"),
                run=meta.get("run", 0),
            )
        except (ValueError, TypeError, KeyError, IndexError) as err:
            reason = f"it does not match {path / 'meta.json'}: {str(err).rstrip('.')}"
            raise _damaged(path / "arrays.npz", reason) from err
        snapshot.groups = {d.name: cls.load(d) for d in sorted(path.iterdir()) if (d / "meta.json").is_file()}
        return snapshot


def _damaged(file: Path, reason: str) -> ValueError:
    return ValueError(
        f"The snapshot file {file} is damaged ({reason}). "
        f"Delete {file.parent}, or re-run validation to write it again."
    )


_META_LISTS = ("token", "word", "label_names", "views")


def _check_meta(meta: Any, path: Path) -> None:
    """Refuse a ``meta.json`` that is not the object :meth:`Snapshot.save` writes."""
    file = path / "meta.json"
    if not isinstance(meta, dict):
        raise _damaged(file, f"it holds a JSON {type(meta).__name__}, not an object")
    if meta.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"The snapshot in {path} is not one this version reads (format {meta.get('format_version')!r} "
            f"in {file}, expected {_FORMAT_VERSION}). Read it with the version that wrote it, or delete it."
        )
    missing = [k for k in ("epoch", "step", *_META_LISTS, "sentences") if k not in meta]
    if missing:
        raise _damaged(file, f"keys {missing} are missing")
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
        raise _damaged(file, f"keys {wrong} have the wrong type (epoch, step, run: int; stage: {' or '.join(STAGES)}; {', '.join(_META_LISTS)}: "
                       "lists of strings; sentences: sentence id to text; stats: an object)")


def _check_arrays(arrays: dict[str, np.ndarray], views: list[str], path: Path) -> None:
    """Refuse an ``arrays.npz`` that lacks a field or a view meta.json names, or holds one of the wrong shape."""
    missing = [k for k in _INT_FIELDS if k not in arrays] + [f"view.{v}" for v in views if f"view.{v}" not in arrays]
    if missing:
        raise _damaged(path / "arrays.npz", f"arrays {missing} are missing")
    shapes = {k: arrays[k].ndim for k in _INT_FIELDS if arrays[k].ndim != 1}
    shapes.update({f"view.{v}": arrays[f"view.{v}"].ndim for v in views if arrays[f"view.{v}"].ndim != 2})
    if shapes:
        raise _damaged(path / "arrays.npz", f"arrays of the wrong number of dimensions {shapes} "
                       f"(fields: 1, views: 2)")


def _flatten_tags(tags: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    sids = [np.full(len(g), sid, dtype=np.int64) for sid, (g, _) in tags.items()]
    empty = np.zeros(0, dtype=np.int64)
    return {
        "tags.sentence_id": np.concatenate(sids) if sids else empty,
        "tags.gold": np.concatenate([g for g, _ in tags.values()]).astype(np.int64) if tags else empty,
        "tags.pred": np.concatenate([p for _, p in tags.values()]).astype(np.int64) if tags else empty,
    }


def _unflatten_tags(arrays: dict[str, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    if "tags.sentence_id" not in arrays:
        return {}
    sids, gold, pred = arrays["tags.sentence_id"], arrays["tags.gold"], arrays["tags.pred"]
    return {int(s): (gold[sids == s], pred[sids == s]) for s in np.unique(sids)}

"""The Snapshot: one validation's sampled tokens, the only data type that crosses stages.

Snapshots are saved as ``arrays.npz`` (loaded with ``allow_pickle=False``) plus
``meta.json``; nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.analysis.token_dynamics import DYNAMICS_FILE, PROBS_FILE, TEXTS_FILE, TokenDynamics
from lightning_ner_viz.keys import STAGES, SnapshotKey
from lightning_ner_viz.store import FORMAT_VERSION, atomic_directory
from lightning_ner_viz.store import INT_FIELDS as _INT_FIELDS
from lightning_ner_viz.store import check_arrays as _check_arrays
from lightning_ner_viz.store import check_meta as _check_meta
from lightning_ner_viz.store import damaged as _damaged

POSITION_BITS = 20
"""A token id is ``sentence_id << POSITION_BITS | position``: stable across epochs."""

LOADER_BITS = 32
"""A sentence id is ``dataloader_idx << LOADER_BITS | example index``: loaders' ids never collide."""


LAYERS_FILE = "layers.npz"
"""A snapshot's encoder layers (``Snapshot.layers``), float16, one array per layer in input-side-first order."""


def load_layers(directory: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The encoder layers saved beside the snapshot in ``directory`` (float32; empty when it has none).

    Raises:
        ValueError: when the file is damaged, naming it.
    """
    file = Path(directory) / LAYERS_FILE
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {k: npz[k].astype(np.float32) for k in npz.files}
    except FileNotFoundError:
        return {}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise _damaged(file, f"{type(err).__name__}: {err}") from err


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
        confusion: int array of shape (n_labels, n_labels) over the **whole** validation set (every
            labelled token on every rank, not the sample): row = gold label, column = predicted; ``None``
            when the emissions were not captured.
        span_counts: int array of shape (n_types, 7) over the whole validation set: per entity type in
            ``span_types``, the span categories of
            :data:`~lightning_ner_viz.analysis.span_errors.SPAN_CATEGORIES`; ``None`` as ``confusion``.
        span_types: the entity types, the rows of ``span_counts``.
        dynamics: every labelled validation token's gold probability and prediction (the label issues'
            input), written beside the snapshot by :meth:`save`; :meth:`load` leaves it on disk (read it with
            ``TokenDynamics.load(directory)``), so it is ``None`` on a loaded snapshot.
        layers: with ``hidden_module="all"``, every encoder layer's rows of the sampled tokens, input side first
            (``embeddings``, ``layer_01``, ...), for the layer × epoch figures only (never projected). Saved as
            float16 in :data:`LAYERS_FILE`; :meth:`load` leaves them on disk (read them with :func:`load_layers`).
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
    confusion: np.ndarray | None = None
    span_counts: np.ndarray | None = None
    span_types: list[str] = field(default_factory=list)
    dynamics: TokenDynamics | None = None
    layers: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r} is not one of {STAGES}.")
        n = len(self.token_id)
        for name in _INT_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        lengths = {name: len(getattr(self, name)) for name in (*_INT_FIELDS, "token", "word")}
        lengths.update({f"views[{k!r}]": len(v) for k, v in self.views.items()})
        lengths.update({f"layers[{k!r}]": len(v) for k, v in self.layers.items()})
        wrong = {k: v for k, v in lengths.items() if v != n}
        if wrong:
            raise ValueError(f"Snapshot fields must all have {n} rows (len(token_id)); got {wrong}.")
        n_labels = len(self.label_names)
        if self.confusion is not None and np.shape(self.confusion) != (n_labels, n_labels):
            raise ValueError(f"confusion must have shape ({n_labels}, {n_labels}) (label_names); "
                             f"got {np.shape(self.confusion)}.")
        if self.span_counts is not None and np.shape(self.span_counts)[:1] != (len(self.span_types),):
            raise ValueError(f"span_counts must have one row per span type ({len(self.span_types)}); "
                             f"got shape {np.shape(self.span_counts)}.")

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
        with atomic_directory(target) as tmp:
            arrays = {name: getattr(self, name) for name in _INT_FIELDS}
            arrays.update({f"view.{k}": np.asarray(v, dtype=np.float32) for k, v in self.views.items()})
            arrays.update(_flatten_tags(self.sentence_tags))
            arrays.update({k: np.asarray(v, dtype=np.int64) for k, v in (("confusion", self.confusion),
                                                                        ("span_counts", self.span_counts)) if v is not None})
            np.savez(tmp / "arrays.npz", **arrays)
            meta = {
                "format_version": FORMAT_VERSION,
                "epoch": int(self.epoch),
                "step": int(self.step),
                "stage": self.stage,
                "run": int(self.run),
                "span_types": list(self.span_types),
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
            if self.dynamics is not None:
                _save_dynamics(self.dynamics, tmp, target)
            if self.layers:
                np.savez(tmp / LAYERS_FILE, **{k: np.asarray(v, dtype=np.float16) for k, v in self.layers.items()})
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
                confusion=arrays.get("confusion"),
                span_counts=arrays.get("span_counts"),
                span_types=list(meta.get("span_types", [])),
            )
        except (ValueError, TypeError, KeyError, IndexError) as err:
            reason = f"it does not match {path / 'meta.json'}: {str(err).rstrip('.')}"
            raise _damaged(path / "arrays.npz", reason) from err
        snapshot.groups = {d.name: cls.load(d) for d in sorted(path.iterdir()) if (d / "meta.json").is_file()}
        return snapshot


def _save_dynamics(dynamics: TokenDynamics, tmp: Path, target: Path) -> None:
    """Write the token dynamics beside the snapshot; a full disk loses them (with a warning), not the snapshot."""
    try:
        dynamics.save(tmp)
    except OSError as err:
        for name in (DYNAMICS_FILE, PROBS_FILE, TEXTS_FILE):
            with contextlib.suppress(OSError):
                (tmp / name).unlink(missing_ok=True)
        warn(f"Could not save the token dynamics beside {target} ({err}); the snapshot is saved, and the label "
             "issues leave this validation out.")


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

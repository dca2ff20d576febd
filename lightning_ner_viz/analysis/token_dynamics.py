"""Training dynamics of every labelled validation token: one validation's record, and their running history.

A :class:`TokenDynamics` is one captured validation of the **whole** validation set (not the sample):
per labelled token its gold label, predicted label, the probability of the gold label and the highest
probability of any other label (a few bytes per token), plus the full probability rows of that
validation only. It is saved beside the snapshot (:data:`DYNAMICS_FILE`, :data:`PROBS_FILE`,
:data:`TEXTS_FILE`); only the newest snapshot keeps its probability rows.

:class:`DynamicsHistory` folds the validations in one at a time into per-token running sums, so nothing
grows with the number of epochs: confidence (mean gold probability), variability (its population standard
deviation, as Dataset Cartography), correctness rate and prediction flips.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz.store import LABEL_PROBS_FILE as PROBS_FILE

DYNAMICS_FILE = "dynamics.npz"
TEXTS_FILE = "dynamics_texts.json"
SOURCES = ("softmax", "crf_marginals")


@dataclass
class SentenceText:
    """A validation sentence's token strings and each token's word index (for the issues' text)."""

    tokens: list[str]
    words: list[int]


@dataclass
class TokenDynamics:
    """One validation of every labelled token (sorted by ``token_id``).

    Attributes:
        token_id: int64 array of shape (n,), see :func:`~lightning_ner_viz.snapshot.make_token_id`.
        gold: array of shape (n,), the given label ids.
        pred: array of shape (n,), the predicted label ids (Viterbi path with a CRF, else argmax).
        gold_prob: array of shape (n,), the probability of the given label.
        other_prob: array of shape (n,), the highest probability of any other label.
        probs: array of shape (n, n_labels) (float16), or ``None`` once a newer validation replaced it.
        source: ``"softmax"`` (of the emissions) or ``"crf_marginals"``.
        seen: labelled tokens the validation saw; more than ``n`` when ``max_dynamics_tokens`` kept a subset.
        texts: sentence id to its text, for the sentences first seen in this validation.
        label_names: label id to name.
    """

    token_id: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    gold_prob: np.ndarray
    other_prob: np.ndarray
    probs: np.ndarray | None = None
    source: str = "softmax"
    seen: int = 0
    texts: dict[int, SentenceText] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.token_id)

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the three files into ``directory`` (a snapshot's, before it is renamed into place)."""
        path = Path(directory)
        np.savez_compressed(path / DYNAMICS_FILE, token_id=self.token_id.astype(np.int64),
                            gold=self.gold.astype(np.int16), pred=self.pred.astype(np.int16),
                            gold_prob=self.gold_prob.astype(np.float16), other_prob=self.other_prob.astype(np.float16))
        if self.probs is not None:
            np.save(path / PROBS_FILE, self.probs.astype(np.float16))
        meta = {"source": self.source, "seen": int(self.seen), "label_names": list(self.label_names),
                "texts": {str(k): [t.tokens, t.words] for k, t in self.texts.items()}}
        (path / TEXTS_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def exists(cls, directory: str | os.PathLike[str]) -> bool:
        """Whether ``directory`` holds a saved record."""
        return (Path(directory) / DYNAMICS_FILE).is_file()

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, probs: bool = True) -> TokenDynamics:
        """Read a record :meth:`save` wrote (``probs=False`` skips the probability rows).

        Raises:
            ValueError: when a file is damaged, naming it.
        """
        path = Path(directory)
        try:
            with np.load(path / DYNAMICS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in ("token_id", "gold", "pred", "gold_prob", "other_prob")}
            meta = json.loads((path / TEXTS_FILE).read_text(encoding="utf-8"))
            rows = np.load(path / PROBS_FILE, allow_pickle=False) if probs and (path / PROBS_FILE).is_file() else None
            texts = {int(k): SentenceText(list(v[0]), [int(w) for w in v[1]]) for k, v in meta["texts"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"The token dynamics in {path} are damaged ({type(err).__name__}: {err}). "
                             f"Delete {path / DYNAMICS_FILE} to leave that validation out of the label issues.") from err
        return cls(**arrays, probs=rows, source=str(meta.get("source", "softmax")), seen=int(meta.get("seen", 0)),
                   texts=texts, label_names=[str(n) for n in meta.get("label_names", [])])


class DynamicsHistory:
    """Per-token running sums over validations, added one at a time (each validation at most once).

    Tokens are kept sorted by id; a token missing from a validation simply has one epoch fewer (``epochs``).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.token_id = np.zeros(0, np.int64)
        self.gold = np.zeros(0, np.int64)
        self.epochs = np.zeros(0, np.int64)
        self._sum = np.zeros(0, np.float64)
        self._sum_sq = np.zeros(0, np.float64)
        self._margin = np.zeros(0, np.float64)
        self.correct = np.zeros(0, np.int64)
        self.flips = np.zeros(0, np.int64)
        self.last_pred = np.zeros(0, np.int64)

    def add(self, name: str, record: TokenDynamics) -> None:
        """Fold in the validation ``name`` (a second add of the same name is refused)."""
        if name in self.names:
            raise ValueError(f"{name} is already in the token dynamics; it would be counted twice.")
        self.names.append(name)
        ids = np.asarray(record.token_id, np.int64)
        if not np.array_equal(ids, self.token_id):
            self._grow(ids)
        at = np.searchsorted(self.token_id, ids)
        p = record.gold_prob.astype(np.float64)
        pred = record.pred.astype(np.int64)
        self.gold[at] = record.gold
        self.epochs[at] += 1
        self._sum[at] += p
        self._sum_sq[at] += p * p
        self._margin[at] += p - record.other_prob.astype(np.float64)
        self.correct[at] += pred == record.gold
        before = self.last_pred[at]
        self.flips[at] += (before >= 0) & (pred >= 0) & (before != pred)
        self.last_pred[at] = np.where(pred >= 0, pred, before)

    def _grow(self, ids: np.ndarray) -> None:
        union = np.union1d(self.token_id, ids)
        at = np.searchsorted(union, self.token_id)
        for name in ("gold", "epochs", "_sum", "_sum_sq", "_margin", "correct", "flips", "last_pred"):
            old = getattr(self, name)
            new = np.full(len(union), -1 if name == "last_pred" else 0, dtype=old.dtype)
            new[at] = old
            setattr(self, name, new)
        self.token_id = union

    def _per_epoch(self, total: np.ndarray) -> np.ndarray:
        return total / np.maximum(self.epochs, 1)

    @property
    def confidence(self) -> np.ndarray:
        """Mean probability of the given label over the validations, per token."""
        return self._per_epoch(self._sum)

    @property
    def variability(self) -> np.ndarray:
        """Population standard deviation of the gold probability over the validations, per token."""
        mean = self.confidence
        return np.sqrt(np.maximum(self._per_epoch(self._sum_sq) - mean * mean, 0.0))

    @property
    def correctness(self) -> np.ndarray:
        """Fraction of the validations whose prediction equals the given label, per token."""
        return self._per_epoch(self.correct.astype(np.float64))

    @property
    def mean_margin(self) -> np.ndarray:
        """Mean of (gold probability - highest other probability), per token, in [-1, 1]."""
        return self._per_epoch(self._margin)

    def summary(self) -> dict[str, Any]:
        """Counts for a log line: validations folded in and tokens tracked."""
        return {"validations": len(self.names), "tokens": len(self.token_id)}

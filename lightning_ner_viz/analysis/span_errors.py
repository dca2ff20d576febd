"""Entity-level results over whole sentences, as the standard span-error categories, per entity type.

Spans are read from BIO tag sequences exactly as seqeval reads them
(:func:`~lightning_ner_viz.analysis.entity_f1.entity_chunks`). Each predicted span falls in one
category, decided against the gold spans of its sentence, as nervaluate's ``strict`` and
``exact`` schemes decide it:

- ``correct``: a gold span with the same boundaries and type;
- ``wrong_type``: a gold span with the same boundaries and another type (counted for the gold type);
- ``wrong_boundary``: no such span, but it overlaps a gold span (counted for that gold type, the first if several);
- ``spurious``: it overlaps no gold span (counted for its own, predicted type).

A gold span that no predicted span overlaps is ``missed``. ``gold`` and ``predicted`` count the
spans, so entity F1 per type is ``2 * correct / (gold + predicted)``, as seqeval's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lightning_ner_viz.labels import OUTSIDE

SPAN_CATEGORIES = ("correct", "wrong_type", "wrong_boundary", "missed", "spurious", "gold", "predicted")
"""The columns of a span-count table (the last two are totals, not errors)."""

_COL = {name: i for i, name in enumerate(SPAN_CATEGORIES)}


def span_types(label_names: Sequence[str]) -> list[str]:
    """The entity types of BIO label names as seqeval reads them (what follows the first ``-``), in order of
    first appearance: the rows of a span-count table, the same on every rank."""
    return list(dict.fromkeys(n[1:].split("-", 1)[-1] or "_" for n in label_names if n[:1] not in (OUTSIDE, "")))


class SpanCounter:
    """Accumulates span categories per entity type over sentences (gold and predicted label ids).

    Works on label ids with numpy (no per-token Python), so a batch of sentences is counted at once
    (:meth:`add_batch`); the spans are seqeval's, as :func:`~lightning_ner_viz.analysis.entity_f1.entity_chunks`.

    Args:
        label_names: label id to BIO name.

    Attributes:
        types: the entity types, the rows of :attr:`counts`.
        counts: int array of shape (n_types, len(SPAN_CATEGORIES)).
    """

    def __init__(self, label_names: Sequence[str]) -> None:
        self.label_names = list(label_names)
        self.types = span_types(self.label_names)
        self.counts = np.zeros((len(self.types), len(SPAN_CATEGORIES)), dtype=np.int64)
        row = {t: i for i, t in enumerate(self.types)}
        # per label id (and one extra for "unknown", read as O): scheme code and type row (-1 for O)
        prefixes = [n[:1] if n[:1] in _CODES else "?" for n in self.label_names] + [OUTSIDE]
        self._code = np.array([_CODES.get(p, _OTHER) for p in prefixes], dtype=np.int8)
        self._type = np.array([-1 if p == OUTSIDE else row[n[1:].split("-", 1)[-1] or "_"]
                               for p, n in zip(prefixes, [*self.label_names, OUTSIDE])], dtype=np.int64)
        self._outside = len(self.label_names)

    def add(self, gold: np.ndarray, pred: np.ndarray) -> None:
        """Count one sentence: label ids of its labelled tokens, in order (a prediction < 0 reads as ``O``)."""
        gold, pred = np.asarray(gold), np.asarray(pred)
        self.add_batch(gold[None], pred[None], np.ones((1, len(gold)), dtype=bool))

    def add_batch(self, gold: np.ndarray, pred: np.ndarray, valid: np.ndarray) -> None:
        """Count a batch of sentences: arrays of shape (batch, seq_len); ``valid`` marks the labelled tokens
        (each row's labelled tokens, in order, are one sentence)."""
        order = np.argsort(~valid, axis=1, kind="stable")  # each row's labelled tokens first, in order
        keep = np.take_along_axis(valid, order, 1)
        flat = []
        for ids in (gold, pred):
            ids = np.where(keep, np.take_along_axis(np.asarray(ids), order, 1), self._outside)
            ids = np.where(ids < 0, self._outside, ids)
            flat.append(np.concatenate([ids, np.full((len(ids), 1), self._outside)], 1).ravel())  # O between rows
        self._tally(self._chunks(flat[0]), self._chunks(flat[1]))

    def _chunks(self, ids: np.ndarray) -> np.ndarray:
        """Chunks of one id sequence as rows ``(type row, first, last)``, by seqeval's (conlleval's) rules."""
        code, kind = self._code[ids], self._type[ids]
        prev_code = np.concatenate([[_O], code[:-1]])
        prev_kind = np.concatenate([[-1], kind[:-1]])
        changed = prev_kind != kind
        inside = (code != _O)
        ends = (np.isin(prev_code, (_E, _S)) | (np.isin(prev_code, (_B, _I)) & np.isin(code, (_B, _S, _O)))
                | ((prev_code != _O) & changed))
        starts = np.isin(code, (_B, _S)) | (np.isin(prev_code, (_E, _S, _O)) & np.isin(code, (_E, _I))) | (inside & changed)
        first = np.flatnonzero(starts)
        last = np.flatnonzero(ends) - 1
        return np.stack([kind[first], first, last[: len(first)]], 1) if len(first) else np.zeros((0, 3), np.int64)

    def _tally(self, gold: np.ndarray, pred: np.ndarray) -> None:
        """Count chunk rows ``(type row, first, last)`` of one sequence; gold chunks are sorted and disjoint."""
        col = _COL
        np.add.at(self.counts[:, col["gold"]], gold[:, 0], 1)
        np.add.at(self.counts[:, col["predicted"]], pred[:, 0], 1)
        span = int(max(gold[:, 2].max(initial=0), pred[:, 2].max(initial=0))) + 1
        gold_key, pred_key = gold[:, 1] * span + gold[:, 2], pred[:, 1] * span + pred[:, 2]
        at = np.minimum(np.searchsorted(gold_key, pred_key), max(len(gold) - 1, 0))
        exact = (gold_key[at] == pred_key) if len(gold) else np.zeros(len(pred), dtype=bool)
        lo = np.searchsorted(gold[:, 2], pred[:, 1], "left")  # the first gold chunk ending at or after the start
        hi = np.searchsorted(gold[:, 1], pred[:, 2], "right")  # past the last one starting at or before the end
        touches = lo < hi
        same = exact & (gold[at, 0] == pred[:, 0]) if len(gold) else exact
        gold_at = gold[at, 0] if len(gold) else pred[:, 0]
        first_touched = gold[np.minimum(lo, max(len(gold) - 1, 0)), 0] if len(gold) else pred[:, 0]
        for category, chosen, rows in (
            ("correct", same, pred[:, 0]),
            ("wrong_type", exact & ~same, gold_at),
            ("wrong_boundary", ~exact & touches, first_touched),
            ("spurious", ~exact & ~touches, pred[:, 0]),
        ):
            np.add.at(self.counts[:, col[category]], rows[chosen], 1)
        cover = np.zeros(len(gold) + 1, dtype=np.int64)  # gold chunks some predicted chunk overlaps
        np.add.at(cover, lo[touches], 1)
        np.add.at(cover, hi[touches], -1)
        missed = np.cumsum(cover)[:-1] == 0
        np.add.at(self.counts[:, col["missed"]], gold[missed, 0], 1)


_O, _B, _I, _E, _S, _OTHER = 0, 1, 2, 3, 4, 5
_CODES = {OUTSIDE: _O, "B": _B, "I": _I, "E": _E, "S": _S}


def span_f1(counts: np.ndarray) -> float:
    """Micro entity F1 of a span-count table (all types): ``2 * correct / (gold + predicted)``; 0 without spans."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(SPAN_CATEGORIES))
    total = counts[:, _COL["gold"]].sum() + counts[:, _COL["predicted"]].sum()
    return float(2 * counts[:, _COL["correct"]].sum() / total) if total else 0.0


def span_metrics(counts: np.ndarray, types: Sequence[str]) -> dict[str, float]:
    """Scalars of a span-count table: ``entity_f1``, ``entity_f1/<type>`` and ``spans/<category>`` totals."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(SPAN_CATEGORIES))
    out = {"entity_f1": span_f1(counts)}
    out.update({f"entity_f1/{t}": span_f1(counts[i]) for i, t in enumerate(types)})
    out.update({f"spans/{name}": float(counts[:, i].sum()) for i, name in enumerate(SPAN_CATEGORIES[:5])})
    return out

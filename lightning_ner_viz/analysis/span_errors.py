"""Entity-level results over whole sentences, as the standard span-error categories, per entity type.

Spans are read from BIO tag sequences exactly as seqeval reads them
(:func:`~lightning_ner_viz.analysis.entity_f1.entity_chunks`). Each predicted span falls in one
category, decided against the gold spans of its sentence, as nervaluate's ``strict`` and
``exact`` schemes decide it:

- ``correct``: a gold span with the same boundaries and type;
- ``wrong_type``: a gold span with the same boundaries and another type (counted for the gold type);
- ``wrong_boundary``: no such span, but it overlaps a gold span (counted for that gold type);
- ``spurious``: it overlaps no gold span (counted for its own, predicted type).

A gold span that no predicted span overlaps is ``missed``. ``gold`` and ``predicted`` count the
spans, so entity F1 per type is ``2 * correct / (gold + predicted)``, as seqeval's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lightning_ner_viz.analysis.entity_f1 import Chunk, entity_chunks
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

    Args:
        label_names: label id to BIO name.

    Attributes:
        types: the entity types, the rows of :attr:`counts`.
        counts: int array of shape (n_types, len(SPAN_CATEGORIES)).
    """

    def __init__(self, label_names: Sequence[str]) -> None:
        self.label_names = list(label_names)
        self.types = span_types(self.label_names)
        self._row = {t: i for i, t in enumerate(self.types)}
        self.counts = np.zeros((len(self.types), len(SPAN_CATEGORIES)), dtype=np.int64)

    def add(self, gold: np.ndarray, pred: np.ndarray) -> None:
        """Count one sentence: label ids of its labelled tokens, in order (a prediction < 0 reads as ``O``)."""
        names = self.label_names
        gold_chunks = entity_chunks([names[i] for i in np.asarray(gold)])
        pred_chunks = entity_chunks([names[i] if i >= 0 else OUTSIDE for i in np.asarray(pred)])
        self.add_chunks(gold_chunks, pred_chunks)

    def add_chunks(self, gold: set[Chunk], pred: set[Chunk]) -> None:
        """Count one sentence given its gold and predicted chunks ``(type, first, last)``."""
        by_bounds = {(s, e): t for t, s, e in gold}
        overlapped: set[Chunk] = set()
        for chunk in sorted(pred, key=lambda c: (c[1], c[2], c[0])):
            kind, start, end = chunk
            self._count(kind, "predicted")
            if chunk in gold:
                self._count(kind, "correct")
                overlapped.add(chunk)
                continue
            if (start, end) in by_bounds:
                gold_type = by_bounds[(start, end)]
                self._count(gold_type, "wrong_type")
                overlapped.add((gold_type, start, end))
                continue
            hits = sorted(g for g in gold if g[1] <= end and start <= g[2])
            if hits:
                self._count(hits[0][0], "wrong_boundary")
                overlapped.update(hits)
            else:
                self._count(kind, "spurious")
        for chunk in gold:
            self._count(chunk[0], "gold")
            if chunk not in overlapped:
                self._count(chunk[0], "missed")

    def _count(self, kind: str, category: str) -> None:
        self.counts[self._row[kind], _COL[category]] += 1


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

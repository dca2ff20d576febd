"""Error geometry: where misclassified tokens sit among the correctly predicted ones, in the original space.

Cosine geometry throughout: every row is L2-normalised first, a label's centroid is the
normalised mean of its *correctly predicted* tokens' normalised rows, and distances are
cosine distances ``1 - cos`` in [0, 2]. Only correctly predicted tokens are reference points;
a token with an unknown prediction (-1) is neither an error nor a reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_ner_viz.analysis._checks import NAN, as_matrix

_CHUNK_BYTES = 64 * 2**20
"""Memory budget of one block of float32 distances from errors to reference tokens."""


def jsonable(value: Any) -> Any:
    """``value`` with arrays as lists, numpy scalars as Python ones and NaN/inf as None (``allow_nan=False`` safe)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


@dataclass
class ErrorGeometry:
    """The misclassified tokens of one view, most attracted to another class first.

    Attributes:
        label_names: label id to name.
        reference_counts: array of shape (n_labels,), correctly predicted tokens per label
            (a label with 0 has no centroid).
        index: array of shape (n_errors,), rows of the snapshot, sorted by ``margin`` ascending
            (NaN margins last, ties by row).
        gold: array of shape (n_errors,), gold label ids.
        pred: array of shape (n_errors,), predicted label ids.
        knn_vote: array of shape (n_errors,), the majority gold label of the ``k`` nearest correctly
            predicted tokens (ties: the label of the nearest of them); -1 without references.
        knn_share: array of shape (n_errors,), the fraction of those neighbours with ``knn_vote``'s label.
        nearest_class: array of shape (n_errors,), the label of the nearest centroid among *all*
            labels' centroids, the token's gold label included; -1 without centroids.
        margin: array of shape (n_errors,), cosine distance to the nearest *other* label's centroid
            minus that to the gold label's centroid: negative when the token sits nearer another
            class (the more negative, the more attracted); NaN when the gold label has no centroid
            or no other label has one.
        attraction: array of shape (n_labels, n_labels): row = gold label, column = ``nearest_class``,
            the share of that gold label's errors (rows sum to 1; 0 for a label without errors
            with a nearest class).
        k: neighbours used for ``knn_vote``.
    """

    label_names: list[str]
    reference_counts: np.ndarray
    index: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    knn_vote: np.ndarray
    knn_share: np.ndarray
    nearest_class: np.ndarray
    margin: np.ndarray
    attraction: np.ndarray
    k: int

    def __len__(self) -> int:
        return len(self.index)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists, ints, floats, NaN as None), keyed by the attribute names."""
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _knn_vote(queries: np.ndarray, refs: np.ndarray, ref_labels: np.ndarray, k: int,
              n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority label of each query's ``k`` nearest refs (exact cosine, blocks of rows), and its share.

    A tie goes to the tied label whose first neighbour is nearest. Memory: one block of about
    ``_CHUNK_BYTES`` of float32 similarities.
    """
    m = len(queries)
    vote, share = np.full(m, -1, dtype=np.int64), np.full(m, NAN)
    k = min(k, len(refs))
    if k < 1 or m == 0:
        return vote, share
    q, r = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (queries, refs))
    lab = torch.from_numpy(ref_labels)
    step = max(1, _CHUNK_BYTES // (4 * len(refs)))
    for start in range(0, m, step):
        stop = min(start + step, m)
        sim = q[start:stop] @ r.T
        order = sim.topk(k, dim=1, largest=True, sorted=True).indices  # nearest first
        labels = lab[order]  # (b, k)
        counts = torch.zeros(stop - start, n_labels, dtype=torch.int64).scatter_add_(1, labels, torch.ones_like(labels))
        first = torch.full((stop - start, n_labels), k, dtype=torch.int64)
        rank = torch.arange(k).expand_as(labels)
        first = first.scatter_reduce_(1, labels, rank, reduce="amin")
        best = (counts * (k + 1) - first).argmax(1)  # most votes, then the nearest first neighbour
        vote[start:stop] = best.numpy()
        share[start:stop] = (counts.gather(1, best[:, None]).squeeze(1).double() / k).numpy()
    return vote, share


def error_geometry(X: np.ndarray, gold: np.ndarray, pred: np.ndarray, label_names: Sequence[str],
                   k: int = 10) -> ErrorGeometry:
    """Locate each misclassified token relative to the correctly predicted ones (cosine geometry).

    Args:
        X: array of shape (n_tokens, n_features), one view's vectors.
        gold: array of shape (n_tokens,), gold label ids in ``[0, len(label_names))``.
        pred: array of shape (n_tokens,), predicted label ids; -1 if unknown (neither error nor reference).
        label_names: label id to name.
        k: neighbours voting in ``knn_vote`` (all references when there are fewer).

    Returns:
        An :class:`ErrorGeometry`; empty arrays when nothing is misclassified.

    Raises:
        ValueError: when shapes disagree or a gold id is not a label id.
    """
    names = list(label_names)
    n_labels = len(names)
    gold, pred = np.asarray(gold, dtype=np.int64).reshape(-1), np.asarray(pred, dtype=np.int64).reshape(-1)
    x = as_matrix(X, "X", len(gold), np.float32)  # float32 rows, float64 centroids
    if pred.shape != gold.shape:
        raise ValueError(f"gold and pred must have the same shape; got {gold.shape} and {pred.shape}.")
    if ((gold < 0) | (gold >= n_labels)).any():
        raise ValueError(f"gold ids must lie in [0, {n_labels}) (label_names).")
    known = pred >= 0
    correct, wrong = known & (pred == gold), known & (pred != gold)
    x = unit_rows(x)
    refs, ref_labels = x[correct], gold[correct]
    counts = np.bincount(ref_labels, minlength=n_labels)
    sums = np.zeros((n_labels, x.shape[1]))
    for label in np.unique(ref_labels):
        sums[label] = refs[ref_labels == label].sum(0, dtype=np.float64)
    centroids, has = unit_rows(sums), counts > 0

    index = np.flatnonzero(wrong)
    e_gold, e_pred = gold[index], pred[index]
    vote, share = _knn_vote(x[index], refs, ref_labels, k, n_labels)
    nearest, margin = np.full(len(index), -1, dtype=np.int64), np.full(len(index), NAN)
    if has.any() and len(index):
        dist = 1.0 - x[index] @ centroids.T  # (n_errors, n_labels)
        dist[:, ~has] = np.inf
        nearest = dist.argmin(1)
        own = dist[np.arange(len(index)), e_gold]
        other = dist.copy()
        other[np.arange(len(index)), e_gold] = np.inf
        other_min = other.min(1)
        with np.errstate(invalid="ignore"):
            margin = np.where(np.isfinite(own) & np.isfinite(other_min), other_min - own, NAN)

    attraction = np.zeros((n_labels, n_labels))
    placed = nearest >= 0
    np.add.at(attraction, (e_gold[placed], nearest[placed]), 1.0)
    totals = attraction.sum(1, keepdims=True)
    attraction = np.divide(attraction, totals, out=np.zeros_like(attraction), where=totals > 0)

    order = np.argsort(margin, kind="stable")  # NaN last; index is ascending, so ties keep row order
    return ErrorGeometry(
        label_names=names, reference_counts=counts.astype(np.int64), index=index[order].astype(np.int64),
        gold=e_gold[order], pred=e_pred[order], knn_vote=vote[order], knn_share=share[order],
        nearest_class=nearest[order].astype(np.int64), margin=margin[order], attraction=attraction,
        k=int(min(k, len(refs))),
    )

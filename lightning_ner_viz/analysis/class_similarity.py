"""Class similarity of one view: cosine similarity of the gold labels' centroids, and each label's separation.

All tokens count, by gold label, whatever was predicted. Labels without tokens get NaN rows
and columns; a label with fewer than 2 tokens (no spread) gets a NaN separation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_ner_viz.analysis._checks import NAN, as_matrix
from lightning_ner_viz.analysis.errors import jsonable


@dataclass
class ClassSimilarity:
    """Label-by-label centroid geometry of one view.

    Attributes:
        label_names: label id to name.
        counts: array of shape (n_labels,), tokens per gold label.
        similarity: array of shape (n_labels, n_labels), cosine similarity of the centroids
            (1 on the diagonal); NaN for a label without tokens or with a zero centroid.
        separation: array of shape (n_labels,), Euclidean distance from the label's centroid to the
            nearest other centroid over the label's spread (RMS distance of its tokens to its
            centroid); NaN with < 2 tokens, zero spread or no other label.
        nearest: array of shape (n_labels,), the label id of that nearest other centroid; -1 if none.
        spread: array of shape (n_labels,), the RMS distance of the label's tokens to its centroid (NaN without tokens).
        centered: whether the mean of all tokens was subtracted before the cosines.
    """

    label_names: list[str]
    counts: np.ndarray
    similarity: np.ndarray
    separation: np.ndarray
    nearest: np.ndarray
    spread: np.ndarray
    centered: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists, ints, floats, NaN as None), keyed by the attribute names."""
        return {name: jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def class_similarity(X: np.ndarray, gold: np.ndarray, label_names: Sequence[str],
                     center: bool = False) -> ClassSimilarity:
    """Cosine similarity of the gold labels' centroids, and how well each label stands apart.

    Args:
        X: array of shape (n_tokens, n_features), one view's vectors.
        gold: array of shape (n_tokens,), gold label ids in ``[0, len(label_names))``.
        label_names: label id to name.
        center: subtract the mean of all tokens before the cosines. Transformer hidden states are
            anisotropic (every centroid points roughly the same way, cosines near 1); centring
            shows their differences instead. Separation is unaffected (distances do not move).

    Raises:
        ValueError: when shapes disagree or a gold id is not a label id.
    """
    names = list(label_names)
    n_labels = len(names)
    gold = np.asarray(gold, dtype=np.int64).reshape(-1)
    x = as_matrix(X, "X", len(gold), np.float32)  # float32 rows; float64 per label
    if ((gold < 0) | (gold >= n_labels)).any():
        raise ValueError(f"gold ids must lie in [0, {n_labels}) (label_names).")
    counts = np.bincount(gold, minlength=n_labels)
    centroids, sq = np.full((n_labels, x.shape[1]), NAN), np.zeros(n_labels)
    for label in np.unique(gold):
        rows = x[gold == label].astype(np.float64)
        centroids[label] = rows.mean(0)
        sq[label] = np.square(rows - centroids[label]).sum()
    has = counts > 0

    direction = centroids - x.mean(0, dtype=np.float64) if center and len(x) else centroids
    norms = np.linalg.norm(direction, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = direction / norms[:, None]
    unit[~(norms > 0)] = NAN
    similarity = np.clip(unit @ unit.T, -1.0, 1.0)

    spread = np.where(has, np.sqrt(sq / np.maximum(counts, 1)), NAN)

    gap = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=2) if n_labels else np.zeros((0, 0))
    np.fill_diagonal(gap, np.inf)
    gap[np.isnan(gap)] = np.inf
    nearest = np.where(np.isfinite(gap).any(1), gap.argmin(1) if n_labels else 0, -1).astype(np.int64)
    nearest_gap = gap.min(1, initial=np.inf)
    ok = (counts >= 2) & (spread > 0) & np.isfinite(nearest_gap)
    with np.errstate(invalid="ignore", divide="ignore"):
        separation = np.where(ok, nearest_gap / spread, NAN)
    return ClassSimilarity(label_names=names, counts=counts.astype(np.int64), similarity=similarity,
                           separation=separation, nearest=nearest, spread=spread, centered=bool(center))

"""Drift metrics: how a view's tokens moved between two epochs, in the original feature space.

CKA, cosine displacement and centroid shift compare rows of the same tokens (see
:func:`match_tokens`); prediction change compares their predicted labels. Given too few
tokens they return NaN instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lightning_ner_viz.analysis._checks import NAN, as_matrix
from lightning_ner_viz.snapshot import Snapshot


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear centered kernel alignment (Kornblith et al., 2019), in float64.

    Args:
        X: array of shape (n_tokens, n_features_x).
        Y: array of shape (n_tokens, n_features_y), rows aligned with ``X``.

    Returns:
        Similarity in [0, 1], invariant to rotation and isotropic scaling; NaN with < 2 rows or a constant matrix.
    """
    x, y = as_matrix(X, "X"), as_matrix(Y, "Y", len(X))
    if len(x) < 2:
        return NAN
    x, y = x - x.mean(0), y - y.mean(0)
    n, dx, dy = len(x), x.shape[1], y.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:  # the (n, n) Gram matrices are the cheaper route
        kx, ky = x @ x.T, y @ y.T
        hsic, norm_x, norm_y = float(np.vdot(kx, ky)), np.linalg.norm(kx), np.linalg.norm(ky)
    else:
        hsic = float(np.square(y.T @ x).sum())
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    return hsic / float(norm_x * norm_y) if norm_x > 0 and norm_y > 0 else NAN


def cosine_displacement(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per-row cosine distance ``1 - cos(prev_i, cur_i)``, array of shape (n_tokens,) in [0, 2].

    A row that is zero in both matrices is at distance 0; zero in one only, at distance 1.

    Args:
        prev: array of shape (n_tokens, n_features).
        cur: array of shape (n_tokens, n_features).
    """
    a, b = as_matrix(prev, "prev"), as_matrix(cur, "cur")
    if a.shape != b.shape:
        raise ValueError(f"prev and cur must have the same shape; got {a.shape} and {b.shape}.")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = ~(a.any(1) | b.any(1))
    cos = np.where(norms > 0, np.einsum("ij,ij->i", a, b) / np.where(norms > 0, norms, 1.0), both_zero)
    return np.clip(1.0 - cos, 0.0, 2.0)


def match_tokens(prev: Snapshot, cur: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(into_prev, into_cur)``, int64 arrays of shape (n_shared,), of the token ids both hold, ascending."""
    _, i_prev, i_cur = np.intersect1d(prev.token_id, cur.token_id, return_indices=True)
    return i_prev.astype(np.int64), i_cur.astype(np.int64)


def centroid_shift(
    prev: np.ndarray, cur: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
) -> dict[str, float]:
    """How far each label's centroid moved, relative to the spread of ``cur``.

    Args:
        prev: array of shape (n_tokens, n_features).
        cur: array of shape (n_tokens, n_features), rows aligned with ``prev``.
        labels: array of shape (n_tokens,), gold label ids.
        label_names: label id to name.

    Returns:
        Label name to ``||mean(prev[label]) - mean(cur[label])||`` over the RMS distance of ``cur``'s rows
        to their mean (NaN if that is 0), for the labels present.
    """
    a, b, labels = as_matrix(prev, "prev"), as_matrix(cur, "cur"), np.asarray(labels, dtype=np.int64)
    if a.shape != b.shape or len(b) != len(labels):
        raise ValueError(f"prev {a.shape}, cur {b.shape} and labels {labels.shape} must be row-aligned.")
    if len(labels) == 0:
        return {}
    spread = float(np.sqrt(np.square(b - b.mean(0)).sum(1).mean()))
    out: dict[str, float] = {}
    for label in np.unique(labels):
        mask = labels == label
        shift = float(np.linalg.norm(a[mask].mean(0) - b[mask].mean(0)))
        name = label_names[label] if 0 <= label < len(label_names) else str(label)
        out[name] = shift / spread if spread > 0 else NAN
    return out


def prediction_change_rate(prev_pred: np.ndarray, cur_pred: np.ndarray) -> float:
    """Fraction of tokens whose predicted label changed, among those predicted (id >= 0) in both; NaN if none.

    Args:
        prev_pred: array of shape (n_tokens,), predicted label ids, -1 if unknown.
        cur_pred: array of shape (n_tokens,), rows aligned with ``prev_pred``.
    """
    a, b = np.asarray(prev_pred, dtype=np.int64), np.asarray(cur_pred, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"prev_pred and cur_pred must have the same shape; got {a.shape} and {b.shape}.")
    known = (a >= 0) & (b >= 0)
    return float((a[known] != b[known]).mean()) if known.any() else NAN

"""Cluster and projection quality of one view: silhouette, kNN purity and trustworthiness.

All three rank or average Euclidean distances between tokens. They are computed in float64
(as scikit-learn's), one block of rows of the distance matrix at a time, so memory stays
at a few blocks of about ``_BLOCK_BYTES`` instead of several (n, n) matrices. Functions
taking ``max_points`` score, above that many tokens, the rows
``np.sort(np.random.default_rng(seed).choice(n_tokens, max_points, replace=False))``.
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.analysis._checks import NAN, as_matrix

_MAX_POINTS = 2000
_CHUNK_BYTES = 64 * 2**20
"""Memory budget of one block of float32 distances in :func:`knn_purity` over every token."""
_BLOCK_BYTES = 8 * 2**20
"""Memory budget of one block of float64 distances in the subsampled scores."""


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_points`` of them drawn without replacement."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def _scores(x: np.ndarray, labels: np.ndarray | None = None, coords: np.ndarray | None = None, knn: bool = False,
            k: int = 10) -> dict[str, float]:
    """Silhouette (with ``labels``), kNN purity (with ``knn``) and trustworthiness (with ``coords``) of rows x (n, d).

    One pass over blocks of rows of the float64 squared distances (+inf to itself); each score
    only needs its block's rows, so no (n, n) matrix is ever held.
    """
    n = len(x)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    sq = torch.einsum("ij,ij->i", xt, xt)
    out: dict[str, float] = {}
    sil = labels is not None and _silhouette_defined(labels)
    knn_k = min(k, n - 1) if knn and labels is not None else 0
    trust = coords is not None and 1 <= k < n / 2  # scikit-learn raises otherwise
    if labels is not None:
        _, inverse = np.unique(labels, return_inverse=True)
        own = torch.from_numpy(inverse.reshape(-1)).long()
        onehot = torch.nn.functional.one_hot(own, max(int(inverse.max(initial=-1)) + 1, 1)).double()
        sums = torch.zeros(onehot.shape, dtype=torch.float64)
    if trust:
        e = torch.from_numpy(np.asarray(coords))
        penalty = 0
    hits = 0
    step = max(1, _BLOCK_BYTES // (8 * max(n, 1)))
    for start in range(0, n if (sil or knn_k >= 1 or trust) else 0, step):
        stop = min(start + step, n)
        rows, cols = torch.arange(stop - start), torch.arange(start, stop)
        d = (xt[start:stop] @ xt.T).mul_(-2.0).add_(sq[start:stop, None]).add_(sq[None, :]).clamp_(min=0.0)
        d[rows, cols] = torch.inf  # a token is not its own neighbour
        if sil:
            root = d.sqrt()
            root[rows, cols] = 0.0
            sums[start:stop] = root @ onehot
            del root
        if knn_k >= 1:
            neighbours = d.topk(knn_k, dim=1, largest=False).indices
            hits += int((own[neighbours] == own[start:stop, None]).sum())
        if trust:
            dist_e = torch.cdist(e[start:stop], e, compute_mode="donot_use_mm_for_euclid_dist")  # exact, as a k-d tree
            dist_e[rows, cols] = torch.inf
            neighbours = dist_e.topk(k, dim=1, largest=False).indices
            reach = d.gather(1, neighbours)  # a projected neighbour's rank in X is 1 + the points closer in X
            ranks = torch.stack([(d < reach[:, m, None]).sum(1) + 1 for m in range(k)], 1)
            penalty += int((ranks - k).clamp_min_(0).sum())
    if labels is not None:
        out["silhouette"] = _silhouette_from_sums(sums, onehot, own) if sil else NAN
    if knn:
        out["knn_purity"] = hits / (n * knn_k) if knn_k >= 1 else NAN
    if coords is not None:
        out["trustworthiness"] = 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) if trust else NAN
    return out


def _silhouette_defined(labels: np.ndarray) -> bool:
    n_labels = len(np.unique(labels))
    return 2 <= n_labels <= len(labels) - 1  # scikit-learn raises otherwise


def _silhouette_from_sums(sums: torch.Tensor, onehot: torch.Tensor, own: torch.Tensor) -> float:
    """Mean silhouette from each row's summed distances to every label's rows (n, n_labels)."""
    counts = onehot.sum(0)
    intra = sums.gather(1, own[:, None]).squeeze(1) / (counts[own] - 1)
    inter = (sums / counts).scatter_(1, own[:, None], torch.inf).min(1).values
    scores = torch.nan_to_num((inter - intra) / torch.maximum(intra, inter)) * (counts[own] > 1)
    return float(scores.mean())


def silhouette_by_label(X: np.ndarray, labels: np.ndarray, max_points: int = _MAX_POINTS, seed: int = 0) -> float:
    """Mean Euclidean silhouette coefficient of the gold-label clusters, as scikit-learn's.

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        max_points, seed: the deterministic subsample (see the module's docstring).

    Returns:
        Score in [-1, 1]; NaN unless 2 <= number of labels < number of scored tokens.
    """
    labels = np.asarray(labels)
    idx = _subsample(len(labels), max_points, seed)
    return _scores(as_matrix(X, "X", len(labels))[idx], labels[idx])["silhouette"]


def knn_purity(X: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each token's ``k`` nearest neighbours (Euclidean, not itself) sharing its gold label.

    Distances are computed in float32, in blocks of rows of about 64 MB.

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        k: neighbours per token; ``min(k, n_tokens - 1)`` are used (NaN with fewer than 2 tokens).
    """
    labels = np.asarray(labels)
    x = as_matrix(X, "X", len(labels), np.float32)
    n, lab = len(labels), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    k, hits = min(k, n - 1), 0
    if k < 1:
        return NAN
    x = x - x.mean(0)  # distances are unchanged, and float rounding shrinks
    sq = torch.from_numpy(np.einsum("ij,ij->i", x, x))
    step = max(1, _CHUNK_BYTES // (x.itemsize * n))
    for start in range(0, n, step):
        stop = min(start + step, n)
        # ||x_i||^2 is constant along row i, so it is left out: the ranking is the same
        d = torch.from_numpy(x[start:stop] @ x.T).mul_(-2.0).add_(sq)
        d[torch.arange(stop - start), torch.arange(start, stop)] = torch.inf
        neighbours = d.topk(k, dim=1, largest=False).indices
        hits += int((lab[neighbours] == lab[start:stop, None]).sum())
    return hits / (n * k)


def trustworthiness(
    X: np.ndarray, coords: np.ndarray, k: int = 10, max_points: int = _MAX_POINTS, seed: int = 0
) -> float:
    """How well the projection keeps true neighbours, as ``sklearn.manifold.trustworthiness``.

    Args:
        X: array of shape (n_tokens, n_features), the original space.
        coords: array of shape (n_tokens, n_components), the projection.
        k: neighbours per token.
        max_points, seed: the deterministic subsample (see the module's docstring).

    Returns:
        Score in [0, 1]; NaN unless ``1 <= k < scored tokens / 2``.
    """
    x = as_matrix(X, "X")
    idx = _subsample(len(x), max_points, seed)
    return _scores(x[idx], coords=as_matrix(coords, "coords", len(x))[idx], k=k)["trustworthiness"]


def view_quality(view: str, X: np.ndarray, labels: np.ndarray, coords: np.ndarray | None) -> dict[str, float]:
    """``<view>/silhouette``, ``<view>/knn_purity`` and (with ``coords``) ``<view>/trustworthiness``, in one pass.

    Scores the public functions' default subsample; kNN purity covers every token (with
    :func:`knn_purity`) when there are more than ``_MAX_POINTS``.
    """
    x = as_matrix(X, f"views[{view!r}]", len(labels))
    idx = _subsample(len(x), _MAX_POINTS, seed=0)  # the public functions' defaults
    e = None if coords is None else as_matrix(coords, f"coords[{view!r}]", len(x))[idx]
    found = _scores(x[idx], labels[idx], e, knn=len(idx) == len(x))
    if len(idx) != len(x):
        found["knn_purity"] = knn_purity(x, labels)
    keys = ("silhouette", "knn_purity", "trustworthiness")
    return {f"{view}/{key}": found[key] for key in keys if key in found}

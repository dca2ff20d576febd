"""A smooth out-of-sample map: place new points by kernel regression on a fitted layout."""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.reducers._linalg import pca_basis
from lightning_ner_viz.reducers.base import NotFittedError

BLOCK_ROWS = 1024
"""Query rows per block of distances: a block holds BLOCK_ROWS x n_ref floats, never n_ref x n_ref."""


class KernelExtension:
    """Maps features to a fitted 2-D/3-D layout by Gaussian kernel regression (Nadaraya-Watson).

    UMAP's own ``transform`` re-runs an approximate neighbour search and a short
    optimisation, so a tiny change of the input can move a point far across the cloud.
    This map is a smooth function of the input: a point moves only as much as its
    features moved. The ``fixed`` frame uses it for UMAP and t-SNE.

    Args:
        n_neighbors: the bandwidth is the median distance of reference points to their
            ``n_neighbors``-th nearest neighbour.
        pca_dims: compare features after this many principal axes (``None``: raw).

    Attributes:
        mean_: array of shape (n_features,), or ``None`` without a PCA step.
        components_: array of shape (pca_dims, n_features), or ``None`` without a PCA step.
        reference_: float32 tensor of shape (n_ref, n_dims), the pre-reduced reference features, centred (the
            same shift applies to every query, so distances keep their float32 precision).
        layout_: float32 tensor of shape (n_ref, n_components), the reference layout.
        bandwidth_: the Gaussian kernel's width.

    Squared distances are ``|q|^2 + |r|^2 - 2 q.r`` in float32, by one matrix product per block of
    rows: on 20,000 x 20,000 points, one thread, 3.2 s instead of 12.5 s in float64 with ``cdist``,
    and the same coordinates to 1e-5 of the layout's range (docs/performance.md, section 5).
    """

    def __init__(self, n_neighbors: int = 15, pca_dims: int | None = 50) -> None:
        self.n_neighbors = n_neighbors
        self.pca_dims = pca_dims

    def _reduce(self, X: np.ndarray) -> torch.Tensor:
        data = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if self.mean_ is not None:
            data = (data - torch.as_tensor(self.mean_, dtype=torch.float32)) @ torch.as_tensor(
                self.components_, dtype=torch.float32).T
        return data

    def _squared_distances(self, queries: torch.Tensor) -> torch.Tensor:
        """Squared Euclidean distances of shape (len(queries), n_ref) from centred queries to the reference points."""
        d2 = torch.addmm(self._reference_sq, queries, self.reference_.T, alpha=-2)
        return d2.add_((queries * queries).sum(1, keepdim=True)).clamp_(min=0)

    def fit(self, X: np.ndarray, layout: np.ndarray) -> KernelExtension:
        """Remember reference features X of shape (n_ref, n_features) and their layout (n_ref, n_components)."""
        X = np.asarray(X, dtype=np.float32)
        self.mean_ = self.components_ = None
        if self.pca_dims is not None and X.shape[1] > self.pca_dims:
            self.mean_, self.components_, _ = pca_basis(X, self.pca_dims)
        reference = self._reduce(X)
        self._centre = reference.mean(0) if len(reference) else torch.zeros(reference.shape[1])
        self.reference_ = reference - self._centre
        self._reference_sq = (self.reference_ * self.reference_).sum(1)
        k = min(self.n_neighbors, len(self.reference_) - 1)
        nearest = [self._squared_distances(self.reference_[start : start + BLOCK_ROWS]).topk(k + 1, largest=False)
                   .values[:, -1] for start in range(0, len(self.reference_), BLOCK_ROWS)]  # n x n at once: 3.2 GB at 20k
        self.bandwidth_ = (float(torch.cat(nearest).sqrt().median()) if nearest else 0.0) or 1.0
        self.layout_ = torch.as_tensor(np.asarray(layout), dtype=torch.float32)
        return self

    def transform(self, X: np.ndarray, chunk: int = BLOCK_ROWS) -> np.ndarray:
        """Coordinates of shape (n, n_components) for features X of shape (n, n_features)."""
        if not hasattr(self, "layout_"):
            raise NotFittedError("This KernelExtension is not fitted yet; call fit(X, layout) first.")
        data = self._reduce(X) - self._centre
        out = []
        for start in range(0, len(data), chunk):
            d2 = self._squared_distances(data[start : start + chunk])
            logits = d2.sub_(d2.min(1, keepdim=True).values).mul_(-1.0 / (2 * self.bandwidth_**2))
            out.append(torch.softmax(logits, dim=1) @ self.layout_)
        return torch.cat(out).numpy() if out else np.zeros((0, self.layout_.shape[1]), np.float32)

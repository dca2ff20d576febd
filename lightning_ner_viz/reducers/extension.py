"""A smooth out-of-sample map: place new points by kernel regression on a fitted layout."""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.reducers._linalg import pca_basis
from lightning_ner_viz.reducers.base import NotFittedError


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
        reference_: float64 tensor of shape (n_ref, n_dims), the pre-reduced reference features.
        layout_: float64 tensor of shape (n_ref, n_components), the reference layout.
        bandwidth_: the Gaussian kernel's width.
    """

    def __init__(self, n_neighbors: int = 15, pca_dims: int | None = 50) -> None:
        self.n_neighbors = n_neighbors
        self.pca_dims = pca_dims

    def _reduce(self, X: np.ndarray) -> torch.Tensor:
        data = torch.as_tensor(np.asarray(X, dtype=np.float32), dtype=torch.float64)
        if self.mean_ is not None:
            data = (data - torch.as_tensor(self.mean_, dtype=torch.float64)) @ torch.as_tensor(
                self.components_, dtype=torch.float64).T
        return data

    def fit(self, X: np.ndarray, layout: np.ndarray) -> KernelExtension:
        """Remember reference features X of shape (n_ref, n_features) and their layout (n_ref, n_components)."""
        X = np.asarray(X, dtype=np.float32)
        self.mean_ = self.components_ = None
        if self.pca_dims is not None and X.shape[1] > self.pca_dims:
            self.mean_, self.components_, _ = pca_basis(X, self.pca_dims)
        reference = self._reduce(X)
        k = min(self.n_neighbors, len(reference) - 1)
        nearest = torch.cdist(reference, reference).topk(k + 1, largest=False).values[:, -1]
        self.bandwidth_ = float(nearest.median()) or 1.0
        self.reference_ = reference
        self.layout_ = torch.as_tensor(np.asarray(layout), dtype=torch.float64)
        return self

    def transform(self, X: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """Coordinates of shape (n, n_components) for features X of shape (n, n_features)."""
        if not hasattr(self, "layout_"):
            raise NotFittedError("This KernelExtension is not fitted yet; call fit(X, layout) first.")
        data = self._reduce(X)
        out = []
        for start in range(0, len(data), chunk):
            d2 = torch.cdist(data[start : start + chunk], self.reference_).square()
            logits = -(d2 - d2.min(1, keepdim=True).values) / (2 * self.bandwidth_**2)
            out.append(torch.softmax(logits, dim=1) @ self.layout_)
        return torch.cat(out).float().numpy() if out else np.zeros((0, self.layout_.shape[1]), np.float32)

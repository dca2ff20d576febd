"""PCA in torch: no dependency beyond the core."""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.reducers.base import NotFittedError, check_matrix, check_n_components


def pca_basis(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, top-``k`` principal axes and their explained variance ratios, with deterministic signs.

    Args:
        X: array of shape (n_tokens, n_features).
        k: components wanted; missing ones (fewer features than ``k``) are zero axes.

    Returns:
        ``mean`` (n_features,), ``components`` (k, n_features), ``ratio`` (k,).
    """
    data = torch.from_numpy(np.asarray(X, dtype=np.float32)).double()
    mean = data.mean(0)
    _, s, vh = torch.linalg.svd(data - mean, full_matrices=False)
    components = vh[:k]
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    components = components * torch.where(signs == 0, torch.ones_like(signs), signs)
    variance = s[:k] ** 2
    total = float((s**2).sum()) or 1.0
    if components.shape[0] < k:
        pad = k - components.shape[0]
        components = torch.cat([components, components.new_zeros(pad, vh.shape[1])])
        variance = torch.cat([variance, variance.new_zeros(pad)])
    return mean.float().numpy(), components.float().numpy(), (variance / total).float().numpy()


class PCAReducer:
    """Principal component analysis with deterministic signs.

    Each component's sign is fixed so that its largest-magnitude loading is
    positive (as scikit-learn's ``svd_flip``), so refitting identical data gives
    identical coordinates.

    Args:
        n_components: 2 or 3.

    Attributes:
        mean_: array of shape (n_features,).
        components_: array of shape (n_components, n_features).
        explained_variance_ratio_: array of shape (n_components,).

    Example::

        coords = PCAReducer(n_components=3).fit_transform(hidden)
    """

    def __init__(self, n_components: int = 3) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray) -> PCAReducer:
        """Fit on X of shape (n_tokens, n_features)."""
        check_n_components(self.n_components)
        self.mean_, self.components_, self.explained_variance_ratio_ = pca_basis(
            check_matrix(X, self.n_components), self.n_components
        )
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project X of shape (n_tokens, n_features) to shape (n_tokens, n_components)."""
        if not hasattr(self, "components_"):
            raise NotFittedError("This PCAReducer is not fitted yet; call fit(X) first.")
        X = np.asarray(X, dtype=np.float32)
        return ((X - self.mean_) @ self.components_.T).astype(np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on X and return its projection."""
        return self.fit(X).transform(X)

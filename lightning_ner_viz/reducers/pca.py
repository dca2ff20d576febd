"""PCA in torch, with deterministic signs: no dependency beyond the core."""

from __future__ import annotations

import numpy as np

from lightning_ner_viz.reducers._linalg import check_matrix, check_n_components, pca_basis, pca_project
from lightning_ner_viz.reducers.base import NotFittedError

__all__ = ["PCAReducer", "pca_basis"]


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
        return pca_project(X, self.mean_, self.components_)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on X and return its projection."""
        return self.fit(X).transform(X)

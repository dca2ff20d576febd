"""UMAP through umap-learn, imported only when used."""

from __future__ import annotations

import warnings

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.reducers.base import (
    NotFittedError,
    PCAPrereduction,
    check_init,
    check_matrix,
    check_n_components,
)


class UMAPReducer(PCAPrereduction):
    """UMAP with a fixed random state, on a PCA pre-reduction for speed.

    Args:
        n_components: 2 or 3.
        n_neighbors: UMAP's neighbourhood size.
        min_dist: UMAP's minimum distance between embedded points.
        pca_dims: reduce to this many dimensions with PCA first (``None`` to skip).
        random_state: the seed; the same seed and data give the same layout.
        n_epochs: UMAP optimisation epochs (``None`` lets umap-learn choose).
        init: optional array of shape (n_tokens, n_components) to start the
            optimisation from (a warm start, e.g. the previous epoch's layout).
            umap-learn rescales each axis to [0, 10] first, so only its shape
            matters. ``None`` uses the spectral start.

    Attributes:
        embedding_: array of shape (n_tokens, n_components), the fitted layout.
        umap_: the fitted ``umap.UMAP``.
    """

    def __init__(
        self,
        n_components: int = 3,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        pca_dims: int | None = 50,
        random_state: int = 0,
        n_epochs: int | None = None,
        init: np.ndarray | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.pca_dims = pca_dims
        self.random_state = random_state
        self.n_epochs = n_epochs
        self.init = init

    def fit(self, X: np.ndarray) -> UMAPReducer:
        """Fit on X of shape (n_tokens, n_features).

        Raises:
            ValueError: when there are not more tokens than ``n_neighbors``, or ``init`` has the wrong shape.
        """
        check_n_components(self.n_components)
        X = check_matrix(X, self.n_components)
        if X.shape[0] <= self.n_neighbors:
            raise ValueError(
                f"UMAP needs more tokens than n_neighbors={self.n_neighbors}; got {X.shape[0]}. "
                "Lower n_neighbors, raise max_tokens, or use reducer='pca'."
            )
        init = check_init(self.init, X.shape[0], self.n_components)
        umap = require("umap")
        self.umap_ = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            random_state=self.random_state,
            n_epochs=self.n_epochs,
            transform_seed=self.random_state,
            init="spectral" if init is None else init.astype(np.float32),
        )
        with warnings.catch_warnings():
            # umap-learn warns on every seeded fit that it runs single-threaded; that is the point of the seed.
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            self.embedding_ = np.asarray(self.umap_.fit_transform(self._prereduce(X, fit=True)), dtype=np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new tokens X of shape (n_tokens, n_features) into the fitted layout."""
        if not hasattr(self, "umap_"):
            raise NotFittedError("This UMAPReducer is not fitted yet; call fit(X) first.")
        return np.asarray(self.umap_.transform(self._prereduce(np.asarray(X, np.float32), fit=False)), np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on X and return the fitted layout."""
        return self.fit(X).embedding_

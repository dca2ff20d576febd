"""UMAP through umap-learn, imported only when used."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from lightning_ner_viz._imports import require
from lightning_ner_viz.reducers.base import NotFittedError, SeededReducer
from lightning_ner_viz.reducers.compiled_cache import CACHE_WARNING, cache_umap_code


class UMAPReducer(SeededReducer):
    """UMAP with a fixed random state, on a PCA pre-reduction for speed.

    Args:
        n_components: 2 or 3.
        n_neighbors: UMAP's neighbourhood size.
        min_dist: UMAP's minimum distance between embedded points.
        pca_dims: reduce to this many dimensions with PCA first (``None`` to skip).
        seed: the random state of umap-learn; the same seed and data give the same layout.
        n_epochs: UMAP optimisation epochs (``None``: ``cold_n_epochs``, or ``warm_n_epochs``
            when started from ``init``).
        init: optional array of shape (n_tokens, n_components) to start the
            optimisation from (a warm start, e.g. the previous epoch's layout).
            umap-learn rescales each axis to [0, 10] first, so only its shape
            matters. ``None`` uses the spectral start.
        warm_n_epochs: optimisation epochs of a warm start when ``n_epochs`` is ``None``
            (a layout that starts converged needs few steps).
        cold_n_epochs: optimisation epochs from the spectral start when ``n_epochs`` is ``None``:
            umap-learn's own choice above 10,000 tokens. Below that umap-learn would run 500,
            which on 2,000 validation tokens took 2-4x longer for a trustworthiness no higher
            (docs/performance.md, "Time to picture").
        exact_knn_max: up to this many tokens the nearest neighbours are found
            exactly, by one chunked matrix product in torch (:func:`exact_knn`), and
            handed to umap-learn, whose own exact path calls a Python distance function
            once per pair. Above it, umap-learn's NN-descent. ``0`` disables.
        random_state: deprecated name of ``seed``.

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
        seed: int = 0,
        n_epochs: int | None = None,
        init: np.ndarray | None = None,
        warm_n_epochs: int = 50,
        exact_knn_max: int = 20_000,
        cold_n_epochs: int = 200,
        *,
        random_state: int | None = None,
    ) -> None:
        super().__init__(n_components, pca_dims, seed, init, random_state)
        self.n_neighbors, self.min_dist = n_neighbors, min_dist
        self.n_epochs, self.warm_n_epochs, self.cold_n_epochs = n_epochs, warm_n_epochs, cold_n_epochs
        self.exact_knn_max = exact_knn_max

    def fit(self, X: np.ndarray) -> UMAPReducer:
        """Fit on X of shape (n_tokens, n_features).

        Raises:
            ValueError: when there are not more tokens than ``n_neighbors``, or ``init`` has the wrong shape.
        """
        X, init = self._check_input(X)
        if X.shape[0] <= self.n_neighbors:
            raise ValueError(
                f"UMAP needs more tokens than n_neighbors={self.n_neighbors}; got {X.shape[0]}. "
                "Lower n_neighbors, raise max_tokens, or use reducer='pca'."
            )
        umap = require("umap")
        cache_umap_code()  # a new process loads numba's machine code from disk instead of compiling it
        X = self._prereduce(X, fit=True)
        exact = X.shape[0] <= self.exact_knn_max
        self.umap_ = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            random_state=self.seed,
            n_epochs=self.n_epochs if self.n_epochs is not None else
            self.cold_n_epochs if init is None else self.warm_n_epochs,
            transform_seed=self.seed,
            init="spectral" if init is None else init.astype(np.float32),
            precomputed_knn=exact_knn(X, self.n_neighbors) if exact else (None, None, None),
            force_approximation_algorithm=exact,  # with a precomputed kNN, skip the all-pairs path
        )
        with warnings.catch_warnings():
            # umap-learn warns on every seeded fit that it runs single-threaded; that is the point of the seed.
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            # no search index with an exact kNN: transform builds one when first needed
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
            warnings.filterwarnings("ignore", message=CACHE_WARNING)  # two NN-descent functions compile each run
            self.embedding_ = np.asarray(self.umap_.fit_transform(X), dtype=np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new tokens X of shape (n_tokens, n_features) into the fitted layout."""
        if not hasattr(self, "umap_"):
            raise NotFittedError("This UMAPReducer is not fitted yet; call fit(X) first.")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=CACHE_WARNING)
            if getattr(self.umap_, "_knn_search_index", None) is None:  # fitted on an exact kNN
                from pynndescent import NNDescent

                self.umap_._knn_search_index = NNDescent(
                    self.umap_._raw_data, metric="euclidean", n_neighbors=self.n_neighbors,
                    random_state=self.seed, n_jobs=1)
            return np.asarray(self.umap_.transform(self._prereduce(np.asarray(X, np.float32), fit=False)), np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on X and return the fitted layout."""
        return self.fit(X).embedding_


def exact_knn(X: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest rows (itself first) and their Euclidean distances, as umap-learn expects."""
    data = torch.as_tensor(np.asarray(X, dtype=np.float32))
    k = min(k, len(data))
    norms = data.square().sum(1)
    indices, dists = [], []
    for start in range(0, len(data), chunk):
        block = data[start : start + chunk]
        d2 = (norms[start : start + chunk, None] - 2 * block @ data.T + norms[None, :]).clamp_min_(0)
        rows = torch.arange(start, start + len(block))
        d2[rows - start, rows] = -1.0  # itself first, whatever the rounding
        found = d2.topk(k, dim=1, largest=False)
        indices.append(found.indices)
        dists.append(found.values.clamp_min(0).sqrt())
    return torch.cat(indices).numpy().astype(np.int64), torch.cat(dists).numpy().astype(np.float32)

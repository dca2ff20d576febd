"""t-SNE through openTSNE, imported only when used."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.reducers.base import NotFittedError, SeededReducer


class TSNEReducer(SeededReducer):
    """t-SNE (openTSNE) with a fixed random state, on a PCA pre-reduction for speed.

    2-D uses openTSNE's automatic gradient method (FFT from 10,000 tokens); 3-D
    always uses Barnes-Hut, the only method openTSNE has beyond two dimensions.

    Args:
        n_components: 2 or 3.
        perplexity: t-SNE's effective neighbourhood size (openTSNE lowers it for tiny inputs).
        pca_dims: reduce to this many dimensions with PCA first (``None`` to skip).
        seed: the random state of openTSNE; the same seed and data give the same layout.
        n_iter: optimisation iterations after the early-exaggeration ones (from PCA).
        init: optional array of shape (n_tokens, n_components) to start from (a
            warm start, e.g. the previous epoch's layout). It is centred but kept
            at its scale, since t-SNE distances are absolute. ``None`` starts from PCA.
        early_exaggeration_iter: early-exaggeration iterations; ``None`` means 250
            from PCA and 0 from ``init`` (a converged layout needs none, and
            skipping them keeps it in place).
        n_jobs: threads; 1 (the default) keeps results bit-for-bit reproducible.
        warm_n_iter: optimisation iterations when started from ``init`` (a converged
            start needs few).
        random_state: deprecated name of ``seed``.

    Attributes:
        embedding_: array of shape (n_tokens, n_components), the fitted layout.
        tsne_: the fitted ``openTSNE.TSNEEmbedding``, used by :meth:`transform`.
    """

    def __init__(
        self,
        n_components: int = 3,
        perplexity: float = 30,
        pca_dims: int | None = 50,
        seed: int = 0,
        n_iter: int = 500,
        init: np.ndarray | None = None,
        early_exaggeration_iter: int | None = None,
        n_jobs: int = 1,
        warm_n_iter: int = 100,
        *,
        random_state: int | None = None,
    ) -> None:
        super().__init__(n_components, pca_dims, seed, init, random_state)
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.n_jobs = n_jobs
        self.warm_n_iter = warm_n_iter

    def fit(self, X: np.ndarray) -> TSNEReducer:
        """Fit on X of shape (n_tokens, n_features).

        Raises:
            ValueError: when there are fewer than 4 tokens, or ``init`` has the wrong shape.
        """
        X, init = self._check_input(X)
        if X.shape[0] < 4:
            raise ValueError(f"t-SNE needs at least 4 tokens; got {X.shape[0]}. Use reducer='pca'.")
        openTSNE = require("openTSNE")
        exaggeration_iter = self.early_exaggeration_iter
        if exaggeration_iter is None:
            exaggeration_iter = 250 if init is None else 0
        tsne = openTSNE.TSNE(
            n_components=self.n_components,
            perplexity=min(self.perplexity, (X.shape[0] - 1) / 3),
            n_iter=self.n_iter if init is None else self.warm_n_iter,
            early_exaggeration_iter=exaggeration_iter,
            initialization="pca" if init is None else init - init.mean(0),
            negative_gradient_method="bh" if self.n_components > 2 else "auto",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            verbose=False,
        )
        with _quiet_scale_warning():
            self.tsne_ = tsne.fit(self._prereduce(X, fit=True))
        self.embedding_ = np.asarray(self.tsne_, dtype=np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new tokens X of shape (n_tokens, n_features) into the fitted layout.

        The fitted layout stays fixed; only the new points are optimised
        (openTSNE's ``TSNEEmbedding.transform``).
        """
        if not hasattr(self, "tsne_"):
            raise NotFittedError("This TSNEReducer is not fitted yet; call fit(X) first.")
        X = self._prereduce(np.asarray(X, np.float32), fit=False)
        k = min(25, len(self.embedding_) - 1)
        perplexity = min(5.0, (len(self.embedding_) - 1) / 3)
        return np.asarray(self.tsne_.transform(X, perplexity=perplexity, k=k), dtype=np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on X and return the fitted layout."""
        return self.fit(X).embedding_


@contextlib.contextmanager
def _quiet_scale_warning() -> Iterator[None]:
    """Silence openTSNE's log warning that a warm start is wider than std 1e-4 (it is, on purpose)."""
    logger = logging.getLogger("openTSNE.tsne")

    def keep(record: logging.LogRecord) -> bool:
        return "Standard deviation of embedding" not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)

"""The reducer interface: scikit-learn style fit / transform to 2 or 3 components."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Reducer(Protocol):
    """Anything with scikit-learn's ``fit_transform`` can reduce a view.

    ``fit_transform(X)`` takes X of shape (n_tokens, n_features) and returns an
    array of shape (n_tokens, n_components).
    """

    def fit_transform(self, X: Any) -> Any: ...  # Any, so jsonargparse accepts sklearn/umap estimators


class NotFittedError(RuntimeError):
    """``transform`` was called before ``fit``."""


def check_n_components(n_components: int) -> None:
    """Raise a clear error unless ``n_components`` is 2 or 3."""
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3 (a picture is 2-D or 3-D); got {n_components!r}.")


def check_matrix(X: np.ndarray, n_components: int) -> np.ndarray:
    """Validate X of shape (n_tokens, n_features) as finite float32 with enough rows."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n_tokens, n_features); got shape {X.shape}.")
    if X.shape[0] < 2:
        raise ValueError(f"At least 2 tokens are needed to reduce; got {X.shape[0]}.")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or Inf; filter those tokens before reducing.")
    return X


def check_init(init: np.ndarray | None, n_tokens: int, n_components: int) -> np.ndarray | None:
    """Validate a warm-start layout of shape (n_tokens, n_components) as finite float64, or pass ``None``."""
    if init is None:
        return None
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (n_tokens, n_components):
        raise ValueError(f"init must have shape (n_tokens, n_components) = {(n_tokens, n_components)}; got {init.shape}.")
    if not np.isfinite(init).all():
        raise ValueError("init contains NaN or Inf.")
    return init


class PCAPrereduction:
    """Mixin: project to ``self.pca_dims`` principal axes before a slow reducer (``None`` skips).

    Sets ``pca_mean_`` (n_features,) and ``pca_components_`` (pca_dims, n_features) when fitting.
    """

    pca_dims: int | None

    def _prereduce(self, X: np.ndarray, fit: bool) -> np.ndarray:
        if fit:
            self.pca_mean_ = self.pca_components_ = None
            if self.pca_dims is not None and X.shape[1] > self.pca_dims:
                from lightning_ner_viz.reducers.pca import pca_basis

                self.pca_mean_, self.pca_components_, _ = pca_basis(X, self.pca_dims)
        if self.pca_components_ is None:
            return X
        return ((X - self.pca_mean_) @ self.pca_components_.T).astype(np.float32)

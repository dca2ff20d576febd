"""Linear algebra and input checks shared by every reducer: the bottom of ``reducers/``."""

from __future__ import annotations

import numpy as np
import torch


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


def pca_basis(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, top-``k`` principal axes and their explained variance ratios, with deterministic signs.

    Each axis's sign makes its largest-magnitude loading positive (as scikit-learn's ``svd_flip``).

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


def pca_project(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """X of shape (n_tokens, n_features) on the axes of :func:`pca_basis`: float32 of shape (n_tokens, k)."""
    return ((np.asarray(X, dtype=np.float32) - mean) @ components.T).astype(np.float32)

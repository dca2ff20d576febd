"""Input checks and constants shared by the analysis modules."""

from __future__ import annotations

import numpy as np

NAN = float("nan")
"""What a metric returns when it is undefined (too few tokens, labels or predictions)."""


def as_matrix(X: np.ndarray, name: str, n_rows: int | None = None, dtype: type = np.float64) -> np.ndarray:
    """``X`` as a 2-D array of ``dtype``, of shape (n_rows, n_features) when ``n_rows`` is given.

    Raises:
        ValueError: naming ``name`` and the shape expected, for any other shape.
    """
    X = np.asarray(X, dtype=dtype)
    if X.ndim != 2 or n_rows not in (None, len(X)):
        raise ValueError(f"{name} must have shape ({n_rows or 'n_tokens'}, n_features); got shape {X.shape}.")
    return X

"""Dimensionality reducers with scikit-learn's fit / transform conventions."""

from __future__ import annotations

from typing import Any

from lightning_ner_viz.reducers.base import NotFittedError, Reducer, check_n_components
from lightning_ner_viz.reducers.pca import PCAReducer
from lightning_ner_viz.reducers.tsne import TSNEReducer
from lightning_ner_viz.reducers.umap import UMAPReducer

REDUCERS = {"pca": PCAReducer, "umap": UMAPReducer, "tsne": TSNEReducer}

__all__ = [
    "REDUCERS",
    "NotFittedError",
    "PCAReducer",
    "Reducer",
    "TSNEReducer",
    "UMAPReducer",
    "check_n_components",
    "make_reducer",
]


def make_reducer(reducer: str | Any, n_components: int, seed: int) -> Any:
    """A fresh reducer from a name (``"pca"``, ``"umap"``, ``"tsne"``) or an object with ``fit_transform``.

    Objects are returned as they are (``n_components`` and ``seed`` are then theirs).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
        TypeError: for an object without ``fit_transform``.
    """
    if isinstance(reducer, str):
        if reducer not in REDUCERS:
            raise ValueError(f"Unknown reducer {reducer!r}; choose one of {sorted(REDUCERS)} or pass an object with fit_transform.")
        if reducer in ("umap", "tsne"):
            return REDUCERS[reducer](n_components=n_components, random_state=seed)
        return REDUCERS[reducer](n_components=n_components)
    if not isinstance(reducer, Reducer):
        raise TypeError(f"reducer must be one of {sorted(REDUCERS)} or have fit_transform(X); got {type(reducer).__name__}.")
    return reducer

"""Dimensionality reducers with scikit-learn's fit / transform conventions.

The names and their validation (:mod:`~lightning_ner_viz.reducers.registry`) import neither
numpy nor torch; the reducer classes are imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightning_ner_viz.reducers.registry import (
    REDUCER_NAMES,
    Reducer,
    ReducerName,
    check_reducer,
    make_reducer,
    reducer_class,
)

if TYPE_CHECKING:
    from lightning_ner_viz.reducers._linalg import check_n_components, pca_basis
    from lightning_ner_viz.reducers.base import NotFittedError
    from lightning_ner_viz.reducers.pca import PCAReducer
    from lightning_ner_viz.reducers.tsne import TSNEReducer
    from lightning_ner_viz.reducers.umap import UMAPReducer

    REDUCERS: dict[str, type]

__all__ = [
    "REDUCERS",
    "REDUCER_NAMES",
    "NotFittedError",
    "PCAReducer",
    "Reducer",
    "ReducerName",
    "TSNEReducer",
    "UMAPReducer",
    "check_n_components",
    "check_reducer",
    "make_reducer",
    "pca_basis",
    "reducer_class",
]

_LAZY = {
    "NotFittedError": "lightning_ner_viz.reducers.base",
    "PCAReducer": "lightning_ner_viz.reducers.pca",
    "TSNEReducer": "lightning_ner_viz.reducers.tsne",
    "UMAPReducer": "lightning_ner_viz.reducers.umap",
    "check_n_components": "lightning_ner_viz.reducers._linalg",
    "pca_basis": "lightning_ner_viz.reducers._linalg",
}


def __getattr__(name: str) -> Any:
    if name == "REDUCERS":
        value: Any = {reducer: reducer_class(reducer) for reducer in REDUCER_NAMES}
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'lightning_ner_viz.reducers' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

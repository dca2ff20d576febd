"""The reducer choices: names, their ``Literal`` type, validation and construction.

This module imports neither numpy, torch nor any optional dependency, so argument
validation and the command line's ``--help`` stay light. Reducer classes are imported
only when :func:`make_reducer` or :func:`reducer_class` builds one.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, Protocol, get_args, runtime_checkable

ReducerName = Literal["pca", "umap", "tsne"]
"""A built-in reducer's name."""

REDUCER_NAMES: tuple[ReducerName, ...] = get_args(ReducerName)
"""The built-in reducers' names: ``("pca", "umap", "tsne")``."""

_CLASS_PATHS: dict[str, tuple[str, str]] = {
    "pca": ("lightning_ner_viz.reducers.pca", "PCAReducer"),
    "umap": ("lightning_ner_viz.reducers.umap", "UMAPReducer"),
    "tsne": ("lightning_ner_viz.reducers.tsne", "TSNEReducer"),
}


@runtime_checkable
class Reducer(Protocol):
    """Anything with scikit-learn's ``fit_transform`` can reduce a view.

    ``fit_transform(X)`` takes X of shape (n_tokens, n_features) and returns an
    array of shape (n_tokens, n_components).
    """

    def fit_transform(self, X: Any) -> Any: ...  # Any, so jsonargparse accepts sklearn/umap estimators


def check_reducer(reducer: object) -> None:
    """Raise unless ``reducer`` is a built-in reducer's name or an object with ``fit_transform``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
        TypeError: for an object without ``fit_transform``.
    """
    if isinstance(reducer, str):
        if reducer not in REDUCER_NAMES:
            raise ValueError(
                f"reducer={reducer!r} is not one of {sorted(REDUCER_NAMES)} (or pass an object with fit_transform)."
            )
    elif not isinstance(reducer, Reducer):
        raise TypeError(
            f"reducer must be one of {sorted(REDUCER_NAMES)} or have fit_transform(X); got {type(reducer).__name__}."
        )


def reducer_class(name: ReducerName) -> type:
    """The class of the built-in reducer ``name`` (imports its module).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    check_reducer(name)
    module, attribute = _CLASS_PATHS[name]
    return getattr(importlib.import_module(module), attribute)


def make_reducer(reducer: ReducerName | Reducer | str, n_components: int, seed: int) -> Any:
    """A fresh reducer from a name (``"pca"``, ``"umap"``, ``"tsne"``) or an object with ``fit_transform``.

    Objects are returned as they are (``n_components`` and ``seed`` are then theirs);
    PCA is deterministic and takes no seed.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
        TypeError: for an object without ``fit_transform``.
    """
    check_reducer(reducer)
    if not isinstance(reducer, str):
        return reducer
    cls = reducer_class(reducer)  # type: ignore[arg-type]
    if reducer == "pca":
        return cls(n_components=n_components)
    return cls(n_components=n_components, seed=seed)

"""What the built-in reducers share: the not-fitted error, the PCA pre-reduction, the seeded warm-startable base."""

from __future__ import annotations

import warnings

import numpy as np

from lightning_ner_viz.reducers._linalg import check_init, check_matrix, check_n_components, pca_basis, pca_project

_RANDOM_STATE_DEPRECATED = "random_state is deprecated; use seed instead."


class NotFittedError(RuntimeError):
    """``transform`` was called before ``fit``."""


def resolve_seed(seed: int, random_state: int | None, stacklevel: int = 3) -> int:
    """The seed, accepting the deprecated keyword ``random_state`` (with a ``DeprecationWarning``).

    Args:
        seed: the ``seed`` argument.
        random_state: the deprecated ``random_state`` argument, ``None`` when not given.
        stacklevel: the frame the warning points at (3: the caller of this function's caller).

    Raises:
        ValueError: when both are given and differ.
    """
    if random_state is None:
        return seed
    warnings.warn(_RANDOM_STATE_DEPRECATED, DeprecationWarning, stacklevel=stacklevel)
    if seed not in (0, random_state):
        raise ValueError(f"Pass only seed; got seed={seed!r} and random_state={random_state!r}.")
    return random_state


class PCAPrereduction:
    """Mixin: project to ``self.pca_dims`` principal axes before a slow reducer (``None`` skips).

    Sets ``pca_mean_`` (n_features,) and ``pca_components_`` (pca_dims, n_features) when fitting.
    """

    pca_dims: int | None
    pca_mean_: np.ndarray | None
    pca_components_: np.ndarray | None

    def _prereduce(self, X: np.ndarray, fit: bool) -> np.ndarray:
        if fit:
            self.pca_mean_ = self.pca_components_ = None
            if self.pca_dims is not None and X.shape[1] > self.pca_dims:
                self.pca_mean_, self.pca_components_ = pca_basis(X, self.pca_dims)[:2]
        if self.pca_components_ is None:
            return X
        return pca_project(X, self.pca_mean_, self.pca_components_)


class SeededReducer(PCAPrereduction):
    """Base of the seeded reducers that can start from a layout (UMAP, t-SNE).

    Stores the arguments they share; :meth:`_check_input` validates them at ``fit``.
    ``random_state`` is a deprecated name of ``seed``.
    """

    def __init__(
        self, n_components: int, pca_dims: int | None, seed: int, init: np.ndarray | None, random_state: int | None
    ) -> None:
        self.n_components = n_components
        self.pca_dims = pca_dims
        self.seed = resolve_seed(seed, random_state, stacklevel=4)  # the subclass's caller
        self.init = init

    @property
    def random_state(self) -> int:
        """Deprecated name of ``seed``."""
        warnings.warn(_RANDOM_STATE_DEPRECATED, DeprecationWarning, stacklevel=2)
        return self.seed

    @random_state.setter
    def random_state(self, value: int) -> None:
        warnings.warn(_RANDOM_STATE_DEPRECATED, DeprecationWarning, stacklevel=2)
        self.seed = value

    def _check_input(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``n_components``, X of shape (n_tokens, n_features) as float32, and ``init`` as float64 (or ``None``).

        Raises:
            ValueError: for ``n_components`` not 2 or 3, a bad X, or an ``init`` of the wrong shape.
        """
        check_n_components(self.n_components)
        X = check_matrix(X, self.n_components)
        return X, check_init(self.init, X.shape[0], self.n_components)

"""Frames: keep one view's per-epoch projections in one stable coordinate frame.

Reducing each epoch on its own gives arbitrary rotations, reflections and sign
flips, so clouds jump even when the model barely changed. A :class:`Frame` sees
the epochs of one view in order and returns coordinates that move only when the
features moved. Rows are sorted by token id before reducing, so row order never
changes a picture, and an epoch whose (token ids, features) are bit-for-bit those
of the previous epoch gets the previous coordinates back without refitting.
"""

from __future__ import annotations

import copy
import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.projection.aligned import aligned_umap
from lightning_ner_viz.projection.frame_names import (
    FRAME_NAMES, FrameName, check_frame, check_reducer_frame, resolve_frame,
)
from lightning_ner_viz.projection.procrustes import Similarity, align_procrustes, extent, procrustes_apply, procrustes_fit
from lightning_ner_viz.reducers._linalg import check_n_components
from lightning_ner_viz.reducers.extension import KernelExtension
from lightning_ner_viz.reducers.pca import PCAReducer
from lightning_ner_viz.reducers.registry import Reducer, ReducerName, make_reducer

__all__ = [
    "FRAMES", "FRAME_NAMES", "FixedFrame", "Frame", "FrameName", "IndependentFrame", "ProcrustesFrame", "Similarity",
    "WarmFrame", "align_procrustes", "aligned_umap", "extent", "make_frame", "procrustes_apply", "procrustes_fit",
]


class Frame(ABC):
    """Keeps ONE view's projections stable across epochs.

    Call :meth:`project` once per epoch, in epoch order. Use one frame per view.

    Args:
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``
            (as :func:`~lightning_ner_viz.reducers.make_reducer` accepts); objects are
            copied before each fit, never changed.
        n_components: 2 or 3.
        seed: random state of every fit; the same seed and data give the same coordinates.

    Attributes:
        token_id_: sorted token ids of the last epoch, shape (n,), or ``None``.
        coords_: their float64 coordinates in the frame, shape (n, n_components), or ``None``.
    """

    name: ClassVar[str]
    reuse_unchanged: bool = True
    """Return the previous coordinates when an epoch's ids and features are unchanged."""

    def __init__(self, reducer: ReducerName | Reducer = "pca", n_components: int = 3, seed: int = 0) -> None:
        check_n_components(n_components)
        make_reducer(reducer, n_components, seed)  # fail at construction, not mid-training
        self.reducer, self.n_components, self.seed = reducer, n_components, seed
        self.token_id_: np.ndarray | None = None
        self.coords_: np.ndarray | None = None
        self.digest_: str | None = None

    @abstractmethod
    def project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        """This epoch's coordinates in the frame.

        Args:
            token_id: int64 array of shape (n,), unique and stable across epochs.
            X: features of shape (n, n_features), rows paired with ``token_id``.

        Returns:
            float32 array of shape (n, n_components), rows in the input order.
        """

    def _layout(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        ids = np.asarray(token_id, dtype=np.int64)
        X = np.asarray(X, dtype=np.float32)
        if ids.ndim != 1 or X.ndim != 2 or len(ids) != len(X):
            raise ValueError(f"token_id must be (n,) and X (n, n_features); got {ids.shape} and {X.shape}.")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("token_id has duplicates; each token must appear once per epoch.")
        order = np.argsort(ids, kind="stable")
        ids, X = ids[order], np.ascontiguousarray(X[order])
        digest = hashlib.sha256(ids.tobytes() + np.asarray(X.shape).tobytes() + X.tobytes()).hexdigest()
        if not (self.reuse_unchanged and digest == self.digest_ and self.coords_ is not None):
            coords = np.asarray(self._layout(ids, X), dtype=np.float64)
            self.token_id_, self.coords_, self.digest_ = ids, coords, digest
        out = np.empty(self.coords_.shape, dtype=np.float32)
        out[order] = self.coords_
        return out

    def _make(self, n_tokens: int, init: np.ndarray | None = None) -> tuple[Any, bool]:
        """A fresh reducer for ``n_tokens`` (warm-started from ``init`` if it takes one) and whether it is a fallback."""
        if isinstance(self.reducer, str):
            reducer = make_reducer(self.reducer, self.n_components, self.seed)
        else:
            reducer = copy.copy(self.reducer)
        n_neighbors = getattr(reducer, "n_neighbors", None)
        if isinstance(n_neighbors, int) and n_tokens <= n_neighbors:
            warn(
                f"Only {n_tokens} tokens, not more than the reducer's n_neighbors={n_neighbors}: "
                "this epoch falls back to PCA. Sample more tokens or lower n_neighbors."
            )
            return PCAReducer(n_components=getattr(reducer, "n_components", self.n_components)), True
        if init is not None and hasattr(reducer, "init"):
            reducer.init = init
        return reducer, False

    def _fit(self, X: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self._make(len(X), init)[0].fit_transform(X), dtype=np.float64)

    def _fit_to_previous(self, ids: np.ndarray, coords: np.ndarray) -> Similarity | None:
        """The similarity aligning ``coords`` onto the last epoch over shared tokens (``None`` if impossible)."""
        if self.token_id_ is None:
            return None
        _, new, old = np.intersect1d(ids, self.token_id_, assume_unique=True, return_indices=True)
        if len(new) <= self.n_components:
            warn(f"Only {len(new)} tokens are shared with the previous epoch: this epoch is not aligned to it.")
            return None
        return procrustes_fit(coords[new], self.coords_[old])

    def _align(self, ids: np.ndarray, coords: np.ndarray) -> np.ndarray:
        similarity = self._fit_to_previous(ids, coords)
        return coords if similarity is None else procrustes_apply(coords, *similarity)

    def _reducer_name(self) -> str:
        return self.reducer if isinstance(self.reducer, str) else type(self.reducer).__name__

    def state_dict(self) -> dict[str, Any]:
        """The frame's state as JSON-able plain values, so a resumed run continues the same frame."""
        return {
            "frame": self.name,
            "reducer": self._reducer_name(),
            "n_components": self.n_components,
            "seed": self.seed,
            "token_id": None if self.token_id_ is None else self.token_id_.tolist(),
            "coords": None if self.coords_ is None else self.coords_.tolist(),
            "digest": self.digest_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also after a JSON round trip).

        Raises:
            ValueError: when the state is from another frame kind or ``n_components``.
        """
        if state.get("frame") != self.name or state.get("n_components") != self.n_components:
            raise ValueError(
                f"This state is for frame {state.get('frame')!r} with n_components={state.get('n_components')!r}; "
                f"this frame is {self.name!r} with n_components={self.n_components}."
            )
        if state.get("token_id") is None:
            self.token_id_ = self.coords_ = self.digest_ = None
            return
        self.token_id_ = np.asarray(state["token_id"], dtype=np.int64)
        self.coords_ = np.asarray(state["coords"], dtype=np.float64).reshape(len(self.token_id_), self.n_components)
        self.digest_ = state.get("digest")


class IndependentFrame(Frame):
    """A fresh fit each epoch, no alignment: the baseline whose clouds jump."""

    name = "independent"

    def project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._project(token_id, X)

    def _layout(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._fit(X)


class ProcrustesFrame(Frame):
    """Fit each epoch, then rotate / reflect / scale / shift it onto the previous epoch over shared tokens."""

    name = "procrustes"

    def project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._project(token_id, X)

    def _layout(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._align(token_id, self._fit(X))


class WarmFrame(Frame):
    """Start each epoch's fit (UMAP, t-SNE) from the previous layout, then Procrustes-align it.

    Tokens new this epoch start at the previous cloud's mean plus a tiny
    deterministic jitter. Reducers without an ``init`` (PCA) behave as ``procrustes``;
    :func:`~lightning_ner_viz.projection.frame_names.check_reducer_frame`, which checks
    a user's choice, refuses them.
    """

    name = "warm"

    def project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: D102
        return self._project(token_id, X)

    def _layout(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._align(token_id, self._fit(X, init=self._warm_init(token_id)))

    def _warm_init(self, ids: np.ndarray) -> np.ndarray | None:
        if self.token_id_ is None:
            return None
        init = np.empty((len(ids), self.n_components))
        known = np.isin(ids, self.token_id_, assume_unique=True)
        init[known] = self.coords_[np.searchsorted(self.token_id_, ids[known])]
        jitter = np.random.default_rng(self.seed).standard_normal(((~known).sum(), self.n_components))
        init[~known] = self.coords_.mean(0) + jitter * 1e-4 * (extent(self.coords_) or 1.0)
        return init


class FixedFrame(Frame):
    """Fit once on the first epoch, then map later epochs into that layout.

    PCA keeps its basis. For UMAP, t-SNE and other reducers the first epoch's layout is
    extended to new inputs by :class:`~lightning_ner_viz.reducers.extension.KernelExtension`
    (Gaussian kernel regression), a smooth map, so a point moves only as much as its
    features moved; the first epoch is drawn through the same map.
    An epoch that fell back to PCA (too few tokens) does not fix the frame: the
    first full fit is aligned onto it and then fixed. A resumed run restores a PCA
    basis exactly; other reducers refit once and are aligned onto the saved layout.

    Raises:
        TypeError: at the first :meth:`project` when the reducer object has no ``transform``.
    """

    name = "fixed"

    def __init__(self, reducer: ReducerName | Reducer = "pca", n_components: int = 3, seed: int = 0) -> None:
        super().__init__(reducer, n_components, seed)
        self.fitted_: Any = None
        self.similarity_: Similarity | None = None

    def project(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:  # noqa: D102
        check_reducer_frame(self.reducer, self.name)
        return self._project(token_id, X)

    def _layout(self, token_id: np.ndarray, X: np.ndarray) -> np.ndarray:
        if self.fitted_ is not None:
            coords = np.asarray(self.fitted_.transform(X), dtype=np.float64)
            return coords if self.similarity_ is None else procrustes_apply(coords, *self.similarity_)
        reducer, fell_back = self._make(len(X))
        coords = np.asarray(reducer.fit_transform(X), dtype=np.float64)
        if not fell_back and not isinstance(reducer, PCAReducer):
            # UMAP's/t-SNE's transform is not a smooth function of the input (a tiny change can move a
            # point far); a kernel regression on the fitted layout is.
            reducer = KernelExtension(n_neighbors=getattr(reducer, "n_neighbors", 15)).fit(X, coords)
        if not fell_back:  # every epoch from the same map, the first one too
            coords = np.asarray(reducer.transform(X), dtype=np.float64)
        similarity = self._fit_to_previous(token_id, coords)
        if not fell_back:
            self.fitted_, self.similarity_ = reducer, similarity
        return coords if similarity is None else procrustes_apply(coords, *similarity)

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        state = super().state_dict()
        if self.similarity_ is not None:
            rotation, scale, translation = self.similarity_
            state["similarity"] = {"rotation": rotation.tolist(), "scale": scale, "translation": translation.tolist()}
        if isinstance(self.fitted_, PCAReducer):
            state["pca"] = {k: getattr(self.fitted_, k).tolist() for k in ("mean_", "components_", "explained_variance_ratio_")}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        self.fitted_ = self.similarity_ = None
        if "pca" in state and state.get("reducer") == self._reducer_name():
            self.fitted_ = PCAReducer(n_components=self.n_components)
            for key, value in state["pca"].items():
                setattr(self.fitted_, key, np.asarray(value, dtype=np.float32))
            if "similarity" in state:
                s = state["similarity"]
                self.similarity_ = (np.asarray(s["rotation"]), float(s["scale"]), np.asarray(s["translation"]))


FRAMES: dict[str, type[Frame]] = {cls.name: cls for cls in (ProcrustesFrame, FixedFrame, WarmFrame, IndependentFrame)}
"""Frame name to class, in the order of :data:`~lightning_ner_viz.projection.frame_names.FRAME_NAMES`."""


def make_frame(
    name: FrameName | str, reducer: ReducerName | Reducer = "pca", n_components: int = 3, seed: int = 0
) -> Frame:
    """A new frame by name (``procrustes``, ``fixed``, ``warm``, ``independent``, or ``auto``: see
    :func:`~lightning_ner_viz.projection.frame_names.resolve_frame`).

    Raises:
        ValueError: for an unknown frame or reducer name, listing the valid ones.
        TypeError: for a reducer object without ``fit_transform``.
    """
    name = resolve_frame(name, reducer)
    check_frame(name)
    return FRAMES[name](reducer, n_components, seed)

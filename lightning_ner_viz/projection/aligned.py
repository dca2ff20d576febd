"""The offline ``aligned`` frame: every saved epoch laid out together with ``umap.AlignedUMAP``."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.reducers._linalg import check_n_components, pca_basis, pca_project
from lightning_ner_viz.reducers.compiled_cache import CACHE_WARNING, cache_umap_code
from lightning_ner_viz.reducers.umap import UMAPReducer
from lightning_ner_viz.snapshot import Snapshot


def aligned_umap(
    snapshots: list[Snapshot], view: str, n_components: int = 3, seed: int = 0, pca_dims: int | None = 50, **umap_kwargs: Any
) -> list[np.ndarray]:
    """Offline aligned re-render of one view across epochs with ``umap.AlignedUMAP``.

    Consecutive snapshots are tied by the token ids they share. Features are first
    reduced to ``pca_dims`` principal axes per snapshot, as the reducers do.

    Args:
        snapshots: the epochs, in order.
        view: the view name in every snapshot's ``views``.
        umap_kwargs: passed to ``AlignedUMAP`` (``n_neighbors``, ``n_epochs``, ...).

    Returns:
        One float32 array of shape (n_tokens_i, n_components) per snapshot.
    """
    check_n_components(n_components)
    if not snapshots:
        return []
    n_neighbors = umap_kwargs.get("n_neighbors", 15)
    features = []
    for snap in snapshots:
        if view not in snap.views:
            raise ValueError(f"Snapshot of epoch {snap.epoch} has no view {view!r}; it has {sorted(snap.views)}.")
        if len(snap) <= n_neighbors:
            raise ValueError(f"UMAP needs more tokens than n_neighbors={n_neighbors}; epoch {snap.epoch} has {len(snap)}.")
        if len(np.unique(snap.token_id)) != len(snap):
            raise ValueError(f"Snapshot of epoch {snap.epoch} has duplicate token ids.")
        X = np.asarray(snap.views[view], dtype=np.float32)
        if pca_dims is not None and X.shape[1] > pca_dims:
            X = pca_project(X, *pca_basis(X, pca_dims)[:2])
        features.append(X)
    if len(snapshots) == 1:
        kwargs = {k: v for k, v in umap_kwargs.items() if k in ("n_neighbors", "min_dist", "n_epochs")}
        return [UMAPReducer(n_components=n_components, seed=seed, pca_dims=None, **kwargs).fit_transform(features[0])]
    relations = []
    for before, after in zip(snapshots, snapshots[1:]):
        _, i, j = np.intersect1d(before.token_id, after.token_id, assume_unique=True, return_indices=True)
        if len(i) == 0:
            raise ValueError(f"Epochs {before.epoch} and {after.epoch} share no token ids; they cannot be aligned.")
        relations.append(dict(zip(i.tolist(), j.tolist())))
    umap = require("umap")
    cache_umap_code()  # AlignedUMAP's layout code too: loaded from disk after the first run on a machine
    mapper = umap.AlignedUMAP(n_components=n_components, random_state=seed, **umap_kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded: single thread
        warnings.filterwarnings("ignore", message=CACHE_WARNING)  # NN-descent compiles in each process
        mapper.fit(features, relations=relations)
    return [np.asarray(e, dtype=np.float32) for e in mapper.embeddings_]

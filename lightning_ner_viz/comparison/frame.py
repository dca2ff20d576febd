"""The shared frame: every run's clouds in the reference run's coordinates, snapshot by snapshot.

The reference run's view is projected in its own stable frame across the snapshots (as the callback does:
:func:`~lightning_ner_viz.projection.frames.make_frame`, ``procrustes`` for PCA, ``fixed`` for UMAP and
t-SNE). Each other run is then put into that frame at each snapshot, over the shared tokens:

- with PCA (a linear map), in the original space: its vectors are rotated onto the reference run's by
  orthogonal Procrustes (:func:`~lightning_ner_viz.comparison.metrics.align_onto`, as for the centroid
  distances), then mapped by the reference's own projection (the least-squares linear map from the reference's
  aligned vectors to its coordinates, exact for PCA). A token sits where the reference's projection would put
  its vector from the other run;
- with UMAP and t-SNE (not linear), its own projection is rotated, reflected, scaled and shifted onto the
  reference's coordinates.

What still differs between two panels is what the runs learned differently, not an arbitrary rotation.
"""

from __future__ import annotations

import numpy as np

from lightning_ner_viz.comparison.metrics import align_onto
from lightning_ner_viz.comparison.runs import MatchedSnapshot
from lightning_ner_viz.projection.frame_names import resolve_frame
from lightning_ner_viz.projection.frames import make_frame
from lightning_ner_viz.projection.procrustes import procrustes_apply, procrustes_fit
from lightning_ner_viz.reducers.registry import Reducer, ReducerName


def frame_name(reducer: ReducerName | Reducer) -> str:
    """The frame each run's epochs share with this reducer (``procrustes`` for PCA, ``fixed`` for UMAP/t-SNE)."""
    return resolve_frame("auto", reducer)


def shared_frame(matched: list[MatchedSnapshot], view: str, reducer: ReducerName | Reducer = "pca",
                 n_components: int = 2, seed: int = 0) -> list[list[np.ndarray]]:
    """Every run's coordinates of ``view`` at every matched snapshot, in the reference run's frame.

    Args:
        matched: the matched snapshots, in capture order (see :func:`~lightning_ner_viz.comparison.runs.match_runs`).
        view: the view to project (``hidden``, ``emissions``...).
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        n_components: 2 or 3.
        seed: the reducers' random state.

    Returns:
        ``coords[s][r]``: float32 array of shape (n_shared, n_components) of run ``r`` at snapshot ``s``,
        rows in the order of ``matched[s].token_id``.
    """
    if not matched:
        return []
    n_runs = len(matched[0].snapshots)
    linear = reducer == "pca"
    frames = [make_frame(frame_name(reducer), reducer, n_components, seed) for _ in range(1 if linear else n_runs)]
    out: list[list[np.ndarray]] = []
    for snapshot in matched:
        reference = np.asarray(frames[0].project(snapshot.token_id, snapshot.view(0, view)), dtype=np.float64)
        if linear:
            others = [through_reference(snapshot.view(0, view), snapshot.view(r, view), reference)
                      for r in range(1, n_runs)]
        else:
            own = [np.asarray(frames[r].project(snapshot.token_id, snapshot.view(r, view)), dtype=np.float64)
                   for r in range(1, n_runs)]
            others = [procrustes_apply(c, *procrustes_fit(c, reference)) for c in own]
        out.append([c.astype(np.float32) for c in (reference, *others)])
    return out


def through_reference(reference: np.ndarray, other: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``other``'s rows where the reference's linear projection puts them: ``other`` rotated onto ``reference`` in the
    original space (:func:`~lightning_ner_viz.comparison.metrics.align_onto`), then mapped by the least-squares
    linear map (with a shift) from the reference's aligned vectors to its coordinates ``coords``."""
    a, b = align_onto(reference, other)
    ones = np.ones((len(a), 1))
    weights = np.linalg.lstsq(np.hstack([a, ones]), coords, rcond=None)[0]
    return np.hstack([b, ones]) @ weights

"""The computation half of rendering: each view in its stable frame, plus the drift metrics.

A :class:`Projector` holds no sink and no open file, so it can run in the training
process or in a separate low-priority process (:mod:`lightning_ner_viz.projection.process`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_ner_viz.projection.frames import Frame, make_frame
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis, EpochAnalyst
from lightning_ner_viz.analysis.epoch_metrics import epoch_metrics
from lightning_ner_viz.analysis.label_issue_report import LabelIssueFinder
from lightning_ner_viz.analysis.layers import LayerAnalyst
from lightning_ner_viz.snapshot import Snapshot, load_layers
from lightning_ner_viz.store import SnapshotStore


@dataclass
class Projection:
    """One snapshot's coordinates and metrics, and the frame state right after it.

    Attributes:
        name: the snapshot's name (see :class:`~lightning_ner_viz.keys.SnapshotKey`).
        coords: view name to an array of shape (n_tokens, n_components).
        group_coords: group name (``entities``, ``cls``) to its coordinates.
        metrics: metric name to value (drift, separation, F1, trustworthiness).
        state: every frame's state after this epoch (plain values, JSON-able).
        analysis: the snapshot's error geometry, class similarity and sub-clusters.
    """

    name: str
    coords: dict[str, np.ndarray]
    group_coords: dict[str, np.ndarray]
    metrics: dict[str, float]
    state: dict[str, Any] = field(default_factory=dict)
    analysis: EpochAnalysis | None = None


class Projector:
    """Projects snapshots, one epoch at a time and in order, into each view's frame.

    Each view (and each group) has its own :class:`~lightning_ner_viz.projection.frames.Frame`,
    so a point moves only when the model changed. Drift metrics compare each epoch
    with the previous and the first one, in the original feature space.

    Args:
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        n_components: 2 or 3.
        seed: the reducers' random state.
        frame: ``"procrustes"``, ``"fixed"``, ``"warm"`` or ``"independent"``.
        store: the saved snapshots, so that a resumed run can compare with the first and
            previous epochs.
    """

    def __init__(
        self,
        reducer: str | Any = "pca",
        n_components: int = 3,
        seed: int = 0,
        frame: str = "procrustes",
        store: SnapshotStore | None = None,
    ) -> None:
        self.reducer = reducer
        self.n_components = n_components
        self.seed = seed
        self.frame = frame
        self.store = store
        self.frames: dict[str, Frame] = {}
        self.first: Snapshot | None = None
        self.previous: Snapshot | None = None
        self._frame_states: dict[str, dict[str, Any]] = {}
        self.analyst = EpochAnalyst()
        self.issues = LabelIssueFinder(store)
        self.layers = LayerAnalyst(self._earlier_layers, seed)

    def _project_views(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        coords = {}
        for view, vectors in snapshot.views.items():
            if view not in self.frames:
                self.frames[view] = make_frame(self.frame, self.reducer, self.n_components, self.seed)
                if view in self._frame_states:
                    self.frames[view].load_state_dict(self._frame_states[view])
            coords[view] = np.asarray(self.frames[view].project(snapshot.token_id, vectors), dtype=np.float32)
        return coords

    def _earlier_snapshots(self, snapshot: Snapshot) -> None:
        """After a resume, read the first and previous snapshots back from disk."""
        if self.first is not None or self.store is None:
            return
        earlier = [k.name for k in self.store.keys() if k.order() < snapshot.key.order()]
        if earlier:
            self.first, self.previous = self.store.load(earlier[0]), self.store.load(earlier[-1])

    def project(self, snapshot: Snapshot) -> Projection:
        """Coordinates of every view and group of ``snapshot``, and its metrics.

        Groups with fewer than two rows are not projected (``snapshot.groups`` should
        hold only groups with two rows or more).
        """
        self._earlier_snapshots(snapshot)
        previous = self.previous
        coords = self._project_views(snapshot)
        metrics = epoch_metrics(snapshot, coords, previous=self.previous, first=self.first)
        group_coords = {}
        for name, group in snapshot.groups.items():
            if len(group) < 2:
                continue
            group_coords[name] = self._project_views(group)[name]
            before = [s.groups.get(name) if s is not None else None for s in (self.previous, self.first)]
            found = epoch_metrics(group, {name: group_coords[name]}, *before)
            metrics.update({k: v for k, v in found.items() if k.startswith(f"{name}/")})
        self.first = self.first or snapshot
        self.previous = snapshot
        analysis = self.analyst.analyse(snapshot, previous)
        try:
            analysis.label_issues = self.issues.update(snapshot)
        except ModuleNotFoundError as err:  # cleanlab: the other analyses go on
            analysis.notes.append(f"No label issues: {err}")
        if analysis.label_issues is not None:
            metrics.update(analysis.label_issues.metrics())
            analysis.notes.extend(analysis.label_issues.notes)
        analysis.layers = self.layers.update(snapshot)
        if analysis.layers is not None:
            metrics.update(analysis.layers.metrics())
            analysis.notes.extend(analysis.layers.notes)
        snapshot.layers = {}  # only their numbers go on (the vectors are on disk): previous/first stay small
        return Projection(snapshot.key.name, coords, group_coords, metrics, self.state_dict(), analysis)

    def _earlier_layers(self, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """An earlier snapshot's token ids and layers (its hidden views when it has no layers), read from disk."""
        if self.store is None or not self.store.has(name):
            return None
        directory = self.store.directory(name)
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            layers = load_layers(directory) or {k[len("view."):]: npz[k] for k in npz.files if k.startswith("view.hidden")}
            return npz["token_id"], layers

    def state_dict(self) -> dict[str, Any]:
        """Each view's frame reference (plain values), so a resumed run stays in the same frame."""
        states = dict(self._frame_states)
        states.update({view: frame.state_dict() for view, frame in self.frames.items()})
        return {"frames": states, "clusters": self.analyst.state_dict(), "layers": self.layers.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore frame references; frames are rebuilt lazily with them."""
        self._frame_states = dict(state.get("frames", {}))
        self.analyst.load_state_dict(state.get("clusters", {}))
        self.layers.load_state_dict(state.get("layers", {}))
        for view, frame in self.frames.items():
            if view in self._frame_states:
                frame.load_state_dict(self._frame_states[view])

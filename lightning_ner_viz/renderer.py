"""Rank zero's half of the pipeline: project each view in a stable frame, measure, log to the sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.frames import Frame, make_frame
from lightning_ner_viz.metrics import epoch_metrics
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.snapshot import Snapshot


class Renderer:
    """Turns snapshots, one epoch at a time and in order, into coordinates and metrics for every sink.

    Each view has its own :class:`~lightning_ner_viz.frames.Frame`, so a point moves
    only when the model changed. Drift metrics compare each epoch with the previous
    and the first one, in the original feature space.

    A failing sink warns once with its cause and is skipped for that epoch; the
    other sinks and the training run go on. With ``strict=True`` it raises.

    Args:
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        n_components: 2 or 3.
        seed: the reducers' random state.
        sinks: where to log.
        strict: re-raise sink errors instead of warning.
        frame: ``"procrustes"``, ``"fixed"``, ``"warm"`` or ``"independent"``.
        snapshot_root: where earlier snapshots are, so that a resumed run can compare
            with the first and previous epochs.
    """

    def __init__(
        self,
        reducer: str | Any,
        n_components: int,
        seed: int,
        sinks: list[Sink],
        strict: bool = False,
        frame: str = "procrustes",
        snapshot_root: str | Path | None = None,
    ) -> None:
        self.reducer = reducer
        self.n_components = n_components
        self.seed = seed
        self.sinks = sinks
        self.strict = strict
        self.frame = frame
        self.snapshot_root = Path(snapshot_root) if snapshot_root is not None else None
        self.frames: dict[str, Frame] = {}
        self.first: Snapshot | None = None
        self.previous: Snapshot | None = None
        self.failed_sinks: dict[int, str] = {}
        self._frame_states: dict[str, dict[str, Any]] = {}

    def project(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        """View name to coordinates of shape (n_rows, n_components), in each view's frame."""
        coords = {}
        for view, vectors in snapshot.views.items():
            if view not in self.frames:
                self.frames[view] = make_frame(self.frame, self.reducer, self.n_components, self.seed)
                if view in self._frame_states:
                    self.frames[view].load_state_dict(self._frame_states[view])
            coords[view] = np.asarray(self.frames[view].project(snapshot.token_id, vectors), dtype=np.float32)
        return coords

    def _earlier_snapshots(self, epoch: int) -> None:
        """After a resume, read the first and previous epochs back from disk."""
        if self.first is not None or self.snapshot_root is None or not self.snapshot_root.is_dir():
            return
        dirs = sorted(p for p in self.snapshot_root.glob("epoch=*") if p.is_dir() and int(p.name[6:]) < epoch)
        if dirs:
            self.first, self.previous = Snapshot.load(dirs[0]), Snapshot.load(dirs[-1])

    def render(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        """Project, measure and log one snapshot to every sink."""
        self._earlier_snapshots(snapshot.epoch)
        coords = self.project(snapshot)
        metrics = epoch_metrics(snapshot, coords, previous=self.previous, first=self.first)
        snapshot.groups = {name: group for name, group in snapshot.groups.items() if len(group) > 1}
        group_coords = {}
        for name, group in snapshot.groups.items():
            group_coords[name] = self.project(group)[name]
            before = [s.groups.get(name) if s is not None else None for s in (self.previous, self.first)]
            found = epoch_metrics(group, {name: group_coords[name]}, *before)
            metrics.update({k: v for k, v in found.items() if k.startswith(f"{name}/")})
        self.log(snapshot, coords, metrics, group_coords)
        self.first = self.first or snapshot
        self.previous = snapshot
        return coords

    def log(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float],
            group_coords: dict[str, np.ndarray] | None = None) -> None:
        """Hand one epoch (and its groups) to every sink, isolating their failures."""
        for sink in self.sinks:
            try:
                sink.log_epoch(snapshot, coords, metrics)
                for name, xyz in (group_coords or {}).items():
                    sink.log_group(name, snapshot.groups[name], xyz)
            except Exception as err:
                if self.strict:
                    raise
                if id(sink) not in self.failed_sinks:
                    warn(
                        f"{sink!r} failed at epoch {snapshot.epoch} and is skipped "
                        f"({type(err).__name__}: {err}). Training goes on; the snapshot stays on disk."
                    )
                self.failed_sinks[id(sink)] = repr(err)

    def state_dict(self) -> dict[str, Any]:
        """Each view's frame reference (plain values), so a resumed run stays in the same frame."""
        states = dict(self._frame_states)
        states.update({view: frame.state_dict() for view, frame in self.frames.items()})
        return {"frames": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore frame references; frames are rebuilt lazily with them."""
        self._frame_states = dict(state.get("frames", {}))
        for view, frame in self.frames.items():
            if view in self._frame_states:
                frame.load_state_dict(self._frame_states[view])

    def close(self) -> None:
        """Close every sink, warning about (not raising) failures unless strict."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:
                if self.strict:
                    raise
                warn(f"{sink!r} failed to close ({type(err).__name__}: {err}).")


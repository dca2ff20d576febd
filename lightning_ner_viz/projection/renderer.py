"""Rank zero's half of the pipeline: project each epoch (here or in a child process), log to the sinks."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.keys import SnapshotKey, parse_key
from lightning_ner_viz.projection.projector import Projection, Projector
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.snapshot import Snapshot
from lightning_ner_viz.store import SnapshotStore

PLACES = ("thread", "process")

DROPPED_CLOSE_SECONDS = 2.0
"""How long a dropped sink (one that failed) is given to close before it is left behind."""


class Renderer:
    """Turns snapshots, one epoch at a time and in order, into coordinates and metrics for every sink.

    The projection (frames and metrics, see :class:`~lightning_ner_viz.projection.projector.Projector`)
    runs in this process or, with ``place="process"``, in a pooled low-priority child
    process; if that child dies, the renderer warns and goes on in this process.

    A sink that raises (a write error such as a full disk, a flush that timed out, a bug) is
    dropped for the rest of the run: one warning names it, the cause, where the snapshots are
    kept and the command that draws every epoch; it is closed within
    :data:`DROPPED_CLOSE_SECONDS` and never called again, so a broken sink costs at most one
    stall, not one per epoch. The other sinks and the training run go on. With ``strict=True``
    it raises.

    Args:
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        n_components: 2 or 3.
        seed: the reducers' random state.
        sinks: where to log.
        strict: re-raise sink errors instead of warning.
        frame: ``"procrustes"``, ``"fixed"``, ``"warm"`` or ``"independent"``.
        store: the saved snapshots: a resumed run reads the first and previous epochs from it,
            and each rendered epoch's frame state is written into it.
        place: ``"thread"`` (project in the calling thread) or ``"process"``.
    """

    def __init__(
        self,
        reducer: str | Any,
        n_components: int,
        seed: int,
        sinks: list[Sink],
        strict: bool = False,
        frame: str = "procrustes",
        store: SnapshotStore | None = None,
        place: str = "thread",
    ) -> None:
        if place not in PLACES:
            raise ValueError(f"place={place!r} is not one of {PLACES}.")
        self.sinks = sinks
        self.strict = strict
        self.place = place
        self.store = store
        self.projector = Projector(reducer, n_components, seed, frame, store)
        self.rendered: list[str] = []  # snapshot names, in order
        self.logged: list[str] = []  # those at least one sink logged
        self.failed_sinks: dict[int, str] = {}
        self._state: dict[str, Any] = {}
        self._notes: set[str] = set()  # analysis notes warned about once
        self._process: Any = None

    def _start_process(self) -> Any:
        """The projector child in use, started (with this projector) when there is none; ``None`` when none can run
        (then ``place`` is ``"thread"`` from now on, after one warning)."""
        from lightning_ner_viz.projection.process import ProjectorError, acquire

        if self._process is not None:
            return self._process
        try:
            process = acquire()
        except OSError as err:  # no usable Python executable to start
            self.place = "thread"
            warn(f"Projecting in the training process: could not start a child process ({err}).")
            return None
        self._process = process  # a shutdown can kill it while it boots
        try:
            process.start(self.projector)
        except ProjectorError as err:  # e.g. a reducer class defined in __main__
            self._process = None
            process.close(timeout=1.0)
            self.place = "thread"
            warn("Projecting in the training process: the reducer cannot be sent to a child "
                 f"process ({str(err).splitlines()[0]}).")
            return None
        except BaseException:
            self._process = None
            raise
        return process

    def prepare(self) -> None:
        """Start the projector child (with ``place="process"``) and have it import and compile what a projection
        needs, and import what the sinks need, before the first epoch; the rendering thread calls it at ``setup``.

        Without it the first epoch's picture also waits for the child's boot (about 2 s: Python,
        torch, scikit-learn) and, with UMAP, for numba's code. A child that dies here is started
        again at the first epoch.
        """
        from lightning_ner_viz.projection.process import ProjectionAbandoned, ProjectorProcessDied
        from lightning_ner_viz.projection.warm_up import import_for_sinks

        try:
            process = self._start_process() if self.place == "process" else None
            if process is not None:
                process.warm_up()
        except (ProjectorProcessDied, ProjectionAbandoned):  # died, or a shutdown killed it: nothing was lost
            self._drop_process(kill=True)
            return
        import_for_sinks(self.sinks)

    def _project(self, snapshot: Snapshot) -> Projection:
        if self.place == "process":
            from lightning_ner_viz.projection.process import ProjectorProcessDied

            try:
                process = self._start_process()
                if process is not None:
                    return process.project(snapshot)
            except ProjectorProcessDied as err:
                warn(f"{err}; projecting {snapshot.label} and later snapshots in the training process instead.")
                self._drop_process(kill=True)
                self.place = "thread"
                self.projector.load_state_dict(self._state)
        return self.projector.project(snapshot)

    def render(self, snapshot: Snapshot, record_state: bool = True) -> None:
        """Project, measure and log one snapshot to every sink.

        Once a sink has the epoch (or there is no sink), its frame state is written beside its
        saved snapshot (with ``record_state`` and a store), so a resumed run knows it was
        rendered; an epoch no sink logged is rendered again on resume.
        """
        snapshot.groups = {name: group for name, group in snapshot.groups.items() if len(group) > 1}
        projection = self._project(snapshot)
        logged = self.log(snapshot, projection.coords, projection.metrics, projection.group_coords,
                          projection.analysis)
        self._state = projection.state
        self.rendered.append(snapshot.key.name)
        if self.store is not None and record_state and (logged or not self.sinks):
            self.store.write_render_state(snapshot.key.name, projection.state)

    @property
    def rendered_epochs(self) -> list[int]:
        """The fit epochs rendered (with or without a sink logging them), in order."""
        return fit_epochs(self.rendered)

    @property
    def logged_epochs(self) -> list[int]:
        """The fit epochs at least one sink logged, in order (see :attr:`logged` for every snapshot)."""
        return fit_epochs(self.logged)

    @property
    def child_pid(self) -> int | None:
        """The projector child process's id while one is in use, else ``None``."""
        return None if self._process is None else self._process.pid

    def log(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float],
            group_coords: dict[str, np.ndarray] | None = None, analysis: EpochAnalysis | None = None) -> int:
        """Hand one epoch (and its groups) to every sink, isolating their failures.

        The snapshot joins :attr:`logged` when at least one sink logged it. When every
        sink failed, one warning says so and how to recover the epoch from its snapshot.

        Returns:
            How many sinks logged the epoch.
        """
        logged = 0
        for note in analysis.notes if analysis is not None else []:
            if note not in self._notes:
                self._notes.add(note)
                warn(note)
        for sink in self.sinks:
            if id(sink) in self.failed_sinks:
                continue  # dropped after an earlier failure
            try:
                sink.log_epoch(snapshot, coords, metrics)
                for name, xyz in (group_coords or {}).items():
                    sink.log_group(name, snapshot.groups[name], xyz)
                if analysis is not None:
                    sink.log_analysis(snapshot, analysis)
                logged += 1
            except Exception as err:
                if self.strict:
                    raise
                self._drop(sink, snapshot.label, err)
        if logged:
            self.logged.append(snapshot.key.name)
        elif self.sinks:
            warn(f"No sink logged {snapshot.label}: all {len(self.sinks)} failed. {self._recovery(snapshot.key.name)}.")
        return logged

    def flush(self) -> None:
        """Flush every sink still in use (a failing one is dropped, as in :meth:`log`)."""
        for sink in self.sinks:
            if id(sink) not in self.failed_sinks:
                try:
                    sink.flush()
                except Exception as err:
                    if self.strict:
                        raise
                    self._drop(sink, "flush", err)

    def _drop(self, sink: Sink, label: str, err: Exception) -> None:
        """Warn once, then stop using ``sink`` for the rest of the run and close it within a deadline."""
        self.failed_sinks[id(sink)] = repr(err)
        kept = "The other sinks go on"
        if self.store is not None:
            from lightning_ner_viz.runtime.shutdown import one_of_commands, render_commands

            p = self.projector
            commands = render_commands(self.store, [sink], p.reducer, p.frame, p.n_components)
            kept += (f", and so does training; every captured epoch's snapshot is kept under {self.store.root}, and "
                     f"{one_of_commands(commands)} draws them all")
        warn(f"{sink!r} failed at {label} ({type(err).__name__}: {err}); it is dropped for the rest of "
             f"the run (not called again, closed within {DROPPED_CLOSE_SECONDS:g} s). {kept}.")
        closer = threading.Thread(target=_close_quietly, args=(sink,), name="ner-viz-close-dropped-sink", daemon=True)
        closer.start()
        closer.join(DROPPED_CLOSE_SECONDS)

    def _recovery(self, name: str) -> str:
        if self.store is None:
            return "Nothing was drawn for it"
        from lightning_ner_viz.runtime.shutdown import one_of_commands, render_commands

        p = self.projector
        commands = render_commands(self.store, self.sinks, p.reducer, p.frame, p.n_components)
        return (f"Its snapshot is in {self.store.directory(name)}; once the sinks work again, "
                f"{one_of_commands(commands)} draws it")

    def state_dict(self) -> dict[str, Any]:
        """The frames' state after the last rendered snapshot (it never waits for pending work)."""
        return {**self._state, "rendered": list(self.rendered), "logged": list(self.logged)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (or a saved render state; older ones listed epochs)."""
        self.rendered = list(state.get("rendered", legacy_names(state.get("rendered_epochs", []))))
        self.logged = list(state.get("logged", legacy_names(state.get("logged_epochs", [])) or self.rendered))
        self._state = {k: v for k, v in state.items() if k not in _BOOKKEEPING}
        self.projector.load_state_dict(self._state)
        if self._process is not None:
            self._process.start(self.projector)

    def _drop_process(self, kill: bool = False) -> None:
        if self._process is None:
            return
        from lightning_ner_viz.projection.process import release

        if kill:
            self._process.close(timeout=1.0)
        else:
            release(self._process)
        self._process = None

    def close(self) -> None:
        """Close every sink still in use, warning about (not raising) failures unless strict; free the child process."""
        self._drop_process()
        for sink in self.sinks:
            if id(sink) in self.failed_sinks:
                continue  # closed when it was dropped
            try:
                sink.close()
            except Exception as err:
                if self.strict:
                    raise
                warn(f"{sink!r} failed to close ({type(err).__name__}: {err}).")


_BOOKKEEPING = ("rendered", "logged", "rendered_epochs", "logged_epochs")


def fit_epochs(names: list[str]) -> list[int]:
    """The fit epochs among snapshot names, in order, each once."""
    keys = (parse_key(name) for name in names)
    return list(dict.fromkeys(k.epoch for k in keys if k is not None and k.stage == "fit"))


def legacy_names(epochs: list[int]) -> list[str]:
    """The names of snapshots a checkpoint from before keys listed as epochs (``epoch=0003``)."""
    return [SnapshotKey("fit", int(e), -1).name for e in epochs]


def _close_quietly(sink: Sink) -> None:
    """Close a dropped sink; its failure was reported already, so a second error is not."""
    with contextlib.suppress(Exception):
        sink.close()

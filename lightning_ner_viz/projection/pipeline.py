"""Rank zero's half of the pipeline: each gathered epoch becomes a Snapshot, is saved, projected and logged."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz.runtime.shutdown import DEFAULT_MAX_PENDING, render_commands
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.projection.catch_up import CatchUp, skip_message
from lightning_ner_viz.projection.closing import RenderClosing
from lightning_ner_viz.projection.lag import RenderLag
from lightning_ner_viz.projection.process import ProjectionAbandoned
from lightning_ner_viz.keys import key_from_name, ordered_names
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.projection.resume_plan import resume_plan
from lightning_ner_viz.snapshot import Snapshot
from lightning_ner_viz.store import SnapshotStore

Assemble = Callable[[Any], Snapshot]
"""Builds an epoch's Snapshot from the capture's gathered rows (plain arrays)."""


@dataclass
class _Captured:
    """One captured epoch on its way: the gathered rows, then its Snapshot once built and saved."""

    gathered: Any
    name: str
    snapshot: Snapshot | None = None
    saved: bool = False
    queued_at: float = field(default_factory=time.monotonic)


class RenderPipeline(RenderClosing):
    """Saves and renders epochs in order, in a background thread, on rank zero.

    A failing sink warns once and is dropped (see :class:`Renderer`); any other rendering error is reported on
    the training thread by :meth:`report_errors`: a warning, or raised with ``strict=True``. The snapshot is saved
    before it is rendered, so nothing captured is lost: ``lightning-ner-viz render`` can draw it later. The
    backlog is bounded and a shutdown takes seconds: see :mod:`lightning_ner_viz.runtime.shutdown`.

    Args:
        renderer: projects and logs to the sinks.
        store: where snapshots are saved.
        assemble: turns the capture's gathered rows into a Snapshot.
        in_background: render in a background thread (``False``: on the caller's thread).
        strict: raise errors instead of warning.
        max_pending: epochs that may wait behind the one being rendered; past it the oldest waiting fit epoch is
            skipped, once this run drew one (``None``: no bound, every epoch is drawn).
        stop_requested: polled while the end of fit waits; true once the run must stop (Lightning received SIGTERM).
    """

    def __init__(self, renderer: Renderer, store: SnapshotStore, assemble: Assemble, *, in_background: bool,
                 strict: bool, max_pending: int | None = DEFAULT_MAX_PENDING,
                 stop_requested: Callable[[], bool] | None = None) -> None:
        self.renderer, self.store, self.strict, self.max_pending = renderer, store, strict, max_pending
        self.lag = RenderLag()  # per snapshot: captured -> logged
        self.catch_up = CatchUp()  # snapshots skipped when the pictures fell behind
        self._render_started = float("-inf")  # when the latest epoch's rendering started (monotonic)
        self._assemble = assemble
        self._jobs = JobRunner("ner-viz-render", enabled=in_background)  # unbounded: _catch_up bounds what waits
        self._stop_requested = stop_requested or (lambda: False)
        self._stopped_at: float | None = None  # when training stopped early (monotonic)
        self._dropping = False  # past the grace: epochs are saved, not rendered
        self._closing = False  # close_later queued the sinks' close
        self._lock = threading.Lock()  # one save at a time; guards _outstanding
        self._outstanding: list[str] = []  # snapshots (names) handed over and not rendered yet, in order
        self.prepare()

    def prepare(self) -> None:
        """Have the rendering thread start and warm up the projector child now, while the model trains (every setup)."""
        self.catch_up.new_fit()  # nothing is skipped before this run's first snapshot is drawn
        if self._jobs.enabled and self.renderer.place == "process":
            self._jobs.submit(self._prepare)

    def _prepare(self) -> None:
        with self.lag.while_starting():
            self.renderer.prepare()

    @property
    def stopping(self) -> bool:
        """Whether the run is stopping early (SIGTERM, an exception): epochs are then not waited for."""
        return self._stopped_at is not None or self._stop_requested()

    def submit(self, gathered: Any) -> None:
        """Save the epoch's Snapshot here and now (so a killed process loses nothing), then queue its rendering.

        Never blocks: past ``max_pending`` waiting epochs the oldest waiting fit epoch is skipped (:meth:`_catch_up`).
        """
        captured = _Captured(gathered, gathered.name)
        self.lag.handed_over(gathered.name)
        with self._lock:
            self._outstanding.append(gathered.name)
        try:
            self._save(captured)
        except Exception:
            if self.strict:
                raise
            # not raised on the capture's side: the rendering job builds it again and reports the error
        self._jobs.submit(self._save_and_render, captured)
        self._catch_up()

    def _catch_up(self) -> None:
        """While more than ``max_pending`` epochs wait, skip the oldest skippable one (see :mod:`.catch_up`); none once
        training is done (a detached end of fit: nobody waits for them)."""
        while (self.max_pending is not None and not self._closing and not self.stopping
               and sum(job.fn == self._save_and_render for job in self._jobs.queued()) > self.max_pending):
            name = self.catch_up.skip_oldest(self._jobs, self._skippable)
            if name is None:
                return
            waited = self.lag.forget(name)
            with self._lock, contextlib.suppress(ValueError):
                self._outstanding.remove(name)
            if len(self.catch_up.skipped) == 1:  # from the capture thread; the end of fit lists them all again
                warn(skip_message(key_from_name(name).label, waited, str(self.store.root), self._commands()))

    def _skippable(self, job: Any) -> str | None:
        """The snapshot a queued job renders, if it waited through the start of another epoch's rendering."""
        ok = job.fn == self._save_and_render and job.args[0].queued_at < self._render_started
        return job.args[0].name if ok else None

    def _commands(self) -> list[str]:
        p = self.renderer.projector
        return render_commands(self.store, self.renderer.sinks, p.reducer, p.frame, p.n_components)

    def _save(self, captured: _Captured) -> Snapshot:
        """Build the epoch's Snapshot and save it, once, whichever thread comes first."""
        with self._lock:
            if captured.snapshot is None:
                snapshot = self._assemble(captured.gathered)
                try:
                    self.store.save(snapshot)
                    captured.saved = True
                except OSError as err:
                    if self.strict:
                        raise
                    warn(f"Could not save the snapshot of {snapshot.label} under {self.store.root}: {err}.")
                snapshot.dynamics = None  # on disk now: the label issues read it from there
                captured.snapshot, captured.gathered = snapshot, None
            return captured.snapshot

    def _rendered(self, name: str) -> None:
        self.lag.rendered(name)
        self.catch_up.rendered += 1
        with self._lock, contextlib.suppress(ValueError):
            self._outstanding.remove(name)

    def _save_and_render(self, captured: _Captured) -> None:
        self._render_started = time.monotonic()
        self._catch_up()  # those still waiting behind this one and a newer one go
        snapshot = self._save(captured)
        if self._dropping:  # a shutdown past its grace: the snapshot stays on disk
            return
        try:
            self.renderer.render(snapshot, record_state=captured.saved)
        except ProjectionAbandoned:
            return  # a shutdown killed the projector child mid-epoch: the snapshot stays on disk
        self._rendered(snapshot.key.name)

    def _render_saved(self, names: Sequence[str]) -> None:
        for name in names:
            if self._dropping:
                return
            try:
                self.renderer.render(self.store.load(name))
            except ProjectionAbandoned:
                return
            self._rendered(name)

    def report_errors(self) -> None:
        """Warn about (or, when strict, raise) the errors of finished rendering jobs; never waits."""
        for err in self._jobs.take_errors():
            if self.strict:
                raise err
            warn(f"lightning-ner-viz: rendering failed ({type(err).__name__}: {err}); training goes on.")

    def restore(self, state: dict[str, Any], captured: Sequence[str], capturing: Sequence[str],
                want_tracked_ids: bool) -> list[int] | None:
        """After a resume: continue the frames, and render again what was captured but never rendered
        (:func:`~lightning_ner_viz.projection.resume_plan.resume_plan`).

        Returns:
            With ``want_tracked_ids`` (the checkpoint came before the first epoch's selection was
            done): the tracked token ids read from the first such epoch's snapshot; else ``None``.
        """
        self.catch_up.skipped = list(state.get("skipped", self.catch_up.skipped))  # not rendered again
        state, redo = resume_plan(self.store, state, captured, capturing, self.catch_up.skipped)
        self.renderer.load_state_dict(state)
        if redo:
            with self._lock:
                self._outstanding.extend(redo)
            self._jobs.submit(self._render_saved, redo)
        first = next((n for n in ordered_names(set(capturing)) if self.store.has(n)), None) if want_tracked_ids else None
        return None if first is None else self.store.load(first).token_id.tolist()

    def state_dict(self) -> dict[str, Any]:
        """The frames' state after the last rendered epoch, the rendered epochs and the skipped ones (never waits)."""
        return {**self.renderer.state_dict(), "skipped": list(self.catch_up.skipped)}

    def wait(self, progress: bool = False) -> None:
        """Block until the queued epochs are rendered and a queued close is done (their errors stay queued for
        :meth:`report_errors`); with ``progress``, a bar shows how far behind the pictures are."""
        self._jobs.wait(progress=progress, description="lightning-ner-viz: rendering", status=self.lag.status)

"""Rank zero's half of the pipeline: each gathered epoch becomes a Snapshot, is saved, projected and logged."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz.runtime.shutdown import (
    DEFAULT_MAX_PENDING, GRACE_SECONDS, IN_FLIGHT_SECONDS, quietly, render_commands, sigterm_deferred,
    warn_unrendered,
)
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.projection.catch_up import CatchUp, skip_message, skipped_message
from lightning_ner_viz.projection.lag import RenderLag
from lightning_ner_viz.projection.process import ProjectionAbandoned, abandon
from lightning_ner_viz.keys import key_from_name, ordered_names
from lightning_ner_viz.projection.renderer import Renderer, legacy_names
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


class RenderPipeline:
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
        """While more than ``max_pending`` epochs wait, skip the oldest skippable one (see :mod:`.catch_up`)."""
        while self.max_pending is not None and self._jobs.waiting > self.max_pending and not self.stopping:
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
        """After a resume: continue the frames, and render again what was captured but never rendered.

        A checkpoint waits neither for the capture nor for rendering, so it may list snapshots (names) whose
        selection (``capturing``) or rendering was still pending. Those that reached the sinks left a render
        state beside their snapshot; the others (also those no sink logged) are rendered again from it.

        Returns:
            With ``want_tracked_ids`` (the checkpoint came before the first epoch's selection was
            done): the tracked token ids read from the first such epoch's snapshot; else ``None``.
        """
        state = dict(state)
        rendered = set(state.get("rendered", legacy_names(state.get("rendered_epochs", [])) or captured))
        logged = set(state.get("logged", legacy_names(state.get("logged_epochs", [])) or rendered))
        redo: list[str] = []  # a render state is written once a sink logged the snapshot
        self.catch_up.skipped = list(state.pop("skipped", self.catch_up.skipped))  # not rendered again
        for name in ordered_names(set(captured) - rendered - set(self.catch_up.skipped)):
            saved = self.store.read_render_state(name)
            if saved is not None and not redo:
                state.update(saved)
                rendered.add(name)
                logged.add(name)
            elif self.store.has(name):
                redo.append(name)
            else:
                when = ("was still being captured when the checkpoint was written, and its snapshot" if name in capturing
                        else "was captured before the checkpoint, but its snapshot")
                warn(f"The validation {key_from_name(name).label} {when} was never saved under "
                     f"{self.store.directory(name)}; it is missing from the pictures.")
        state["rendered"], state["logged"] = ordered_names(rendered), ordered_names(logged)
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
        """Block until the queued epochs are rendered (their errors stay queued for :meth:`report_errors`)."""
        self._jobs.wait(progress=progress, description="lightning-ner-viz: rendering")

    def close(self, progress: bool) -> None:
        """Wait for the queued epochs (with a progress bar when ``progress``), then close the sinks.

        A SIGTERM during the wait (deferred meanwhile: :func:`~lightning_ner_viz.runtime.shutdown.sigterm_deferred`)
        turns it into :meth:`abort`.
        """
        with sigterm_deferred() as received:
            done = self._jobs.wait(progress=progress, description="lightning-ner-viz: rendering epochs",
                                   stop=lambda: self._stop_requested() or received(), status=self.lag.status)
            if not done:
                self.abort("SIGTERM")
                return
            try:
                self.report_errors()
                if self.catch_up.this_fit:
                    warn(skipped_message([key_from_name(n).label for n in self.catch_up.this_fit],
                                         str(self.store.root), self._commands()))
            finally:
                self._jobs.close()
                self.renderer.close()
                self._reset()

    def request_stop(self) -> None:
        """Training stopped early: the grace starts, and no waiting epoch is skipped any more (see :meth:`abort`)."""
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()

    def abort(self, reason: str) -> None:
        """Render for :data:`GRACE_SECONDS` after :meth:`request_stop`, then drop the waiting epochs (on disk) and
        the one in the child process (killed); close the sinks and warn with the command that renders the rest.

        An epoch projected in a thread or inside a sink cannot be interrupted: it is waited for, at
        most :data:`IN_FLIGHT_SECONDS`. Never raises. ``reason``: for the warning (``"SIGTERM"``).
        """
        self.request_stop()
        assert self._stopped_at is not None
        stopped_at, done = self._stopped_at, True
        try:  # every captured epoch is on disk already (submit saved it); a failed save is tried again below
            done = self._jobs.wait(timeout=max(0.0, stopped_at + GRACE_SECONDS - time.monotonic()))
            if not done:
                self._dropping = True
                for job in self._jobs.drain():
                    if job.fn == self._save_and_render:
                        quietly(self._save, job.args[0], what="saving a captured epoch")
                if self._jobs.pending and self.renderer.place == "process":
                    abandon(self.renderer.child_pid)
                done = self._jobs.wait(timeout=IN_FLIGHT_SECONDS)
            for err in self._jobs.take_errors():
                warn(f"lightning-ner-viz: rendering failed ({type(err).__name__}: {err}).")
        finally:
            if done:
                self._jobs.close()
                quietly(self.renderer.close, what="closing the sinks")
            else:  # the rendering thread closes the sinks once its epoch is done, if the process lives on
                self._jobs.submit(lambda: quietly(self.renderer.close, what="closing the sinks"))
                self._jobs.close(timeout=0)
        self._warn_unrendered(reason, time.monotonic() - stopped_at, done)
        self._reset()

    def _warn_unrendered(self, reason: str, seconds: float, closed: bool) -> None:
        with self._lock:
            left = list(dict.fromkeys(self._outstanding))
        if left:
            warn_unrendered(self.store, self.renderer, left, reason, seconds, closed)

    def _reset(self) -> None:
        """Ready for another fit with the same pipeline."""
        self._stopped_at, self._dropping = None, False
        self.catch_up.new_fit()
        with self._lock:
            for name in self._outstanding:
                self.lag.forget(name)
            self._outstanding.clear()

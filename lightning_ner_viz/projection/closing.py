"""How rendering ends: a close that waits, a detached close, and a bounded abort (the pipeline's part).

The rules are in :mod:`lightning_ner_viz.runtime.shutdown` (a shutdown takes seconds) and
:mod:`lightning_ner_viz.runtime.detached` (``fit`` need not wait for its last pictures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.keys import key_from_name, ordered_names
from lightning_ner_viz.projection.catch_up import CatchUp, skipped_message
from lightning_ner_viz.projection.lag import RenderLag
from lightning_ner_viz.projection.process import abandon
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz.runtime.shutdown import (
    GRACE_SECONDS, IN_FLIGHT_SECONDS, quietly, sigterm_deferred, warn_unrendered,
)
from lightning_ner_viz.store import SnapshotStore


class RenderClosing:
    """The closing half of :class:`~lightning_ner_viz.projection.pipeline.RenderPipeline` (which sets these)."""

    renderer: Renderer
    store: SnapshotStore
    lag: RenderLag
    catch_up: CatchUp
    _jobs: JobRunner
    _lock: threading.Lock
    _outstanding: list[str]
    _stop_requested: Callable[[], bool]
    _stopped_at: float | None
    _dropping: bool
    _closing: bool
    _save: Callable[[Any], Any]
    _save_and_render: Callable[[Any], None]
    report_errors: Callable[[], None]
    wait: Callable[..., None]
    _commands: Callable[[], list[str]]

    def close(self, progress: bool) -> None:
        """Wait for the queued epochs (with a progress bar when ``progress``), then close the sinks.

        A SIGTERM during the wait (deferred meanwhile: :func:`~lightning_ner_viz.runtime.shutdown.sigterm_deferred`)
        turns it into :meth:`abort`. After :meth:`close_later` it waits for that close too (at exit, for example).
        """
        with sigterm_deferred() as received:
            done = self._jobs.wait(progress=progress, description="lightning-ner-viz: rendering epochs",
                                   stop=lambda: self._stop_requested() or received(), status=self.lag.status)
            if not done:
                self.abort("SIGTERM")
                return
            try:
                self.report_errors()
                self._warn_skipped()
            finally:
                self._jobs.close()
                self.renderer.close()
                self._reset()

    def close_later(self) -> list[str] | None:
        """Queue the closing of the sinks behind the epochs still to draw and return at once (a detached end of
        ``fit``, :mod:`lightning_ner_viz.runtime.detached`); :meth:`wait` blocks until it is done.

        Returns:
            The labels of the epochs still to draw, or ``None`` when a close is queued already.
        """
        if self._closing:
            return None
        self._closing = True
        with self._lock:
            left = [key_from_name(n).label for n in dict.fromkeys(self._outstanding)]
        self._jobs.submit(self._close_in_thread)
        return left

    def _close_in_thread(self) -> None:
        try:
            self._warn_skipped()
            self.renderer.close()
        finally:
            self._reset()

    def _warn_skipped(self) -> None:
        if self.catch_up.this_fit:
            warn(skipped_message([key_from_name(n).label for n in self.catch_up.this_fit], str(self.store.root),
                                 self._commands()))

    @property
    def pending(self) -> int:
        """Rendering jobs not done yet: epochs to draw and a queued close."""
        return self._jobs.pending

    def in_rendering_thread(self) -> bool:
        """Whether the caller is the rendering thread (which must not wait for itself)."""
        return self._jobs.in_thread()

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
        """Warn about this fit's snapshots that are on disk but not drawn: those waiting, and those skipped to catch
        up (named by the first skip's warning too, but the stop's warning is the one that lists them all)."""
        with self._lock:
            left = ordered_names(set(self._outstanding) | set(self.catch_up.this_fit))
        if left:
            warn_unrendered(self.store, self.renderer, left, reason, seconds, closed)

    def _reset(self) -> None:
        """Ready for another fit with the same pipeline."""
        self._stopped_at, self._dropping, self._closing = None, False, False
        self.catch_up.new_fit()
        with self._lock:
            for name in self._outstanding:
                self.lag.forget(name)
            self._outstanding.clear()

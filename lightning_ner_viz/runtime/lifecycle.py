"""The callback's running parts: the capture on every rank and the rendering on rank zero, and their state."""

from __future__ import annotations

from typing import Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.capture.assembly import GatheredEpoch
from lightning_ner_viz.capture.discovery import CaptureTargets
from lightning_ner_viz.capture.session import ValidationCapture
from lightning_ner_viz.projection.pipeline import RenderPipeline
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.sinks.registry import restore_sink_states, sink_states
from lightning_ner_viz.store import SnapshotStore

_RESTORED_KEYS = ("sinks", "renderer", "capturing_epochs")


class Lifecycle:
    """Starts, checkpoints, restores and closes the capture and the rendering of one callback.

    Holds plain state that outlives them (the captured and logged epochs, the tracked token ids
    and what a checkpoint restored), so a checkpoint can be taken or loaded before ``setup`` and
    after a fit.
    """

    def __init__(self) -> None:
        self.capture: ValidationCapture | None = None
        self.render: RenderPipeline | None = None
        self.captured_epochs: list[int] = []
        self.restored: dict[str, Any] = {}
        self._restored_logged: list[int] = []
        self._tracked_ids: list[int] | None = None

    @property
    def logged_epochs(self) -> list[int]:
        """Epochs at least one sink logged (rank zero; before a resume, as the checkpoint says)."""
        return sorted(self.render.renderer.logged_epochs) if self.render is not None else list(self._restored_logged)

    @property
    def tracked_ids(self) -> list[int] | None:
        """The token ids every epoch keeps, fixed by the first captured epoch (``None`` before it)."""
        return self.capture.tracked_ids if self.capture is not None else self._tracked_ids

    @tracked_ids.setter
    def tracked_ids(self, ids: list[int] | None) -> None:
        self._tracked_ids = ids
        if self.capture is not None:
            self.capture.tracked_ids = ids

    @property
    def renderer(self) -> Renderer | None:
        """Rank zero's renderer after ``setup``; ``None`` on other ranks."""
        return self.render.renderer if self.render is not None else None

    @property
    def sinks(self) -> list[Sink]:
        """Rank zero's sinks after ``setup``; empty elsewhere."""
        return self.render.renderer.sinks if self.render is not None else []

    def start_capture(self, capture: ValidationCapture) -> None:
        """Use this capture from now on, keeping the tracked tokens."""
        capture.tracked_ids = self.tracked_ids
        self.capture = capture

    def start_render(self, render: RenderPipeline) -> None:
        """Use this rendering from now on (rank zero), continuing what a checkpoint restored."""
        self.render = render
        self.restore_render()

    def restore_render(self) -> None:
        """Continue the frames and the sinks' recordings from the restored state; render what was pending."""
        if self.render is None:
            return
        restore_sink_states(self.sinks, self.restored.get("sinks", {}))
        tracked = self.render.restore(self.restored.get("renderer", {}), self.captured_epochs,
                                      self.restored.get("capturing_epochs", []), want_tracked_ids=self.tracked_ids is None)
        if tracked is not None:
            self.tracked_ids = tracked

    def deliver(self, gathered: GatheredEpoch) -> None:
        """On rank zero, from the capture: record the epoch as captured, then queue its rendering."""
        assert self.render is not None
        self.render.report_errors()
        self.captured_epochs.append(gathered.epoch)
        self.render.submit(gathered)

    def wait(self) -> None:
        """Block until every epoch captured so far reached the sinks (rank zero)."""
        if self.capture is not None:
            self.capture.wait()
        if self.render is not None:
            self.render.wait()

    def finish(self, progress: bool, raise_capture_error: bool = True, abort: str | None = None) -> None:
        """Wait for the capture thread and the rendering, then close the sinks and the projector.

        A capture error (e.g. bad gold labels) is raised after the rendering finished, or only
        warned about with ``raise_capture_error=False`` (training already failed).

        Args:
            progress: show a progress bar while waiting for the rendering backlog.
            raise_capture_error: raise (else warn about) a capture error.
            abort: training stopped early, and why (``"SIGTERM"``, an exception's name): the
                rendering stops within seconds instead of waiting for the backlog, which stays
                on disk (see :meth:`RenderPipeline.abort`).
        """
        if abort is not None and self.render is not None:
            self.render.request_stop()  # the grace starts now; a capture blocked on the backlog saves and goes on
        capture_error = self.capture.close() if self.capture is not None else None
        if capture_error is not None and not raise_capture_error:
            warn(f"lightning-ner-viz: capturing the last validation epoch failed ({capture_error!r}).")
        if self.render is not None:
            if abort is not None:
                self.render.abort(abort)
            else:
                self.render.close(progress=progress)
        if capture_error is not None and raise_capture_error:
            raise capture_error

    def state_dict(self) -> dict[str, Any]:
        """Plain values a checkpoint keeps; never waits for the capture or the rendering.

        An epoch still being selected is listed in ``capturing_epochs``, read before
        ``captured_epochs``, so an epoch finishing meanwhile is in one of them.
        ``logged_epochs`` lists the epochs a sink logged so far.
        """
        capturing = list(self.capture.capturing) if self.capture is not None else []
        if self.capture is not None:
            self.capture.raise_errors()
        state = {"capturing_epochs": capturing, "captured_epochs": sorted(set(self.captured_epochs) | set(capturing)),
                 "logged_epochs": self.logged_epochs,
                 "tracked_ids": self.tracked_ids, "sinks": self.restored.get("sinks", {}),
                 "renderer": self.restored.get("renderer", {})}
        if self.render is not None:
            self.render.report_errors()
            state.update(sinks=sink_states(self.sinks), renderer=self.render.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; with a rendering already running (Lightning restores after ``setup``), continue it.

        A checkpoint from before ``captured_epochs`` existed listed the captured epochs as ``logged_epochs``.
        """
        self.captured_epochs = list(state.get("captured_epochs", state.get("logged_epochs", [])))
        self._restored_logged = list(state.get("logged_epochs", []))
        self.tracked_ids = state.get("tracked_ids", self.tracked_ids)
        self.restored = {k: state[k] for k in _RESTORED_KEYS if k in state}
        self.restore_render()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tracked_ids": self.tracked_ids, "capture": None, "render": None}


def describe_setup(targets: CaptureTargets, frame: str, store: SnapshotStore, sinks: list[Sink]) -> str:
    """The one line rank zero logs at ``setup``: what was hooked, where the label names came from,
    the frame, the snapshot root and where each sink writes."""
    where = ", ".join(f"{type(sink).__name__} -> {sink.location or 'opens at the first epoch'}" for sink in sinks)
    return (f"lightning-ner-viz: hooked {targets.module_names}, CRF {targets.crf_name or 'none'}; label names from "
            f"{targets.label_source}; frame {frame!r}; snapshots in {store.root}; sinks: {where or 'none'}")

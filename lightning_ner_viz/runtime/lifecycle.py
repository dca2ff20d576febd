"""The callback's running parts: the capture on every rank and the rendering on rank zero, and their state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.capture.assembly import GatheredEpoch
from lightning_ner_viz.capture.discovery import CaptureTargets
from lightning_ner_viz.capture.session import ValidationCapture
from lightning_ner_viz.keys import SnapshotKey, ordered_names
from lightning_ner_viz.projection.pipeline import RenderPipeline
from lightning_ner_viz.projection.renderer import Renderer, fit_epochs, legacy_names
from lightning_ner_viz.runtime.detached import detach as detach_rendering
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.sinks.registry import restore_sink_states, sink_states
from lightning_ner_viz.store import SnapshotStore

if TYPE_CHECKING:
    import lightning.pytorch as pl

_RESTORED_KEYS = ("sinks", "renderer", "capturing")


class Lifecycle:
    """Starts, checkpoints, restores and closes the capture and the rendering of one callback.

    Holds plain state that outlives them (the captured and logged snapshots, the tracked token ids,
    the validation counters and what a checkpoint restored), so a checkpoint can be taken or loaded
    before ``setup`` and after a fit. Snapshots are named by :class:`~lightning_ner_viz.keys.SnapshotKey`.
    """

    def __init__(self) -> None:
        self.capture: ValidationCapture | None = None
        self.render: RenderPipeline | None = None
        self.captured: list[str] = []  # names of the snapshots captured and handed to the rendering (rank zero)
        self.validate_runs = 0  # trainer.validate() calls captured (each its own "validate" snapshot)
        self.fit_validations = 0  # validations seen during fit, sanity checks excluded (for every_n_val_runs)
        self.restored: dict[str, Any] = {}
        self._restored_logged: list[str] = []
        self._tracked_ids: list[int] | None = None

    @property
    def logged(self) -> list[str]:
        """Snapshots at least one sink logged, in order (rank zero; before a resume, as the checkpoint says)."""
        return ordered_names(self.render.renderer.logged) if self.render is not None else list(self._restored_logged)

    @property
    def logged_epochs(self) -> list[int]:
        """Fit epochs at least one sink logged."""
        return fit_epochs(self.logged)

    @property
    def captured_epochs(self) -> list[int]:
        """Fit epochs captured (an epoch validated several times is listed once)."""
        return fit_epochs(self.captured)

    def due(self, trainer: pl.Trainer, every_n_epochs: int, every_n_val_runs: int) -> tuple[str, int] | None:
        """Whether this validation is captured, as ``(stage, run)``; ``None`` when it is not.

        Every ``trainer.validate()`` is (a ``validate`` snapshot; ``run`` counts them). During fit,
        a validation is due when its epoch is a multiple of ``every_n_epochs`` and it is the
        n-th validation of the fit (``val_check_interval``) with n a multiple of ``every_n_val_runs``;
        after a resume, one already captured before the checkpoint (same epoch and step) is not
        captured twice. Called on every rank, with the same answer.
        """
        if trainer.sanity_checking:
            return None
        if trainer.state.fn != "fit":
            self.validate_runs += 1
            return "validate", self.validate_runs - 1
        self.fit_validations += 1
        if trainer.current_epoch % every_n_epochs or (self.fit_validations - 1) % every_n_val_runs:
            return None
        names = {SnapshotKey("fit", trainer.current_epoch, step).name for step in (trainer.global_step, -1)}
        return None if names & set(self.captured) else ("fit", 0)

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
        """Use this capture from now on, keeping the tracked tokens (the previous one is closed)."""
        if self.capture is not None and self.capture is not capture:
            self.capture.close()
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
        tracked = self.render.restore(self.restored.get("renderer", {}), self.captured,
                                      self.restored.get("capturing", []), want_tracked_ids=self.tracked_ids is None)
        if tracked is not None:
            self.tracked_ids = tracked

    def deliver(self, gathered: GatheredEpoch) -> None:
        """On rank zero, from the capture: record the snapshot as captured, then queue its rendering."""
        assert self.render is not None
        self.render.report_errors()
        self.captured.append(gathered.name)
        self.render.submit(gathered)

    def wait(self, progress: bool = False) -> None:
        """Block until every epoch captured so far reached the sinks, and a detached close is done (rank zero);
        then report the rendering's errors (a warning, or raised with ``strict``)."""
        if self.capture is not None:
            self.capture.wait()
        if self.render is not None:
            self.render.wait(progress=progress)
            self.render.report_errors()

    def pause(self, progress: bool) -> None:
        """After ``trainer.validate()``: wait until its snapshot reached the sinks and flush them, but keep the
        capture (its hooks, which a compiled model traced) and the sinks open, so a following ``fit`` or
        ``validate`` of the same callback goes on in the same recording and report. A capture error is raised."""
        if self.capture is not None:
            self.capture.wait()
        if self.render is not None:
            self.render.wait(progress=progress)
            self.render.report_errors()
            self.render.renderer.flush()
        if self.capture is not None:
            self.capture.raise_errors()

    def finish(self, progress: bool, raise_capture_error: bool = True, abort: str | None = None,
               detach: bool = False) -> str | None:
        """Wait for the capture thread and the rendering, then close the sinks and the projector.

        A capture error (e.g. bad gold labels) is raised after the rendering finished, or only
        warned about with ``raise_capture_error=False`` (training already failed).

        Args:
            progress: show a progress bar while waiting for the rendering backlog.
            raise_capture_error: raise (else warn about) a capture error.
            abort: training stopped early, and why (``"SIGTERM"``, an exception's name): the
                rendering stops within seconds instead of waiting for the backlog, which stays
                on disk (see :meth:`RenderPipeline.abort`).
            detach: do not wait for the rendering: it goes on and closes the sinks in its thread
                (:mod:`lightning_ner_viz.runtime.detached`).

        Returns:
            With ``detach``, the line that says what is still being drawn and where (``None`` when nothing is).
        """
        if abort is not None and self.render is not None:
            self.render.request_stop()  # the grace starts now; a capture blocked on the backlog saves and goes on
        capture_error = self.capture.close() if self.capture is not None else None
        if capture_error is not None and not raise_capture_error:
            warn(f"lightning-ner-viz: capturing the last validation epoch failed ({capture_error!r}).")
        line = None
        if self.render is not None:
            if abort is not None:
                self.render.abort(abort)
            elif detach:
                line = detach_rendering(self.render)
            else:
                self.render.close(progress=progress)
        if capture_error is not None and raise_capture_error:
            raise capture_error
        return line

    def state_dict(self) -> dict[str, Any]:
        """Plain values a checkpoint keeps; never waits for the capture or the rendering.

        A snapshot still being selected is listed in ``capturing``, read before ``captured``, so
        one finishing meanwhile is in one of them. ``logged`` lists the snapshots a sink logged so
        far; ``captured_epochs`` and ``logged_epochs`` the fit epochs among them (for reading).
        """
        capturing = list(self.capture.capturing) if self.capture is not None else []
        if self.capture is not None:
            self.capture.raise_errors()
        captured = ordered_names(set(self.captured) | set(capturing))
        state = {"capturing": capturing, "captured": captured, "logged": self.logged,
                 "captured_epochs": fit_epochs(captured), "logged_epochs": self.logged_epochs,
                 "validate_runs": self.validate_runs, "fit_validations": self.fit_validations,
                 "tracked_ids": self.tracked_ids, "sinks": self.restored.get("sinks", {}),
                 "renderer": self.restored.get("renderer", {})}
        if self.render is not None:
            self.render.report_errors()
            state.update(sinks=sink_states(self.sinks), renderer=self.render.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; with a rendering already running (Lightning restores after ``setup``), continue it.

        Older checkpoints listed fit epochs (``captured_epochs``, ``capturing_epochs``; before those,
        ``logged_epochs``): they are read as the ``epoch=NNNN`` snapshots of that time.
        """
        legacy = state.get("captured_epochs", state.get("logged_epochs", []))
        self.captured = list(state["captured"]) if "captured" in state else legacy_names(legacy)
        self._restored_logged = list(state.get("logged", legacy_names(state.get("logged_epochs", []))))
        self.validate_runs = int(state.get("validate_runs", self.validate_runs))
        self.fit_validations = int(state.get("fit_validations", self.fit_validations))
        self.tracked_ids = state.get("tracked_ids", self.tracked_ids)
        self.restored = {k: state[k] for k in _RESTORED_KEYS if k in state}
        if "capturing" not in state:
            self.restored["capturing"] = legacy_names(state.get("capturing_epochs", []))
        self.restore_render()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tracked_ids": self.tracked_ids, "capture": None, "render": None}


def describe_setup(targets: CaptureTargets, frame: str, store: SnapshotStore, sinks: list[Sink]) -> str:
    """The one line rank zero logs at ``setup``: what was hooked, where the label names came from,
    the frame, the snapshot root and where each sink writes."""
    where = ", ".join(f"{type(sink).__name__} -> {sink.location or 'opens at the first epoch'}" for sink in sinks)
    return (f"lightning-ner-viz: hooked {targets.module_names}, CRF {targets.crf_name or 'none'}; label names from "
            f"{targets.label_source}; frame {frame!r}; snapshots in {store.root}; sinks: {where or 'none'}")


def adopt_saved_arguments(owner: object, state: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Take the checkpoint's values of ``names`` (e.g. the seed) over the owner's, with a warning for each that
    differs, so a resumed run keeps the same tokens; returns ``state``."""
    for name in names:
        saved = state.get(name, getattr(owner, name))
        if saved != getattr(owner, name):
            warn(f"The checkpoint's {name}={saved!r} replaces the callback's {name}={getattr(owner, name)!r}, "
                 "so the resumed run keeps the same tokens.")
            setattr(owner, name, saved)
    return state

"""Read-only properties of the callback: what it hooked and resolved at ``setup``, what it captured and logged;
and :meth:`~RunOutcomes.wait`, for the pictures still being drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_ner_viz.keys import ordered_names

if TYPE_CHECKING:
    from lightning_ner_viz.projection.renderer import Renderer
    from lightning_ner_viz.runtime.lifecycle import Lifecycle
    from lightning_ner_viz.sinks.base import Sink


class RunOutcomes:
    """Mixed into :class:`~lightning_ner_viz.EmbeddingDriftCallback`: its results so far, read from its ``_run``."""

    _run: Lifecycle
    label_names: list[str] | None

    def wait(self, progress: bool = True) -> None:
        """Block until every epoch captured so far reached the sinks and, after ``fit``, the sinks are closed (rank
        zero; returns at once elsewhere); then warn about (``strict``: raise) rendering errors. ``progress``: a bar
        while there is something to wait for. ``fit`` returns before its last pictures are drawn: call this before
        reading the files."""
        self._run.wait(progress=progress)

    wait_until_rendered = wait

    @property
    def logged_epochs(self) -> list[int]:
        """Fit epochs at least one sink logged, so far (rank zero; complete after :meth:`wait`)."""
        return self._run.logged_epochs

    @property
    def captured_epochs(self) -> list[int]:
        """Fit epochs captured and saved as snapshots (rank zero), whether or not a sink logged them."""
        return self._run.captured_epochs

    @property
    def captured_snapshots(self) -> list[str]:
        """Names of every captured validation, fit and validate (``epoch=0002-step=0000120``), in order."""
        return ordered_names(self._run.captured)

    @property
    def logged_snapshots(self) -> list[str]:
        """Names of the captured validations at least one sink logged, in order."""
        return self._run.logged

    @property
    def tracked_ids(self) -> list[int] | None:
        """The token ids every epoch keeps, fixed by the first captured epoch (``None`` before it)."""
        return self._run.tracked_ids

    @property
    def hooked_modules(self) -> dict[str, str]:
        """View name to the dotted name of the module hooked for it (after ``setup``)."""
        return self._run.capture.targets.module_names if self._run.capture is not None else {}

    @property
    def resolved_label_names(self) -> list[str] | None:
        """The label names in use (given or found at ``setup``)."""
        return self._run.capture.targets.label_names if self._run.capture is not None else self.label_names

    @property
    def renderer(self) -> Renderer | None:
        """Rank zero's renderer (projection and sinks) after ``setup``; ``None`` on other ranks."""
        return self._run.renderer

    @property
    def resolved_sinks(self) -> list[Sink]:
        """The sinks in use on rank zero after ``setup`` (``"auto"`` resolved); empty elsewhere."""
        return self._run.sinks

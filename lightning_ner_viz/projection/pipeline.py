"""Rank zero's half of the pipeline: each gathered epoch becomes a Snapshot, is saved, projected and logged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.projection.placement import Background, projection_place, runs_in_background
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.sinks.registry import resolve_sinks, restore_sink_states, setup_sinks
from lightning_ner_viz.snapshot import Snapshot
from lightning_ner_viz.store import SnapshotStore

if TYPE_CHECKING:
    import lightning.pytorch as pl

Assemble = Callable[[Any], Snapshot]
"""Builds an epoch's Snapshot from the capture's gathered rows (plain arrays)."""


class RenderPipeline:
    """Saves and renders epochs in order, in a background thread, on rank zero.

    A failing sink warns and is skipped (see :class:`Renderer`); any other rendering error
    is reported on the training thread by :meth:`report_errors`: a warning, or raised
    with ``strict=True``. The snapshot is saved before it is rendered, so nothing captured
    is lost when rendering fails: ``lightning-ner-viz render`` can draw it later.

    Args:
        renderer: projects and logs to the sinks.
        store: where snapshots are saved.
        assemble: turns the capture's gathered rows into a Snapshot.
        in_background: render in a background thread (``False``: on the caller's thread).
        strict: raise errors instead of warning.
    """

    def __init__(self, renderer: Renderer, store: SnapshotStore, assemble: Assemble, *, in_background: bool,
                 strict: bool) -> None:
        self.renderer = renderer
        self.store = store
        self.strict = strict
        self._assemble = assemble
        self._jobs = JobRunner("ner-viz-render", enabled=in_background)

    @classmethod
    def for_trainer(cls, trainer: pl.Trainer, store: SnapshotStore, assemble: Assemble, *,
                    sinks: Sink | Sequence[Sink] | str | None, sink_states: Any, reducer: Any, n_components: int,
                    seed: int, frame: str, background: Background, strict: bool) -> RenderPipeline:
        """Resolve and set up the sinks (restoring their saved state), then build the pipeline."""
        resolved = resolve_sinks(sinks, trainer)
        restore_sink_states(resolved, sink_states)
        setup_sinks(resolved, trainer, store.root)
        renderer = Renderer(reducer, n_components, seed, resolved, strict, frame, store,
                            place=projection_place(background, trainer.world_size))
        return cls(renderer, store, assemble, in_background=runs_in_background(background), strict=strict)

    def submit(self, gathered: Any) -> None:
        """Queue one gathered epoch: build its Snapshot, save it, then render it."""
        self._jobs.submit(self._save_and_render, gathered)

    def _save_and_render(self, gathered: Any) -> None:
        snapshot = self._assemble(gathered)
        saved = True
        try:
            self.store.save(snapshot)
        except OSError as err:
            if self.strict:
                raise
            saved = False
            warn(f"Could not save the epoch {snapshot.epoch} snapshot under {self.store.root}: {err}.")
        self.renderer.render(snapshot, record_state=saved)

    def _render_saved(self, epochs: Sequence[int]) -> None:
        for epoch in epochs:
            self.renderer.render(self.store.load(epoch))

    def report_errors(self) -> None:
        """Warn about (or, when strict, raise) the errors of finished rendering jobs; never waits."""
        for err in self._jobs.take_errors():
            if self.strict:
                raise err
            warn(f"lightning-ner-viz: rendering failed ({type(err).__name__}: {err}); training goes on.")

    def restore(self, state: dict[str, Any], logged_epochs: Sequence[int], capturing: Sequence[int],
                want_tracked_ids: bool) -> list[int] | None:
        """After a resume: continue the frames, and render again what was captured but never rendered.

        A checkpoint waits neither for the capture nor for rendering, so it may list epochs whose
        selection (``capturing``) or rendering was still pending. Those that reached the sinks
        left a render state beside their snapshot; the others are rendered again from it.

        Returns:
            With ``want_tracked_ids`` (the checkpoint came before the first epoch's selection was
            done): the tracked token ids read from the first such epoch's snapshot; else ``None``.
        """
        state = dict(state)
        rendered = set(state.get("rendered_epochs", logged_epochs))
        redo: list[int] = []
        for epoch in sorted(set(logged_epochs) - rendered):
            saved = self.store.read_render_state(epoch)
            if saved is not None and not redo:
                state.update(saved)
                rendered.add(epoch)
            elif self.store.has(epoch):
                redo.append(epoch)
            else:
                when = ("was still being captured when the checkpoint was written, and its snapshot" if epoch in capturing
                        else "was captured before the checkpoint, but its snapshot")
                warn(f"Epoch {epoch} {when} was never saved under {self.store.directory(epoch)}; "
                     "it is missing from the pictures.")
        state["rendered_epochs"] = sorted(rendered)
        self.renderer.load_state_dict(state)
        if redo:
            self._jobs.submit(self._render_saved, redo)
        first = next((e for e in sorted(capturing) if self.store.has(e)), None) if want_tracked_ids else None
        return None if first is None else self.store.load(first).token_id.tolist()

    def state_dict(self) -> dict[str, Any]:
        """The frames' state after the last rendered epoch and the rendered epochs (never waits)."""
        return self.renderer.state_dict()

    def wait(self) -> None:
        """Block until the queued epochs are rendered (their errors stay queued for :meth:`report_errors`)."""
        self._jobs.wait()

    def close(self, progress: bool) -> None:
        """Wait for the queued epochs (with a progress bar when ``progress``), then close the sinks."""
        self._jobs.wait(progress=progress, description="lightning-ner-viz: rendering epochs")
        self.report_errors()
        self._jobs.close()
        self.renderer.close()

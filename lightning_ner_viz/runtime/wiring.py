"""Build the capture and the rendering from the callback's arguments, for one Trainer call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_ner_viz.capture.discovery import discover_targets
from lightning_ner_viz.capture.dynamics import MAX_DYNAMICS_TOKENS
from lightning_ner_viz.capture.session import ValidationCapture
from lightning_ner_viz.capture.train_dynamics import TrainingDynamics
from lightning_ner_viz.projection.frame_names import resolve_frame
from lightning_ner_viz.projection.pipeline import RenderPipeline
from lightning_ner_viz.projection.placement import projection_place, runs_in_background
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.runtime.claims import claim_outputs
from lightning_ner_viz.runtime.shutdown import sigterm_flag
from lightning_ner_viz.sinks.registry import resolve_sinks, restore_sink_states, setup_sinks
from lightning_ner_viz.store import DEFAULT_SUBDIR, SnapshotStore

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.callback import EmbeddingDriftCallback


def capture_for(cb: EmbeddingDriftCallback, trainer: pl.Trainer, pl_module: pl.LightningModule) -> ValidationCapture:
    """The callback's capture for ``pl_module``: the one already running when it watches that module (so hooks a
    compiled model traced in an earlier ``validate`` stay the ones it calls), else a new one."""
    running = cb._run.capture
    if running is not None and not running.closed and running.targets.root is pl_module:
        return running
    targets = discover_targets(
        pl_module, getattr(trainer, "datamodule", None), hidden_module=cb.hidden_module,
        emissions_module=cb.emissions_module, crf_module=cb.crf_module, label_names=cb.label_names,
        tokenizer=cb.tokenizer)
    return ValidationCapture(
        targets, max_tokens=cb.max_tokens, seed=cb.seed, entity_view=cb.entity_view, cls_view=cb.cls_view,
        batch_adapter=cb.batch_adapter, in_thread=runs_in_background(cb.background), dataloader_idx=cb.dataloader_idx,
        dynamics_tokens=MAX_DYNAMICS_TOKENS if cb.label_issues is True else int(cb.label_issues))


def snapshot_store(cb: EmbeddingDriftCallback, trainer: pl.Trainer) -> SnapshotStore:
    """Where the callback's snapshots go: ``save_dir``, else ``<default_root_dir>/ner_viz``."""
    return SnapshotStore(cb.save_dir or Path(trainer.default_root_dir) / DEFAULT_SUBDIR)


def render_for(cb: EmbeddingDriftCallback, trainer: pl.Trainer, store: SnapshotStore,
               capture: ValidationCapture, sink_states: Any) -> RenderPipeline:
    """Rank zero's rendering: the sinks resolved, set up (with their saved state), checked and claimed for
    ``trainer``; the frame resolved; the pipeline stopped by SIGTERM.

    The callback claims the snapshot root and the sinks' files for ``trainer``: another callback, or another
    sink, that would write one of them is refused here, before training.
    """
    resolved = resolve_sinks(cb.sinks, trainer)
    restore_sink_states(resolved, sink_states)
    resolved = setup_sinks(resolved, trainer, store.root, strict=cb.strict)  # unusable targets raise (or warn)
    claim_outputs(trainer, cb, [(f"the snapshots of {cb.state_key}", store.root),
                                *((f"{sink!r} (of {cb.state_key})", sink.output_path) for sink in resolved)])
    renderer = Renderer(cb.reducer, cb.n_components, cb.seed, resolved, bool(cb.strict),
                        resolve_frame(cb.frame, cb.reducer), store, place=projection_place(cb.background, trainer.world_size))
    return RenderPipeline(renderer, store, capture.snapshot_builder(), in_background=runs_in_background(cb.background),
                          strict=bool(cb.strict), max_pending=cb.max_pending, stop_requested=sigterm_flag(trainer))


def training_dynamics_for(cb: EmbeddingDriftCallback, trainer: pl.Trainer) -> TrainingDynamics | None:
    """The training set's token dynamics when ``train_dynamics=True`` (built at the first training epoch)."""
    capture = cb._run.capture
    if not cb.train_dynamics or capture is None:
        return None
    return TrainingDynamics(capture.targets, cb.batch_adapter, capture.dynamics_tokens or MAX_DYNAMICS_TOKENS, cb.seed,
                            snapshot_store(cb, trainer).root, in_background=runs_in_background(cb.background))


def close_training_dynamics(train: TrainingDynamics | None, raise_error: bool = True) -> None:
    """Finish the training set's ranking; its error is raised (or, with ``raise_error=False``, warned about)."""
    if train is None:
        return None
    error = train.close()
    if error is not None:
        if raise_error:
            raise error
        from lightning_ner_viz._warnings import warn

        warn(f"Ranking the training set's label issues failed ({type(error).__name__}: {error}).")
    return None

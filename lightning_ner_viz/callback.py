"""EmbeddingDriftCallback: wires the capture and the rendering to Lightning's hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.capture.batch import BatchAdapter
from lightning_ner_viz.capture.discovery import check_capture_arguments, validation_set_sizes
from lightning_ner_viz.capture.gather import destroy_gloo_group_at_exit
from lightning_ner_viz.projection.frame_names import (
    FRAME_CHOICES, FrameChoice, check_frame, check_reducer_frame, resolve_frame,
)
from lightning_ner_viz.projection.placement import Background, check_background
from lightning_ner_viz.reducers import check_n_components
from lightning_ner_viz.reducers.registry import Reducer, ReducerName
from lightning_ner_viz.runtime.lifecycle import Lifecycle, adopt_saved_arguments, describe_setup
from lightning_ner_viz.runtime.outcomes import RunOutcomes
from lightning_ner_viz.runtime.shutdown import DEFAULT_MAX_PENDING, check_max_pending, stop_reason
from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink  # noqa: F401 - LightningCLI's short names
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.capture.train_dynamics import TrainingDynamics
from lightning_ner_viz.runtime.wiring import (
    capture_for, close_training_dynamics, render_for, snapshot_store, training_dynamics_for,
)

class EmbeddingDriftCallback(RunOutcomes, Callback):
    r"""Capture token embeddings every validation epoch and log the evolving cloud.

    Forward hooks read the model's own validation forward (no second pass): the hidden states of
    ``hidden_module`` and the emissions (logits before any CRF) of ``emissions_module``. A capture thread
    keeps a deterministic, label-stratified sample of at most ``max_tokens`` tokens (the same tokens every
    epoch); they are gathered across ranks and saved as a snapshot. Rank zero reduces them to 2-D/3-D in
    the background and logs them to every sink.

    Args:
        sinks: a sink or list of sinks (:class:`~lightning_ner_viz.sinks.RerunSink`, ...). ``None`` or
            ``"auto"``: a Rerun file and an HTML report in the snapshot directory, plus a W&B sink for a
            ``WandbLogger`` and a TensorBoard sink for a ``TensorBoardLogger``.
        hidden_module: dotted name of the module whose output holds the token hidden states (e.g. ``"bert"``
            or ``"bert.encoder.layer.3"``). ``None``: the first Hugging Face model's base model. A list
            captures several layers from the same forward: the first is the ``hidden`` view (also used by the
            entity and cls views), each other one a view named after it (``hidden_bert_encoder_layer_3``).
            ``"all"`` (alone or in the list) also captures every encoder layer for the layer × epoch figures
            (numbers only; see docs/comparing.md), in the same forward.
        emissions_module: dotted name of the layer producing per-label logits. ``None``: the HF model's
            ``classifier``, else the last ``nn.Linear`` with one output per label.
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        frame: how epochs share one frame, so a point moves only when the model changed: ``"auto"``
            (``"procrustes"`` for PCA, ``"fixed"`` for UMAP/t-SNE), ``"procrustes"``, ``"fixed"``, ``"warm"`` or
            ``"independent"``; docs/reading-the-pictures.md explains each and measures its jitter.
        n_components: 2 or 3.
        max_tokens: tokens kept per epoch (the memory bound).
        every_n_epochs: capture the validations of every n-th epoch.
        every_n_val_runs: capture every n-th validation of a fit (with ``val_check_interval``, several per
            epoch; each captured one is its own snapshot, keyed by epoch and global step). Every
            ``trainer.validate()`` is captured, as a ``validate`` snapshot (a *baseline* at step 0).
        dataloader_idx: the validation dataloader to capture, or ``"all"``: every loader, in one cloud (the
            loader is kept in each token's sentence id, see :func:`~lightning_ner_viz.snapshot.loader_of`).
        label_names: label id to name; ``None``: the HF ``id2label``, or a ``label_names`` attribute.
        tokenizer: ids to text for hover labels; ``None``: a ``tokenizer`` attribute of the module/datamodule.
        batch_adapter: maps a batch to a dict with ``input_ids``, ``labels`` and optionally
            ``attention_mask``, ``word_ids``, ``example_ids``.
        seed: sampling and reducer seed; the same seed picks the same tokens.
        crf_module: dotted name of a ``torchcrf.CRF`` for predictions; ``None`` finds one.
        save_dir: where snapshots go; ``None``: ``<default_root_dir>/ner_viz``. Sinks resolve their default
            and relative paths there too.
        entity_view: also show the ``entities`` view: one point per gold entity span (the mean hidden vector
            of its subwords), coloured by entity type.
        cls_view: also show the ``cls`` view: one point per sentence (its first token's hidden vector),
            coloured by the sentence's most frequent entity type.
        background: ``True``/``"process"``: project in a child process at the lowest CPU priority (a thread
            under DDP, docs/scaling.md); ``"thread"``: a background thread; ``False``: all on the training
            thread (debugging). Else batches are selected in a capture thread, sinks log from a background one.
        strict: ``None``: an unusable sink target at ``setup`` (unwritable path, no viewer) raises before
            training; later sink and rendering errors warn. ``True``: those raise too. ``False``: all warn
            (training goes on without that sink).
        max_pending: captured epochs that may wait to be rendered; when one more arrives the oldest waiting one is
            skipped (saved; ``render`` draws it); ``None``: no bound, every epoch is drawn. docs/reliability.md.
        label_issues: record every labelled validation token's gold probability each validation and write the
            ranked ``label_issues.csv`` (docs/label-issues.md); an int bounds the tokens (``True``: 1,000,000).
        train_dynamics: also record the training batches' tokens (Dataset Cartography's setting) and write
            ``train_label_issues.csv``; each training batch must then carry ``example_ids``.
        wait_at_fit_end: ``False``: ``fit`` returns when training is done; the last pictures are drawn and the sinks
            closed in the background, and :meth:`wait`, ``wandb.finish()`` and the process's exit wait for them
            (:mod:`~lightning_ner_viz.runtime.detached`). ``True`` (always under DDP, or with a sink that cannot
            outlive ``fit``, like a ``TensorBoardSink`` on a ``TensorBoardLogger``): ``fit`` waits for them.

    Example::

        trainer = Trainer(callbacks=[EmbeddingDriftCallback(sinks=[RerunSink("emb.rrd")], max_tokens=800)])
    """

    def __init__(
        self,
        sinks: Sink | Sequence[Sink] | str | None = None,
        hidden_module: str | Sequence[str] | None = None,
        emissions_module: str | None = None,
        reducer: ReducerName | Reducer = "pca",
        frame: FrameChoice = "auto",
        n_components: int = 3,
        max_tokens: int = 2000,
        every_n_epochs: int = 1,
        every_n_val_runs: int = 1,
        dataloader_idx: int | Literal["all"] = 0,
        label_names: Sequence[str] | None = None,
        tokenizer: Any | None = None,
        batch_adapter: BatchAdapter | None = None,
        seed: int = 0,
        crf_module: str | None = None,
        save_dir: str | None = None,
        entity_view: bool = True,
        cls_view: bool = False,
        background: Background = True,
        strict: bool | None = None,
        max_pending: int | None = DEFAULT_MAX_PENDING,
        label_issues: bool | int = True,
        train_dynamics: bool = False,
        wait_at_fit_end: bool = False,
    ) -> None:
        check_n_components(n_components)
        check_frame(frame, FRAME_CHOICES)
        check_reducer_frame(reducer, resolve_frame(frame, reducer))
        check_background(background)
        hidden_module = check_capture_arguments(max_tokens, every_n_epochs, hidden_module, every_n_val_runs,
                                                dataloader_idx, label_issues)
        self.sinks, self.hidden_module, self.emissions_module = sinks, hidden_module, emissions_module
        self.reducer, self.frame, self.n_components = reducer, frame, n_components
        self.max_tokens, self.every_n_epochs, self.seed = max_tokens, every_n_epochs, seed
        self.every_n_val_runs, self.dataloader_idx, self.label_issues = every_n_val_runs, dataloader_idx, label_issues
        self.label_names = list(label_names) if label_names is not None else None
        self.tokenizer, self.batch_adapter, self.crf_module = tokenizer, batch_adapter, crf_module
        self.save_dir, self.entity_view, self.cls_view = save_dir, entity_view, cls_view
        self.background, self.strict, self.max_pending = background, strict, check_max_pending(max_pending)
        self.train_dynamics, self.wait_at_fit_end = train_dynamics, wait_at_fit_end
        self._run = Lifecycle()
        self._train: TrainingDynamics | None = None

    @property
    @override
    def state_key(self) -> str:
        where = {"save_dir": str(self.save_dir)} if self.save_dir is not None else {}  # unchanged key by default
        return self._generate_state_key(hidden_module=self.hidden_module, emissions_module=self.emissions_module, **where)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        capture = capture_for(self, trainer, pl_module)
        self._run.start_capture(capture)
        if stage == "fit":  # hooked now, before the first forward, as the validation hooks (torch.compile)
            self._train = self._train or training_dynamics_for(self, trainer)
        store = snapshot_store(self, trainer)
        if trainer.world_size > 1:
            destroy_gloo_group_at_exit()
        if trainer.is_global_zero and self._run.render is None:
            self._run.start_render(render_for(self, trainer, store, capture, self._run.restored.get("sinks", {})))
            frame = self._run.render.renderer.projector.frame  # type: ignore[union-attr]
            rank_zero_info(describe_setup(capture.targets, frame, store, self.resolved_sinks))
        elif self._run.render is not None:
            self._run.render.prepare()  # a later fit or validate: the child went back to the pool

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._train is not None:
            self._train.start_epoch()

    @override
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._train is not None:
            self._train.start_batch()

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._train is not None:
            self._train.add_batch(batch)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._train is not None:
            self._train.end_epoch(trainer.strategy.root_device, trainer.current_epoch, trainer.global_step)

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._run.capture is None:
            return
        self._run.capture.raise_errors()
        due = self._run.due(trainer, self.every_n_epochs, self.every_n_val_runs)
        if due is not None:
            self._run.capture.start_epoch(trainer.current_epoch, validation_set_sizes(trainer), *due)

    @override
    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._run.capture is not None:
            self._run.capture.add_batch(batch, dataloader_idx)

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._run.capture is None or not self._run.capture.active:
            return
        deliver = self._run.deliver if trainer.is_global_zero and self._run.render is not None else None
        self._run.capture.end_epoch(trainer.strategy.root_device, trainer.global_step, deliver, trainer.world_size > 1)

    def _detaches(self, trainer: pl.Trainer) -> bool:
        return not self.wait_at_fit_end and trainer.world_size == 1 and all(s.outlives_fit for s in self.resolved_sinks)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and not self.captured_epochs and not self._run.fit_validations:
            warn("No validation epoch was captured: is the validation set empty, `limit_val_batches=0`, or "
                 f"`every_n_epochs={self.every_n_epochs}` larger than the number of epochs?")
        line = self._run.finish(progress=trainer.progress_bar_callback is not None, detach=self._detaches(trainer))
        if line:
            rank_zero_info(line)
        self._train = close_training_dynamics(self._train)
        trainer.strategy.barrier("lightning_ner_viz.on_fit_end")  # ranks leave together, after rank zero closed

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != "fit":  # the sinks stay open: a following fit or validate goes on in them
            self._run.pause(progress=trainer.progress_bar_callback is not None)

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._run.finish(progress=False, raise_capture_error=False, abort=stop_reason(trainer, exception))
        self._train = close_training_dynamics(self._train, raise_error=False)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        reason = stop_reason(trainer)
        if stage == "fit" or reason is not None:
            self._run.finish(progress=False, raise_capture_error=False, abort=reason, detach=self._detaches(trainer))
            self._train = close_training_dynamics(self._train, raise_error=False)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "max_tokens": self.max_tokens, **self._run.state_dict()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._run.load_state_dict(adopt_saved_arguments(self, state_dict, ("seed", "max_tokens")))

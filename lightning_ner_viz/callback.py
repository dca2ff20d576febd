"""EmbeddingDriftCallback: wires capture, sampling and rendering to Lightning's hooks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_ner_viz.capture import gather
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.capture.batch import BatchAdapter, TokenBatch, adapt_batch
from lightning_ner_viz.capture.discovery import (
    ForwardCapture, detect_emissions_module, detect_hidden_module, find_crf, get_module,
)
from lightning_ner_viz.capture.capture_thread import CaptureThread
from lightning_ner_viz.capture.collector import EpochCollector
from lightning_ner_viz.capture.entities import EntityTypes
from lightning_ner_viz.projection.frames import FRAMES
from lightning_ner_viz.capture.model_inspection import find_label_names, find_num_labels, find_tokenizer, validation_set_size
from lightning_ner_viz.reducers import REDUCERS, Reducer, check_n_components
from lightning_ner_viz.projection.renderer import Renderer, read_render_state
from lightning_ner_viz.sinks.registry import resolve_sinks
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.snapshot import Snapshot, snapshot_dir_name
from lightning_ner_viz.capture.text import TokenTexts


class EmbeddingDriftCallback(Callback):
    r"""Capture token embeddings every validation epoch and log the evolving cloud.

    Forward hooks read the model's own validation forward (no second pass): the
    hidden states of ``hidden_module`` and the emissions (logits before any CRF)
    of ``emissions_module``. The training thread only hands each batch's tensors to a
    capture thread, which keeps a deterministic, label-stratified sample of at most
    ``max_tokens`` tokens (the same tokens every epoch); they are gathered across
    ranks, saved as a snapshot, reduced to 2-D/3-D in the background (UMAP and
    t-SNE and the drift metrics in a low-priority child process) and logged to every
    sink. Only rank zero reduces and logs.

    Args:
        sinks: a sink or list of sinks (:class:`~lightning_ner_viz.sinks.RerunSink`,
            :class:`~lightning_ner_viz.sinks.WandbSink`, ...). ``None`` or ``"auto"``:
            a Rerun file under ``<default_root_dir>/ner_viz/`` plus a W&B sink when
            the Trainer has a ``WandbLogger``.
        hidden_module: dotted name of the module whose output holds the token hidden
            states (e.g. ``"bert"`` or ``"bert.encoder.layer.3"``). ``None``: the first
            Hugging Face model's base model. A list of names captures several layers
            from the same forward pass: the first is the ``hidden`` view (also used by
            the entity and cls views), each other one a view named after it, e.g.
            ``"bert.encoder.layer.3"`` -> ``hidden_bert_encoder_layer_3``.
        emissions_module: dotted name of the layer producing per-label logits.
            ``None``: the HF model's ``classifier``, else the last ``nn.Linear`` with
            one output per label.
        reducer: ``"pca"``, ``"umap"``, ``"tsne"`` or an object with ``fit_transform``.
        frame: how epochs share one frame, so a point moves only when the model changed:
            ``"procrustes"`` (fit each epoch, then rotate/reflect/scale onto the previous
            epoch over shared tokens), ``"fixed"`` (fit the first epoch, ``transform`` the
            rest), ``"warm"`` (initialise UMAP/t-SNE from the previous layout) or
            ``"independent"`` (no alignment).
        n_components: 2 or 3.
        max_tokens: tokens kept per epoch (the memory bound).
        every_n_epochs: capture every n-th validation epoch.
        label_names: label id to name; ``None`` reads the HF config's ``id2label`` or
            a ``label_names`` attribute of the module/datamodule.
        tokenizer: turns ids into text for hover labels; ``None`` looks for a
            ``tokenizer`` attribute on the module/datamodule.
        batch_adapter: maps a batch to a dict with ``input_ids``, ``labels`` and
            optionally ``attention_mask``, ``word_ids``, ``example_ids``.
        seed: sampling and reducer seed; the same seed picks the same tokens.
        crf_module: dotted name of a ``torchcrf.CRF`` for predictions; ``None`` finds one.
        save_dir: where snapshots go; ``None``: ``<default_root_dir>/ner_viz``.
        entity_view: also show the ``entities`` view: one point per gold entity span, the
            mean hidden vector of its subwords, coloured by entity type.
        cls_view: also show the ``cls`` view: one point per sentence, its first token's
            ([CLS]) hidden vector, coloured by the sentence's most frequent entity type.
        background: where the projection (reducer, frames, drift metrics) runs. ``True``
            or ``"process"``: in a pooled child process at the lowest CPU priority with
            one thread, so UMAP's numba code and the metrics take neither the GIL nor
            the cores from training (``True`` under DDP: a thread, see
            docs/scaling.md); ``"thread"``: in a background thread of this process;
            ``False``: in the training thread, and the token selection too (for debugging).
            Otherwise each batch's selection runs in a capture thread (at most 4 batches
            wait, holding their captured tensors); under DDP the epoch's gather still runs
            on the training thread. Sinks log from the background thread (or, with
            ``False``, the training thread).
        strict: re-raise sink errors instead of warning.

    Example::

        trainer = Trainer(callbacks=[EmbeddingDriftCallback(sinks=[RerunSink("emb.rrd")], max_tokens=800)])
    """

    def __init__(
        self,
        sinks: Sink | Sequence[Sink] | str | None = None,
        hidden_module: str | Sequence[str] | None = None,
        emissions_module: str | None = None,
        reducer: str | Reducer = "pca",
        frame: str = "procrustes",
        n_components: int = 3,
        max_tokens: int = 2000,
        every_n_epochs: int = 1,
        label_names: Sequence[str] | None = None,
        tokenizer: Any | None = None,
        batch_adapter: BatchAdapter | None = None,
        seed: int = 0,
        crf_module: str | None = None,
        save_dir: str | None = None,
        entity_view: bool = True,
        cls_view: bool = False,
        background: bool | str = True,
        strict: bool = False,
    ) -> None:
        check_n_components(n_components)
        if isinstance(reducer, str) and reducer not in REDUCERS:
            raise ValueError(f"reducer={reducer!r} is not one of {sorted(REDUCERS)} (or pass an object with fit_transform).")
        if not isinstance(reducer, (str, Reducer)):
            raise TypeError(f"reducer must be one of {sorted(REDUCERS)} or have fit_transform(X); got {type(reducer).__name__}.")
        if frame not in FRAMES:
            raise ValueError(f"frame={frame!r} is not one of {sorted(FRAMES)}.")
        if background not in (True, False, "process", "thread"):
            raise ValueError(f"background must be True, False, 'process' or 'thread'; got {background!r}.")
        if not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ValueError(f"max_tokens must be a positive int; got {max_tokens!r}.")
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be an int >= 1; got {every_n_epochs!r}.")
        self.sinks = sinks
        if hidden_module is not None and not isinstance(hidden_module, str):
            hidden_module = list(hidden_module)
            if not hidden_module or len(set(hidden_module)) != len(hidden_module):
                raise ValueError(f"hidden_module must be a name or a list of distinct names; got {hidden_module!r}.")
        self.hidden_module = hidden_module
        self.emissions_module = emissions_module
        self.reducer = reducer
        self.frame = frame
        self.n_components = n_components
        self.max_tokens = max_tokens
        self.every_n_epochs = every_n_epochs
        self.label_names = list(label_names) if label_names is not None else None
        self.tokenizer = tokenizer
        self.batch_adapter = batch_adapter
        self.seed = seed
        self.crf_module = crf_module
        self.save_dir = save_dir
        self.entity_view = entity_view
        self.cls_view = cls_view
        self.strict = strict
        self.logged_epochs: list[int] = []
        self.tracked_ids: list[int] | None = None
        self._background = background
        self._capture: ForwardCapture | None = None
        self._collector: EpochCollector | None = None
        self._capture_jobs = CaptureThread(enabled=background is not False)
        self._capturing: list[int] = []  # epochs handed to the capture thread whose selection is not done yet
        self._resumed_capturing: set[int] = set()
        self._renderer: Renderer | None = None
        self._worker: Any = None
        self._sink_states: list[dict[str, Any]] = []
        self._renderer_state: dict[str, Any] = {}
        self._examples_seen = 0
        self._epochs_started = 0
        self._views: tuple[str, ...] = ()

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(hidden_module=self.hidden_module, emissions_module=self.emissions_module)

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        hidden_names = ([self.hidden_module] if isinstance(self.hidden_module, str) else self.hidden_module) or [
            detect_hidden_module(pl_module)]
        hooked = {hidden_view_name(name, i): (name, get_module(pl_module, name, argument="hidden_module"))
                  for i, name in enumerate(hidden_names)}
        emissions_name = self.emissions_module or detect_emissions_module(
            pl_module, len(self.label_names) if self.label_names else None
        )
        emissions = get_module(pl_module, emissions_name, argument="emissions_module")
        self._crf = get_module(pl_module, self.crf_module, argument="crf_module") if self.crf_module else find_crf(pl_module)
        self._num_labels = find_num_labels(pl_module, emissions, self.label_names)
        if self._num_labels is None:
            raise ValueError("Could not tell the number of labels; pass `label_names=[...]`.")
        datamodule = getattr(trainer, "datamodule", None)
        names = self.label_names or find_label_names(pl_module, datamodule, self._num_labels)
        if len(names) != self._num_labels:
            raise ValueError(
                f"label_names has {len(names)} names but {emissions_name!r} outputs {self._num_labels} "
                "columns; pass one name per emission column, in label-id order."
            )
        self._label_names = names
        self._entity_types = EntityTypes.from_label_names(names) if self.entity_view or self.cls_view else None
        hooked["emissions"] = (emissions_name, emissions)
        self._views = tuple(hooked)
        self._capture = ForwardCapture(hooked)
        self._texts = TokenTexts(self.tokenizer or find_tokenizer(pl_module, datamodule))
        self._snapshot_root = Path(self.save_dir or Path(trainer.default_root_dir) / "ner_viz")
        if trainer.world_size > 1:
            gather.destroy_gloo_group_at_exit()
        if trainer.is_global_zero and self._renderer is None:
            from lightning_ner_viz.projection.worker import BackgroundWorker

            sinks = resolve_sinks(self.sinks, trainer)
            for sink, state in zip(sinks, self._sink_states):
                sink.load_state_dict(state)
            for sink in sinks:
                sink.setup(trainer)
            self._renderer = Renderer(self.reducer, self.n_components, self.seed, sinks, self.strict, self.frame,
                                      self._snapshot_root, place=self._projection_place(trainer.world_size))
            self._worker = BackgroundWorker(enabled=self._background is not False)
            self._restore_renderer()

    def _projection_place(self, world_size: int = 1) -> str:
        if self._background is True:
            # Under ddp_spawn with a projector child beside rank zero, rank 1 sometimes aborted
            # (SIGABRT, "terminate called without an active exception") at the end of fit, even
            # with the ranks meeting in a barrier; not yet understood, so DDP projects in a thread.
            return "process" if world_size == 1 else "thread"
        return "thread" if self._background is False else str(self._background)

    def _restore_renderer(self) -> None:
        """After a resume: continue the frames, and render again what the last run captured but never rendered.

        A checkpoint waits neither for the capture thread nor for rendering, so it may
        list epochs whose selection (``capturing_epochs``) or rendering was still pending.
        Those that reached the sinks before the run ended left a ``render_state.json``
        beside their snapshot; the others are rendered again from their saved snapshot.
        When the first epoch was still being selected, its snapshot gives the tracked tokens.
        """
        assert self._renderer is not None and self._worker is not None
        state = dict(self._renderer_state)
        rendered = set(state.get("rendered_epochs", self.logged_epochs))
        redo = []
        for epoch in sorted(set(self.logged_epochs) - rendered):
            directory = self._snapshot_dir(epoch)
            saved = read_render_state(directory)
            if saved is not None and not redo:
                state.update(saved)
                rendered.add(epoch)
            elif directory.is_dir():
                redo.append(epoch)
            elif epoch in self._resumed_capturing:
                warn(f"Epoch {epoch} was still being captured when the checkpoint was written, and its snapshot "
                     f"was never saved under {directory}; it is missing from the pictures.")
            else:
                warn(f"Epoch {epoch} was captured before the checkpoint, but its snapshot was never saved under "
                     f"{directory}; it is missing from the pictures.")
        if self.tracked_ids is None:  # the checkpoint came before the first epoch's selection was done
            first = next((e for e in sorted(self._resumed_capturing) if self._snapshot_dir(e).is_dir()), None)
            if first is not None:
                self.tracked_ids = Snapshot.load(self._snapshot_dir(first)).token_id.tolist()
        state["rendered_epochs"] = sorted(rendered)
        self._renderer.load_state_dict(state)
        if redo:
            self._worker.submit(self._render_saved, redo)

    def _render_saved(self, epochs: list[int]) -> None:
        """In the background worker: render saved snapshots again, in order."""
        assert self._renderer is not None
        for epoch in epochs:
            directory = self._snapshot_dir(epoch)
            self._renderer.render(Snapshot.load(directory), directory)

    def _snapshot_dir(self, epoch: int) -> Path:
        """Where the snapshot of ``epoch`` is saved."""
        return self._snapshot_root / snapshot_dir_name(epoch)

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return False
        # after a resume, an epoch already logged before the checkpoint is not logged twice
        return not (trainer.state.fn == "fit" and trainer.current_epoch in self.logged_epochs)

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._capture_jobs.raise_error()
        if not self._due(trainer) or self._capture is None:
            return
        self._capture.attach()
        self._epochs_started += 1
        self._collector = EpochCollector(self._views, self._num_labels, self.max_tokens, self.seed, self._crf,
                                         self._entity_types, self.cls_view, self.entity_view)
        self._examples_seen = 0
        self._dataset_size = validation_set_size(trainer)
        self._capture_jobs.submit(self._track, self._collector)

    def _track(self, collector: EpochCollector) -> None:
        """In the capture thread, after the previous epoch's selection: later epochs keep its tokens."""
        collector.track(torch.tensor(self.tracked_ids, dtype=torch.long) if self.tracked_ids is not None else None)

    @override
    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._collector is None or self._capture is None:
            return
        captured = self._capture.pop()
        if dataloader_idx != 0:
            return
        tokens = adapt_batch(batch, self.batch_adapter)
        missing = [v for v in self._views if v not in captured]
        if missing:
            names = {v: self._capture.modules[v][0] for v in missing}
            raise RuntimeError(
                f"The hooked modules {names} did not run during validation_step, so nothing was captured. "
                "Point `hidden_module`/`emissions_module` at modules your validation forward calls."
            )
        offset, self._examples_seen = self._examples_seen, self._examples_seen + tokens.input_ids.shape[0]
        self._capture_jobs.submit(self._add_batch, self._collector, tokens, captured, offset)

    @torch.inference_mode()  # like the validation loop (a thread-local mode): inference tensors stay writable
    def _add_batch(self, collector: EpochCollector, tokens: TokenBatch, captured: dict[str, torch.Tensor],
                   offset: int) -> None:
        """In the capture thread: offer one batch's tokens to the epoch's collector."""
        example_ids = tokens.example_ids
        if example_ids is None:
            # DistributedSampler (shuffle=False) gives rank r the examples r, r+W, r+2W, ...
            local = torch.arange(tokens.input_ids.shape[0], device=tokens.input_ids.device) + offset
            example_ids = local * gather.world_size() + gather.rank()
            if self._dataset_size is not None and gather.world_size() > 1:
                example_ids = torch.where(example_ids < self._dataset_size, example_ids, -1)  # sampler padding
        seq = tokens.input_ids.shape[1]
        collector.add_batch(tokens, {v: t[:, :seq] for v, t in captured.items()}, example_ids)

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._collector is None or self._capture is None:
            return
        self._capture.detach()
        collector, self._collector = self._collector, None
        args = (collector, trainer.strategy.root_device, trainer.current_epoch, trainer.global_step, trainer.is_global_zero)
        if trainer.world_size > 1:  # the finish is collective: it stays on the training thread
            self._capture_jobs.drain()
            self._end_epoch(*args)
        else:
            self._capturing.append(trainer.current_epoch)
            self._capture_jobs.submit(self._end_epoch, *args)

    @torch.inference_mode()
    def _end_epoch(self, collector: EpochCollector, device: torch.device, epoch: int, step: int, is_global_zero: bool) -> None:
        """Select the epoch's tokens (every rank), then queue its snapshot and rendering (rank zero).

        Runs in the capture thread with one process, in the training thread under DDP.
        """
        try:
            self._select_and_queue(collector, device, epoch, step, is_global_zero)
        finally:
            if epoch in self._capturing:  # after `logged_epochs` has it (see state_dict)
                self._capturing.remove(epoch)

    def _select_and_queue(self, collector: EpochCollector, device: torch.device, epoch: int, step: int,
                          is_global_zero: bool) -> None:
        tracked = torch.tensor(self.tracked_ids, dtype=torch.long) if self.tracked_ids is not None else None
        columns = collector.finish(device, tracked)  # collective: every rank calls it
        if self.tracked_ids is None:  # the first epoch fixes the tracked tokens, on every rank
            chosen = columns["token_id"] if columns is not None else torch.zeros(0, dtype=torch.long)
            ids = gather.broadcast_rows(chosen if is_global_zero else None, device)
            self.tracked_ids = ids.tolist() or None
        if not is_global_zero or self._renderer is None:
            return
        if columns is None:
            warn(
                f"Epoch {epoch}: no valid validation token (every label was -100, "
                "or the validation set is empty); nothing was logged."
            )
            return
        if tracked is not None and len(columns["token_id"]) < len(tracked):
            warn(
                f"Epoch {epoch}: only {len(columns['token_id'])} of the {len(tracked)} tracked "
                "tokens were seen (did `limit_val_batches` or the validation data change?). Logging the "
                "tokens seen in both, so every point still has a history."
            )
        if collector.stats["nonfinite_filtered"]:
            warn(
                f"Epoch {epoch}: {collector.stats['nonfinite_filtered']} tokens had NaN or Inf "
                "hidden states or emissions and were left out (counted as `nonfinite_filtered`)."
            )
        self._report(self._worker.collect_errors())
        self._worker.submit(self._save_and_render, collector, columns, epoch, step)
        self.logged_epochs.append(epoch)

    def _save_and_render(self, collector: EpochCollector, columns: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        """In the background worker: build the epoch's Snapshot (texts), save it, then render it."""
        assert self._renderer is not None
        snapshot = collector.to_snapshot(columns, epoch=epoch, step=step, label_names=self._label_names,
                                         texts=self._texts)
        directory: Path | None = self._snapshot_dir(snapshot.epoch)
        try:
            snapshot.save(directory)
        except OSError as err:
            if self.strict:
                raise
            directory = None
            warn(f"Could not save the epoch {snapshot.epoch} snapshot under {self._snapshot_root}: {err}.")
        self._renderer.render(snapshot, directory)

    def _report(self, errors: list[BaseException]) -> None:
        for err in errors:
            if self.strict:
                raise err
            warn(f"lightning-ner-viz: rendering failed ({type(err).__name__}: {err}); training goes on.")

    def _finish(self, raise_capture_error: bool = True) -> None:
        """Wait for the capture thread and the rendering, then close the projector.

        A capture error (e.g. bad gold labels) is raised after rendering finished, or only
        warned about with ``raise_capture_error=False`` (training already failed).
        """
        if self._capture is not None:
            self._capture.detach()
        self._collector = None
        capture_error = self._capture_jobs.close()
        if capture_error is not None and not raise_capture_error:
            warn(f"lightning-ner-viz: capturing the last validation epoch failed ({capture_error!r}).")
        if self._renderer is not None and self._worker is not None:
            self._report(self._worker.wait(progress=True))
            self._worker.shutdown()  # no idle thread left behind; the next fit starts a new one
            self._renderer.close()
        if capture_error is not None and raise_capture_error:
            raise capture_error

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and not self.logged_epochs and not self._epochs_started:
            warn(
                "No validation epoch was captured: is the validation set empty, `limit_val_batches=0`, or "
                f"`every_n_epochs={self.every_n_epochs}` larger than the number of epochs?"
            )
        self._finish()
        # rank zero may still be rendering: the other ranks wait here rather than tear the process
        # group down first (this alone did not stop the SIGABRT noted in _projection_place)
        trainer.strategy.barrier("lightning_ner_viz.on_fit_end")

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.state.fn or trainer.state.fn != "fit":
            self._finish()

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._finish(raise_capture_error=False)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._finish(raise_capture_error=False)

    @override
    def state_dict(self) -> dict[str, Any]:
        # never waits for the capture thread either: an epoch still being selected is listed
        # as `capturing`; read before `logged_epochs`, so an epoch finishing meanwhile is in one of them
        capturing = list(self._capturing)
        self._capture_jobs.raise_error()
        if self._worker is not None:  # never waits: a resumed run renders again what was pending
            self._report(self._worker.collect_errors())
        sinks = self._renderer.sinks if self._renderer is not None else []
        return {
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "logged_epochs": sorted(set(self.logged_epochs) | set(capturing)),
            "capturing_epochs": capturing,
            "tracked_ids": self.tracked_ids,
            "sinks": [s.state_dict() for s in sinks],
            "renderer": self._renderer.state_dict() if self._renderer is not None else self._renderer_state,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = state_dict.get("seed", self.seed)
        self.logged_epochs = list(state_dict.get("logged_epochs", []))
        self._resumed_capturing = set(state_dict.get("capturing_epochs", []))
        self.tracked_ids = state_dict.get("tracked_ids", self.tracked_ids)
        self._sink_states = list(state_dict.get("sinks", []))
        self._renderer_state = dict(state_dict.get("renderer", {}))
        if self._renderer is not None:  # Lightning restores callbacks after `setup`
            for sink, state in zip(self._renderer.sinks, self._sink_states):
                sink.load_state_dict(state)
            self._restore_renderer()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_capture=None, _collector=None, _renderer=None, _worker=None)
        return state


def hidden_view_name(module_name: str, index: int) -> str:
    """The view name of the ``index``-th hidden module: ``hidden``, then ``hidden_<dotted_name_with_underscores>``."""
    return "hidden" if index == 0 else "hidden_" + re.sub(r"\W+", "_", module_name).strip("_")

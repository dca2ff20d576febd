"""Every rank's capture of the validation epochs: hooks, per-batch selection off the training thread, the gather."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.capture import gather
from lightning_ner_viz.capture.assembly import GatheredEpoch, assemble_snapshot
from lightning_ner_viz.capture.batch import BatchAdapter, adapt_batch, example_ids
from lightning_ner_viz.capture.collector import EpochCollector
from lightning_ner_viz.capture.discovery import CaptureTargets, is_compiled
from lightning_ner_viz.capture.dynamics import DynamicsCollector
from lightning_ner_viz.capture.hooks import ForwardCapture
from lightning_ner_viz.capture.merging import BatchMerger, PendingBatch, merge_batches
from lightning_ner_viz.capture.tensor_ops import one_thread
from lightning_ner_viz.capture.text import TokenTexts
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.labels import EntityTypes
from lightning_ner_viz.snapshot import LOADER_BITS, Snapshot

CAPTURE_QUEUE = 4
"""Selection jobs (each one batch, or small batches merged, see :mod:`.merging`) whose captured tensors may
wait on the model's device for the capture thread."""

Deliver = Callable[[GatheredEpoch], None]


class ValidationCapture:
    """Captures the due validation epochs on this rank.

    The training thread only pops each batch's hooked tensors and queues them; the capture
    thread selects the batch's tokens (small batches a group at a time, see :mod:`.merging`).
    With one process it also finishes the epoch and hands the gathered rows to ``deliver``;
    under DDP the finish is a collective, so it runs on the training thread after this rank's
    queue drained.

    Args:
        targets: the watched modules, labels and CRF.
        max_tokens: rows kept per epoch and group.
        seed: the sampling seed.
        entity_view: also sample gold entity spans.
        cls_view: also sample one row per sentence.
        batch_adapter: maps a batch to a dict of ``input_ids``, ``labels``, ... (see :func:`adapt_batch`).
        in_thread: run the selection in the capture thread (``False``: on the training thread).
        dataloader_idx: the validation dataloader captured, or ``"all"``; a loader's sentence ids carry
            its index (see :data:`~lightning_ner_viz.snapshot.LOADER_BITS`), so ids never collide.
        dynamics_tokens: record the token dynamics of at most this many labelled tokens per validation
            (:mod:`~lightning_ner_viz.capture.dynamics`); ``0``: none.
    """

    def __init__(self, targets: CaptureTargets, *, max_tokens: int, seed: int, entity_view: bool, cls_view: bool,
                 batch_adapter: BatchAdapter | None, in_thread: bool, dataloader_idx: int | str = 0,
                 dynamics_tokens: int = 0) -> None:
        self.targets = targets
        self.max_tokens = max_tokens
        self.seed = seed
        self.entity_view = entity_view
        self.cls_view = cls_view
        self.batch_adapter = batch_adapter
        self.dataloader_idx = dataloader_idx
        self.dynamics_tokens = dynamics_tokens
        self._texts_seen: set[int] = set()  # sentence ids whose text a token-dynamics record already holds
        self.views = tuple(targets.modules)
        self.entity_types = EntityTypes.from_label_names(targets.label_names) if entity_view or cls_view else None
        self.tracked_ids: list[int] | None = None
        self.capturing: list[str] = []  # snapshots (names) whose selection is still running in the capture thread
        self._hooks = ForwardCapture(dict(targets.modules))
        self._hooks.attach()  # now, at setup: before any forward, so torch.compile traces them (gated off)
        self._disabled = False
        self.closed = False  # after close(): hooks detached, thread stopped
        self._jobs = JobRunner("ner-viz-capture", max_pending=CAPTURE_QUEUE, enabled=in_thread)
        self._collector: EpochCollector | None = None
        self._merger = BatchMerger()
        self._epoch, self._stage, self._run = -1, "fit", 0
        self._rows_seen: dict[int, int] = {}  # rows this rank saw per loader, this validation
        self._dataset_sizes: list[int | None] = []
        self._ignored_loaders: set[int] = set()

    def snapshot_builder(self) -> Callable[[GatheredEpoch], Snapshot]:
        """A function that turns a gathered epoch into its Snapshot (texts from the tokenizer)."""
        return functools.partial(assemble_snapshot, texts=TokenTexts(self.targets.tokenizer),
                                 label_names=self.targets.label_names, entity_types=self.entity_types)

    @property
    def active(self) -> bool:
        """Whether an epoch is being captured."""
        return self._collector is not None

    def raise_errors(self) -> None:
        """Raise the first error of a capture job, if one failed; never waits."""
        errors = self._jobs.take_errors()
        if errors:
            raise errors[0]

    def start_epoch(self, epoch: int, dataset_sizes: list[int | None], stage: str = "fit", run: int = 0) -> None:
        """Turn the hooks on and start a new validation's collector (later ones keep the tracked tokens).

        ``stage`` and ``run`` say which validation it is (see :mod:`lightning_ner_viz.keys`).
        """
        if self._disabled:
            return
        self._hooks.outputs.clear()
        self._hooks.enabled = True
        self._merger.take()  # batches of a validation that ended without end_epoch (an exception) are dropped
        self._epoch, self._stage, self._run = epoch, stage, run
        self._rows_seen, self._dataset_sizes = {}, list(dataset_sizes)
        self._collector = EpochCollector(
            self.views, len(self.targets.label_names), self.max_tokens, self.seed, self.targets.crf,
            self.entity_types, entity_view=self.entity_view, cls_view=self.cls_view,
            label_names=self.targets.label_names,
            dynamics=DynamicsCollector(len(self.targets.label_names), self.targets.crf, self.dynamics_tokens, self.seed,
                                       self._texts_seen) if self.dynamics_tokens > 0 else None,
        )
        self._jobs.submit(self._track, self._collector, group=epoch)

    def _track(self, collector: EpochCollector) -> None:
        """In the capture thread, after the previous epoch's finish: later epochs keep its tokens."""
        collector.track(self.tracked_ids)

    def add_batch(self, batch: Any, dataloader_idx: int) -> None:
        """Hand one validation batch's captured tensors to the capture thread."""
        if self._collector is None:
            return
        captured = self._hooks.pop()
        if self.dataloader_idx not in ("all", dataloader_idx):
            if dataloader_idx not in self._ignored_loaders:
                self._ignored_loaders.add(dataloader_idx)
                warn(f"Validation dataloader {dataloader_idx} is not captured: only dataloader_idx="
                     f"{self.dataloader_idx} is. Pass EmbeddingDriftCallback(dataloader_idx='all') to capture every "
                     "loader (or the index of the one you want to see).")
            return
        tokens = adapt_batch(batch, self.batch_adapter)
        missing = [v for v in self.views if v not in captured]
        if missing:
            names = {v: self.targets.modules[v][0] for v in missing}
            if self.targets.root is not None and is_compiled(self.targets.root):
                self._disable(names)
                return
            raise RuntimeError(
                f"The hooked modules {names} did not run during validation_step, so nothing was captured. "
                "Point `hidden_module`/`emissions_module` at modules your validation forward calls."
            )
        offset = self._rows_seen.get(dataloader_idx, 0)
        self._rows_seen[dataloader_idx] = offset + tokens.input_ids.shape[0]
        self.raise_errors()
        sizes = self._dataset_sizes
        size = sizes[dataloader_idx] if dataloader_idx < len(sizes) else None
        self._submit(self._merger.add(PendingBatch(tokens, captured, offset, dataloader_idx, size)))

    def _submit(self, batches: list[PendingBatch]) -> None:
        """Queue the selection of these batches (none: nothing to do) for the capture thread."""
        if batches and self._collector is not None:
            self._jobs.submit(self._select, self._collector, batches, group=self._epoch)

    @torch.inference_mode()  # like the validation loop (a thread-local mode): inference tensors stay writable
    def _select(self, collector: EpochCollector, batches: list[PendingBatch]) -> None:
        with one_thread(batches[0].tokens.labels.device):  # the merge too: see one_thread
            self._select_merged(collector, batches)

    def _select_merged(self, collector: EpochCollector, batches: list[PendingBatch]) -> None:
        tokens, outputs, ids = [], [], []
        for pending in batches:
            rows = example_ids(pending.tokens, pending.offset, gather.world_size(), gather.rank(), pending.dataset_size)
            if pending.loader:
                rows = torch.where(rows >= 0, rows + (pending.loader << LOADER_BITS), rows)
            seq = pending.tokens.input_ids.shape[1]
            tokens.append(pending.tokens)
            outputs.append({v: t[:, :seq] for v, t in pending.captured.items()})
            ids.append(rows)
        collector.add_batch(*merge_batches(tokens, outputs, ids), batches=len(batches))

    def end_epoch(self, device: torch.device, step: int, deliver: Deliver | None, distributed: bool) -> None:
        """Turn the hooks off and finish the epoch: gather, select, then ``deliver`` the rows (rank zero)."""
        self._hooks.enabled = False
        self._hooks.outputs.clear()
        if self._collector is None:
            return
        self._submit(self._merger.take())
        collector, self._collector = self._collector, None
        if distributed:  # the finish is collective: it stays on the training thread
            self._jobs.wait()
            self.raise_errors()
            self._finish(collector, device, self._epoch, step, deliver)
        else:
            self.capturing.append(self._name(step))
            self._jobs.submit(self._finish, collector, device, self._epoch, step, deliver, group=self._epoch)

    def _name(self, step: int) -> str:
        return SnapshotKey(self._stage, self._epoch, step, self._run).name  # type: ignore[arg-type]

    @torch.inference_mode()
    def _finish(self, collector: EpochCollector, device: torch.device, epoch: int, step: int,
                deliver: Deliver | None) -> None:
        name, stage, run = self._name(step), self._stage, self._run
        try:
            gathered = collector.finish(device, epoch, step)
            if gathered is not None:
                gathered.stage, gathered.run = stage, run
            if self.tracked_ids is None:  # the first epoch fixes the tracked tokens, on every rank
                chosen = torch.as_tensor(gathered.tokens["token_id"] if gathered is not None else np.zeros(0, np.int64))
                ids = gather.broadcast_rows(chosen if gather.rank() == 0 else None, device)
                self.tracked_ids = ids.tolist() or None
            if deliver is not None:
                self._report(SnapshotKey(stage, epoch, step, run).label, collector, gathered)  # type: ignore[arg-type]
                if gathered is not None:
                    deliver(gathered)
        finally:
            if name in self.capturing:  # after `deliver` recorded it (see the callback's state_dict)
                self.capturing.remove(name)

    def _report(self, label: str, collector: EpochCollector, gathered: GatheredEpoch | None) -> None:
        epoch = label[0].upper() + label[1:]  # "Epoch 2 · step 120", "Baseline · validate 0 · step 0"
        if gathered is None:
            warn(f"{epoch}: no valid validation token (every label was -100, "
                 "or the validation set is empty); nothing was logged.")
            return
        kept = len(gathered.tokens["token_id"])
        if collector.tokens.tracking and self.tracked_ids is not None and kept < len(self.tracked_ids):
            warn(f"{epoch}: only {kept} of the {len(self.tracked_ids)} tracked tokens were seen (did "
                 "`limit_val_batches` or the validation data change?). Logging the tokens seen in both, so every "
                 "point still has a history.")
        if collector.stats["nonfinite_filtered"]:
            warn(f"{epoch}: {collector.stats['nonfinite_filtered']} tokens had NaN or Inf hidden states or "
                 "emissions and were left out (counted as `nonfinite_filtered`).")

    def _disable(self, names: dict[str, str]) -> None:
        """Stop capturing for the rest of the run, with one warning: a compiled graph does not call the hooks."""
        self._disabled, self._collector = True, None
        self._merger.take()
        self._hooks.detach()
        warn(f"lightning-ner-viz captures nothing in this run: the hooked modules {names} are in a model compiled "
             "with torch.compile that was traced before the callback's hooks were attached (the model ran before "
             "the Trainer set the callback up, e.g. a forward or another fit/validate first). Training goes on. "
             "Add the callback to the Trainer before the model first runs, or call torch._dynamo.reset() first.")

    def wait(self) -> None:
        """Block until the queued capture jobs are done (their errors stay queued for :meth:`raise_errors`)."""
        self._jobs.wait()

    def close(self) -> BaseException | None:
        """Detach the hooks, finish the queued jobs and stop the thread; return (not raise) a job's error."""
        self.closed = True
        self._hooks.detach()
        self._collector = None
        self._merger.take()
        self._jobs.wait()
        self._jobs.close()
        errors = self._jobs.take_errors()
        return errors[0] if errors else None

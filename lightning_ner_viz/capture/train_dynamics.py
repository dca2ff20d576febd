"""The training set's token dynamics (``train_dynamics=True``): Dataset Cartography's own setting.

Each training batch's emissions (read by a forward hook of the model's own training forward, detached)
give every labelled token's gold probability and prediction, as for validation
(:class:`~lightning_ner_viz.capture.dynamics.DynamicsCollector`). At the end of each training epoch the
ranks' rows are gathered; rank zero saves the epoch's record under ``<snapshot root>/train_dynamics/`` and
ranks the training tokens into ``train_label_issues.csv``, in a background thread.

A training loader shuffles, so a token's position in the epoch says nothing about which example it is:
every training batch must carry ``example_ids`` (the examples' indices in the training set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_ner_viz.analysis.label_issue_report import LabelIssueFinder
from lightning_ner_viz.capture import gather
from lightning_ner_viz.capture.assembly import GatheredDynamics, token_dynamics
from lightning_ner_viz.capture.batch import BatchAdapter, adapt_batch
from lightning_ner_viz.capture.discovery import CaptureTargets
from lightning_ner_viz.capture.dynamics import DynamicsCollector
from lightning_ner_viz.capture.hooks import ForwardCapture
from lightning_ner_viz.capture.predictions import predict_labels
from lightning_ner_viz.capture.tensor_ops import finite_rows
from lightning_ner_viz.capture.text import TokenTexts
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.runtime.jobs import JobRunner
from lightning_ner_viz.store import SnapshotStore, atomic_directory

TRAIN_DIR = "train_dynamics"
TRAIN_CSV = "train_label_issues.csv"

_NO_IDS = ("train_dynamics=True needs every training batch to carry `example_ids`, each row's index in the training "
           "set: the training loader shuffles, so the batch order does not say which example a row is. Add them in "
           "your collate_fn (e.g. 'example_ids': torch.tensor([row['id'] for row in rows])) or return them from "
           "`batch_adapter`, or pass train_dynamics=False.")


class TrainingDynamics:
    """Records every captured training epoch's token dynamics on this rank.

    Args:
        targets: the watched modules (the ``emissions`` one is hooked), labels, CRF and tokenizer.
        batch_adapter: maps a batch to a dict (see :func:`~lightning_ner_viz.capture.batch.adapt_batch`).
        max_tokens: labelled training tokens kept per epoch (a deterministic subset past it).
        seed: the subset's hash seed.
        root: the snapshot root.
        in_background: rank in a background thread (``False``: on the training thread).
    """

    def __init__(self, targets: CaptureTargets, batch_adapter: BatchAdapter | None, max_tokens: int, seed: int,
                 root: Path, in_background: bool = True) -> None:
        if "emissions" not in targets.modules:
            raise ValueError("train_dynamics=True needs the emissions: pass `emissions_module`.")
        self.targets, self.batch_adapter = targets, batch_adapter
        self.max_tokens, self.seed = max_tokens, seed
        self.store = SnapshotStore(Path(root) / TRAIN_DIR)
        self.finder = LabelIssueFinder(self.store, csv_path=Path(root) / TRAIN_CSV)
        self._hooks = ForwardCapture({"emissions": targets.modules["emissions"]})
        self._hooks.attach()
        self._texts_seen: set[int] = set()
        self._collector: DynamicsCollector | None = None
        self._jobs = JobRunner("ner-viz-train-issues", max_pending=2, enabled=in_background)
        self._texts = TokenTexts(targets.tokenizer)

    def start_epoch(self) -> None:
        """A new epoch's collector."""
        self._collector = DynamicsCollector(len(self.targets.label_names), self.targets.crf, self.max_tokens, self.seed,
                                            self._texts_seen)

    def start_batch(self) -> None:
        """Let the hook keep this batch's emissions."""
        self._hooks.enabled = self._collector is not None

    @torch.no_grad()
    def add_batch(self, batch: Any) -> None:
        """Record the batch's labelled tokens (on the batch's device)."""
        self._hooks.enabled = False
        emissions = self._hooks.pop().get("emissions")
        if emissions is None or self._collector is None:
            return
        tokens = adapt_batch(batch, self.batch_adapter)
        if tokens.example_ids is None:
            raise ValueError(_NO_IDS)
        ids = tokens.example_ids.long()
        emissions = emissions[:, : tokens.input_ids.shape[1]]
        pred = predict_labels(emissions, tokens.attention_mask, self.targets.crf)
        valid = tokens.valid & (ids >= 0)[:, None] & finite_rows(emissions)
        self._collector.add(tokens, emissions, pred, valid, ids)

    def end_epoch(self, device: torch.device, epoch: int, step: int) -> None:
        """Gather the epoch (a collective: every rank calls it); rank zero saves and ranks it in the background."""
        collector, self._collector = self._collector, None
        if collector is None:
            return
        found = collector.finish(device)
        if gather.rank() != 0 or found is None or len(found[0]["token_id"]) == 0:
            return
        rows, texts, seen = found
        record = token_dynamics(GatheredDynamics({k: v.numpy() for k, v in rows.items()},
                                                 {k: v.numpy() for k, v in texts.items()}, seen, collector.source),
                                self._texts, list(self.targets.label_names))
        key = SnapshotKey("fit", epoch, step)
        self._save(key, record)
        self._jobs.submit(self.finder.update_key, key, list(self.targets.label_names))

    def _save(self, key: SnapshotKey, record: Any) -> None:
        with atomic_directory(self.store.directory(key.name)) as tmp:
            record.save(tmp)

    def close(self) -> BaseException | None:
        """Detach the hook, finish the ranking and return (not raise) its error, if any."""
        self._hooks.detach()
        self._jobs.wait()
        self._jobs.close()
        errors = self._jobs.take_errors()
        return errors[0] if errors else None

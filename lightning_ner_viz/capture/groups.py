"""One sampled group of rows (tokens, entity spans or sentences): its sampler, tracked ids and selection."""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.capture.sampling import Columns, TokenSampler, select_final, token_priority

Rows = dict[str, torch.Tensor]
"""Row-aligned CPU columns: ``token_id``, ``label``, ``priority``, then the group's own columns."""

_KEY_COLUMNS = ("token_id", "label", "priority")


class SampledGroup:
    """A bounded, stratified, deterministic sample of one kind of row, on one rank.

    Args:
        name: the group's name; its vector column has the same name (``entities``, ``cls``),
            except for tokens, whose vector columns are the captured views.
        num_classes: the number of classes rows are stratified by.
        max_rows: rows kept in the epoch's selection.
        seed: the hash seed; the same seed keeps the same rows.
        int_columns: the group's integer columns besides the key columns (e.g. ``pred``).
        vector_columns: the group's float columns of shape (n, dim).
    """

    def __init__(self, name: str, num_classes: int, max_rows: int, seed: int, int_columns: tuple[str, ...],
                 vector_columns: tuple[str, ...]) -> None:
        self.name = name
        self.int_columns = int_columns
        self.vector_columns = vector_columns
        self.sampler = TokenSampler(max_rows, num_classes, seed)
        self._tracked: torch.Tensor | None = None
        self._tracked_on: dict[torch.device, torch.Tensor] = {}
        self._tracked_chunks: list[Rows] = []

    @property
    def seed(self) -> int:
        """The hash seed."""
        return self.sampler.seed

    @property
    def tracking(self) -> bool:
        """Whether the group keeps a fixed set of ids (see :meth:`track`) instead of sampling."""
        return self._tracked is not None

    def track(self, row_ids: torch.Tensor | None) -> None:
        """Keep exactly these ids (an earlier epoch's selection) wherever they are seen, instead of sampling.

        Call before the first batch. The class counts are still taken. Unlike sampling, a
        tracked row is kept even when the validation set grew and new rows would outrank it.
        """
        self._tracked = None if row_ids is None else torch.sort(torch.as_tensor(row_ids, dtype=torch.long)).values
        self._tracked_on = {}

    def offer(self, row_id: torch.Tensor, labels: torch.Tensor, columns: Columns, *,
              priority: torch.Tensor | None = None, count: bool = True) -> torch.Tensor | None:
        """Offer one batch's rows; the indices of those kept (``None`` if none). See :meth:`TokenSampler.update`."""
        if self._tracked is not None:
            return self._keep_tracked(row_id, labels, columns)
        return self.sampler.update(row_id, labels, columns, count=count, priority=priority)

    def _keep_tracked(self, row_id: torch.Tensor, labels: torch.Tensor, columns: Columns) -> torch.Tensor | None:
        assert self._tracked is not None
        self.sampler.count(labels)
        device = row_id.device
        if device not in self._tracked_on:
            self._tracked_on[device] = self._tracked.to(device)
        kept = torch.isin(row_id, self._tracked_on[device]).nonzero().squeeze(1)
        if kept.numel() == 0:
            return None
        ints = torch.stack([row_id[kept], labels[kept].long()]).cpu()
        extra = columns(kept) if callable(columns) else {k: v[kept] for k, v in columns.items()}
        self._tracked_chunks.append({"token_id": ints[0], "label": ints[1], **{k: v.cpu() for k, v in extra.items()}})
        return kept

    def count(self, labels: torch.Tensor) -> None:
        """Add a batch's classes to the per-class totals without offering rows."""
        self.sampler.count(labels)

    def could_keep(self, priority: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Indices of rows that could still be kept (see :meth:`TokenSampler.could_keep`)."""
        return self.sampler.could_keep(priority, labels)

    @property
    def class_counts(self) -> np.ndarray:
        """Array of shape (num_classes,): rows counted per class on this rank."""
        return self.sampler.label_counts

    def local_selection(self, counts: np.ndarray) -> Rows:
        """This rank's share of the epoch's selection: the key and int columns always (zero rows
        included), the vector columns where this rank has rows.

        Args:
            counts: array of shape (num_classes,): rows per class summed over every rank.
        """
        if self._tracked is not None:
            local = self._tracked_rows()
        else:
            local = select_final(self.sampler.candidates(), counts, self.sampler.max_tokens)
        columns = {k: local.get(k, torch.zeros(0, dtype=torch.long)) for k in (*_KEY_COLUMNS, *self.int_columns)}
        columns.update({v: local[v] for v in self.vector_columns if v in local})
        return columns

    def _tracked_rows(self) -> Rows:
        if not self._tracked_chunks:
            return {}
        merged = {k: torch.cat([c[k] for c in self._tracked_chunks]) for k in self._tracked_chunks[0]}
        merged["priority"] = token_priority(merged["token_id"], self.seed)
        return merged

    def final_selection(self, gathered: Rows, counts: np.ndarray) -> Rows | None:
        """Rank zero's selection from every rank's rows, sorted by id (``None`` when there is none)."""
        if len(gathered["token_id"]) == 0 or counts.sum() == 0:
            return None
        if self._tracked is not None:
            order = torch.argsort(gathered["token_id"])
            return {k: v[order] for k, v in gathered.items()}
        return select_final(gathered, counts, self.sampler.max_tokens)


def span_priority_of(priority: torch.Tensor | None, index: torch.Tensor, ids: torch.Tensor,
                     seed: int) -> torch.Tensor:
    """``priority[index]`` when the batch's priorities were computed; else the hash of ``ids[index]``."""
    return priority[index] if priority is not None else token_priority(ids[index], seed)


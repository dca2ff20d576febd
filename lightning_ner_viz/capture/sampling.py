"""Deterministic, label-stratified token selection that runs on the model's device.

Each token gets a pseudo-random priority from a hash of ``(seed, token_id)``.
Per gold label the sampler keeps the tokens with the smallest priorities, so the
same tokens are chosen every epoch, whatever the batch size, order or number of
ranks. Only rows that can still make the cut are copied to the CPU, and the kept
candidates are pruned to about ``2 * max_tokens`` rows in all, so memory is bounded
by ``max_tokens``, not by the size of the validation set.

Why pruning is exact: the final quotas fill labels equally up to a level, and that
level can only fall as more tokens are counted. So a label's final quota is at most
the largest quota computed from the counts so far, plus one (integer rounding), and
a token ranked below that within its label can never be selected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

_MASK32 = 0xFFFFFFFF


def token_priority(token_id: torch.Tensor, seed: int) -> torch.Tensor:
    """Hash int64 token ids to int64 priorities in ``[0, 2**32)``, on their device.

    The integer hash stays inside int64 at every step, so it gives the same
    values on CPU and CUDA.
    """
    x = (token_id ^ (token_id >> 32) ^ ((seed * 0x9E3779B1) & _MASK32)) & _MASK32
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def stratified_quotas(counts: np.ndarray, max_tokens: int) -> np.ndarray:
    """How many tokens to keep per label: equal shares, with what a rare label can't use handed to the rest.

    Args:
        counts: array of shape (n_labels,), available tokens per label.
        max_tokens: the total to keep.

    Returns:
        array of shape (n_labels,) with ``quota <= counts`` and ``quota.sum() == min(max_tokens, counts.sum())``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    quota = np.zeros_like(counts)
    remaining = min(int(max_tokens), int(counts.sum()))
    while remaining > 0:
        open_labels = np.flatnonzero(quota < counts)
        share = max(remaining // len(open_labels), 1)
        for label in open_labels:
            take = min(share, int(counts[label] - quota[label]), remaining)
            quota[label] += take
            remaining -= take
            if remaining == 0:
                break
    return quota


def bottom_k_per_label(priority: torch.Tensor, labels: torch.Tensor, quota: torch.Tensor) -> torch.Tensor:
    """Indices of the ``quota[label]`` lowest-priority tokens of each label, in priority order.

    Ties are broken by position, which is deterministic because priorities come from token ids.
    """
    if priority.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=priority.device)
    order = torch.argsort(priority, stable=True)
    sorted_labels = labels[order]
    # rank of each token within its label, in priority order
    one_hot = torch.nn.functional.one_hot(sorted_labels, num_classes=len(quota))
    rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1
    keep = rank < quota.to(priority.device)[sorted_labels]
    return order[keep]


Columns = dict[str, torch.Tensor] | Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""Per-token columns of shape (n, ...), or a function giving them for the kept indices only."""


class TokenSampler:
    """Streams validation tokens in and keeps a bounded, deterministic candidate set.

    Call :meth:`update` once per batch with the valid tokens (on device), then
    :meth:`candidates` at the end of the epoch. Every column passed to
    :meth:`update` is kept row-aligned with the token ids.

    Args:
        max_tokens: tokens wanted in the final selection.
        num_labels: number of gold labels.
        seed: the hash seed; the same seed selects the same tokens.
    """

    def __init__(self, max_tokens: int, num_labels: int, seed: int) -> None:
        self.max_tokens = max_tokens
        self.num_labels = num_labels
        self.seed = seed
        self._counts: torch.Tensor | None = None  # per-label totals, on the tokens' device (no per-batch sync)
        self._chunks: list[dict[str, torch.Tensor]] = []
        self._rows = 0
        self._threshold = torch.full((num_labels,), 2**40, dtype=torch.int64)
        self._device_threshold: torch.Tensor | None = None  # ``_threshold`` on the tokens' device
        self._label_rows = np.zeros(num_labels, dtype=np.int64)

    @property
    def label_counts(self) -> np.ndarray:
        """Array of shape (num_labels,): the tokens counted per label so far."""
        if self._counts is None:
            return np.zeros(self.num_labels, dtype=np.int64)
        return self._counts.cpu().numpy().astype(np.int64)

    def count(self, labels: torch.Tensor) -> None:
        """Add a batch's gold labels to the per-label totals (done by :meth:`update` unless ``count=False``)."""
        if labels.numel():
            counts = torch.bincount(labels, minlength=self.num_labels)
            if self._counts is None:
                self._counts = counts
            else:
                self._counts += counts

    def _bar(self, device: torch.device) -> torch.Tensor:
        if self._device_threshold is None or self._device_threshold.device != device:
            self._device_threshold = self._threshold.to(device)
        return self._device_threshold

    def could_keep(self, priority: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Indices of the rows whose priority is below their label's current bar (no state changes).

        Lets a caller compute expensive columns (e.g. span means) only for rows that may be kept.
        """
        return (priority < self._bar(priority.device)[labels]).nonzero().squeeze(1)

    def update(
        self, token_id: torch.Tensor, labels: torch.Tensor, columns: Columns, count: bool = True,
        priority: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Offer one batch of valid tokens; copies only possible winners to the CPU.

        Args:
            token_id: array of shape (n,), stable token ids, on the model's device.
            labels: array of shape (n,), gold label ids in ``[0, num_labels)``.
            columns: extra per-token tensors of shape (n, ...), e.g. hidden vectors; or a
                function that returns them for given row indices (called once, with the kept
                rows only, so unkept rows are never gathered).
            count: add ``labels`` to the per-label totals (``False`` when :meth:`count` already did).
            priority: the tokens' priorities when already computed (:func:`token_priority`).

        Returns:
            The indices (into this batch's tokens) that were kept, or ``None`` if none.
        """
        if token_id.numel() == 0:
            return None
        if count:
            self.count(labels)
        if priority is None:
            priority = token_priority(token_id, self.seed)
        idx = self.could_keep(priority, labels)
        if idx.numel() == 0:
            return None
        ints = torch.stack([token_id, labels.long(), priority])[:, idx].cpu()  # one gather, one copy
        extra = columns(idx) if callable(columns) else {k: v[idx] for k, v in columns.items()}
        self._chunks.append({"token_id": ints[0], "label": ints[1], "priority": ints[2],
                             **{k: v.cpu() for k, v in extra.items()}})
        self._rows += idx.numel()
        self._label_rows += np.bincount(ints[1].numpy(), minlength=self.num_labels)
        if self._rows > 2 * self.max_tokens:  # amortised: a prune leaves about max_tokens + 2 * num_labels rows
            self._prune()
        return idx

    def quota_bound(self) -> int:
        """No label's final quota can exceed this, whatever tokens are still to come (see the module doc)."""
        counts = self.label_counts
        if counts.sum() <= self.max_tokens:
            return self.max_tokens
        return min(self.max_tokens, int(stratified_quotas(counts, self.max_tokens).max()) + 1)

    def _prune(self) -> None:
        cap = self.quota_bound()
        merged = self.candidates(cap)
        self._chunks = [merged] if len(merged["token_id"]) else []
        self._rows = len(merged["token_id"])
        self._label_rows = np.bincount(merged["label"].numpy(), minlength=self.num_labels) if self._rows else self._label_rows * 0
        for label in range(self.num_labels):
            mine = merged["priority"][merged["label"] == label]
            if len(mine) >= cap:
                self._threshold[label] = mine.max() + 1
        self._device_threshold = None

    def candidates(self, cap: int | None = None) -> dict[str, torch.Tensor]:
        """Per label, the ``cap`` lowest-priority tokens seen so far (CPU tensors); ``cap`` defaults to
        :meth:`quota_bound`, so nothing that could still be selected is dropped."""
        if not self._chunks:
            return {}
        if len(self._chunks) == 1:
            merged = self._chunks[0]
        else:
            merged = {k: torch.cat([c[k] for c in self._chunks]) for k in self._chunks[0]}
        limit = torch.full((self.num_labels,), self.quota_bound() if cap is None else cap, dtype=torch.int64)
        keep = bottom_k_per_label(merged["priority"], merged["label"], limit)
        return {k: v[keep] for k, v in merged.items()}


def select_final(columns: dict[str, torch.Tensor], label_counts: np.ndarray, max_tokens: int) -> dict[str, torch.Tensor]:
    """The final stratified selection from candidates, sorted by token id.

    Args:
        columns: candidate columns including ``priority`` and ``label``.
        label_counts: array of shape (n_labels,), tokens seen per label across all ranks.
        max_tokens: the total to keep.
    """
    if not columns or len(columns["token_id"]) == 0:
        return columns
    quota = torch.as_tensor(stratified_quotas(label_counts, max_tokens))
    keep = bottom_k_per_label(columns["priority"], columns["label"], quota)
    keep = keep[torch.argsort(columns["token_id"][keep])]
    return {k: v[keep] for k, v in columns.items()}

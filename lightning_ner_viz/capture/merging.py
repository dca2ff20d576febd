"""Small validation batches merged into one before their selection: fewer, larger tensor operations.

A batch's selection is a few dozen tensor operations (predictions, the full-set scores, the token
dynamics, the samplers, the entity spans), and on short sentences their fixed cost per call is most
of the work: 32 titles of 14 tokens cost about as much as 32 paragraphs. So batches wait, on the
model's device, until their captured tensors reach :data:`MERGE_BYTES` (or the epoch ends); then
the capture thread pads them to the longest sequence and selects them as one batch. The selection
is unchanged: token ids and priorities do not depend on how the tokens were batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lightning_ner_viz.capture.batch import IGNORE_INDEX, TokenBatch
from lightning_ner_viz.capture.sentences import UNKNOWN_WORD

MERGE_BYTES = 8 * 2**20
"""Captured bytes (every view) at which waiting batches are handed to the capture thread as one.

A batch at least this large goes at once, with the smaller ones waiting before it, so a waiting
merge holds less than this plus one batch; small batches (short sentences, narrow models) go
10-20 at a time.
"""


@dataclass
class PendingBatch:
    """One validation batch waiting for its selection: its tensors and where its rows sit in the set."""

    tokens: TokenBatch
    captured: dict[str, torch.Tensor]
    """View name to the hooked tensor of shape (batch, seq_len, dim) (``seq_len`` may exceed the batch's)."""
    offset: int
    """Rows of this loader that this rank saw earlier in the epoch (see :func:`~.batch.example_ids`)."""
    loader: int
    dataset_size: int | None

    @property
    def nbytes(self) -> int:
        """Bytes of the captured tensors."""
        return sum(t.numel() * t.element_size() for t in self.captured.values())


class BatchMerger:
    """Holds the batches waiting to be merged; :meth:`add` hands back a full group.

    Args:
        max_bytes: captured bytes at which the waiting batches go (see :data:`MERGE_BYTES`).
    """

    def __init__(self, max_bytes: int = MERGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._waiting: list[PendingBatch] = []
        self._bytes = 0

    def add(self, batch: PendingBatch) -> list[PendingBatch]:
        """Keep ``batch``; the waiting batches (this one included) once they reach ``max_bytes``, else ``[]``."""
        self._waiting.append(batch)
        self._bytes += batch.nbytes
        return self.take() if self._bytes >= self.max_bytes else []

    def take(self) -> list[PendingBatch]:
        """Every waiting batch, in order; none wait afterwards."""
        waiting, self._waiting, self._bytes = self._waiting, [], 0
        return waiting


def _stack(tensors: list[torch.Tensor], length: int, value: int | float) -> torch.Tensor:
    """Tensors of shape (batch_i, seq_len_i, ...) as one of shape (sum of batch_i, length, ...), ``value`` past
    each one's sequence: one allocation and one copy per tensor."""
    first = tensors[0]
    out = first.new_full((sum(t.shape[0] for t in tensors), length, *first.shape[2:]), value)
    row = 0
    for t in tensors:
        out[row : row + t.shape[0], : t.shape[1]] = t
        row += t.shape[0]
    return out


def merge_batches(batches: list[TokenBatch], outputs: list[dict[str, torch.Tensor]],
                  example_ids: list[torch.Tensor]) -> tuple[TokenBatch, dict[str, torch.Tensor], torch.Tensor]:
    """One batch of every row of ``batches``, padded to the longest sequence (padding is never a valid token).

    Args:
        batches: the batches, each with tensors of shape (batch, seq_len).
        outputs: per batch, view name to its tensor of shape (batch, seq_len, dim) (cut to the batch's seq_len).
        example_ids: per batch, the rows' indices in the validation set (shape (batch,)).

    Returns:
        The merged batch, its outputs and its example ids; a single batch comes back as it is.
    """
    if len(batches) == 1:
        return batches[0], outputs[0], example_ids[0]
    longest = max(b.input_ids.shape[1] for b in batches)
    word_ids = [b.word_ids if b.word_ids is not None else torch.full_like(b.input_ids, UNKNOWN_WORD) for b in batches]
    merged = TokenBatch(
        input_ids=_stack([b.input_ids for b in batches], longest, 0),
        attention_mask=_stack([b.attention_mask for b in batches], longest, 0),
        labels=_stack([b.labels for b in batches], longest, IGNORE_INDEX),
        word_ids=None if all(b.word_ids is None for b in batches) else _stack(word_ids, longest, -1),
    )
    views = {view: _stack([o[view] for o in outputs], longest, 0.0) for view in outputs[0]}
    return merged, views, torch.cat(example_ids)

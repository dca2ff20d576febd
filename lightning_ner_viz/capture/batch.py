"""Read the tensors the callback needs out of a validation batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

BatchAdapter = Callable[[Any], Mapping[str, Any]]
"""Maps a user's batch to a mapping with ``input_ids``, ``labels`` and optionally
``attention_mask``, ``word_ids`` (-1 for special tokens) and ``example_ids`` (one per row)."""

IGNORE_INDEX = -100


@dataclass
class TokenBatch:
    """The tensors of one batch, all of shape (batch, seq_len) unless noted."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    word_ids: torch.Tensor | None = None
    example_ids: torch.Tensor | None = None
    """Shape (batch,): the examples' indices in the validation set, when the batch knows them."""

    @property
    def valid(self) -> torch.Tensor:
        """Boolean mask of tokens to consider: not padding and not ignored (-100)."""
        return self.attention_mask.bool() & (self.labels != IGNORE_INDEX)


_HELP = (
    "By default the callback reads `input_ids`, `attention_mask` and `labels` (-100 = ignore) "
    "from a dict batch. For any other batch format pass "
    "`EmbeddingDriftCallback(batch_adapter=fn)`, where `fn(batch)` returns a dict with those keys, "
    "e.g. `batch_adapter=lambda b: {'input_ids': b[0], 'attention_mask': b[1], 'labels': b[2]}`."
)


def adapt_batch(batch: Any, batch_adapter: BatchAdapter | None = None) -> TokenBatch:
    """Build a :class:`TokenBatch` from a user's batch.

    Raises:
        ValueError: when the batch lacks ``input_ids`` or ``labels``, or shapes disagree.
    """
    mapping = batch_adapter(batch) if batch_adapter is not None else batch
    if not isinstance(mapping, Mapping) and hasattr(mapping, "keys") and hasattr(mapping, "__getitem__"):
        mapping = {k: mapping[k] for k in mapping.keys()}  # e.g. transformers.BatchEncoding
    if not isinstance(mapping, Mapping):
        raise ValueError(f"The validation batch is a {type(mapping).__name__}, not a dict. {_HELP}")
    missing = [k for k in ("input_ids", "labels") if k not in mapping]
    if missing:
        raise ValueError(
            f"The validation batch has no {missing} (keys: {sorted(map(str, mapping))}). The callback "
            f"needs gold labels to colour and sample tokens. {_HELP}"
        )
    input_ids = torch.as_tensor(mapping["input_ids"])
    labels = torch.as_tensor(mapping["labels"], device=input_ids.device)
    mask = mapping.get("attention_mask")
    attention_mask = torch.ones_like(input_ids) if mask is None else torch.as_tensor(mask, device=input_ids.device)
    word_ids = mapping.get("word_ids")
    example_ids = mapping.get("example_ids")
    result = TokenBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        word_ids=None if word_ids is None else torch.as_tensor(word_ids, device=input_ids.device),
        example_ids=None if example_ids is None else torch.as_tensor(example_ids, device=input_ids.device),
    )
    shapes = {"input_ids": input_ids.shape, "attention_mask": attention_mask.shape, "labels": labels.shape}
    if result.word_ids is not None:
        shapes["word_ids"] = result.word_ids.shape
    if input_ids.dim() != 2 or len(set(shapes.values())) != 1:
        raise ValueError(f"Batch tensors must all have shape (batch, seq_len); got {shapes}. {_HELP}")
    return result


def example_ids(batch: TokenBatch, offset: int, world_size: int, rank: int, dataset_size: int | None) -> torch.Tensor:
    """Each row's index in the validation set, shape (batch,); -1 for a row to skip.

    The batch's own ``example_ids`` when it has them (under DDP, the rows the sampler added as padding, past
    ``dataset_size``, still get -1: they repeat real examples). Otherwise the rows are numbered from
    ``offset`` (rows this rank saw earlier in the epoch), as a ``DistributedSampler`` without
    shuffling deals them: rank ``r`` gets the examples ``r, r + W, r + 2W, ...``. The padding
    such a sampler adds to even out the ranks (indices past ``dataset_size``) is skipped.
    """
    local = torch.arange(batch.input_ids.shape[0], device=batch.input_ids.device) + offset
    ids = local * world_size + rank
    padding = ids >= dataset_size if dataset_size is not None and world_size > 1 else torch.zeros_like(ids).bool()
    if batch.example_ids is not None:
        ids = batch.example_ids.to(ids.device).long()
    return torch.where(padding, -1, ids)

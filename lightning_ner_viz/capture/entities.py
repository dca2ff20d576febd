"""The ``entities`` view: one vector per gold entity span, the mean of its subwords' hidden vectors.

"простоквашино" may be three subwords; this view shows it as one point, coloured by
its entity type (BIO decoding of the gold labels).
"""

from __future__ import annotations

import torch

from lightning_ner_viz.labels import EntityTypes


def span_begins(labels: torch.Tensor, valid: torch.Tensor, type_of: torch.Tensor,
                begins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's entity type and whether a span begins there, both of shape (batch, seq_len).

    A span starts at a ``B-`` label or where the entity type changes; tokens that are
    ignored (-100), invalid or padding have type 0 and end it. ``type_of`` and ``begins``
    are :class:`EntityTypes`' tables on the labels' device. A span never crosses a row, and
    its tokens are consecutive, so it is fully described by its first token and its length.
    """
    safe = labels.clamp(min=0)
    kind = torch.where(valid, type_of[safe], 0)
    previous = torch.nn.functional.pad(kind[:, :-1], (1, 0))
    return kind, (kind > 0) & (begins[safe] | (kind != previous))


def span_members(kind: torch.Tensor, begin: torch.Tensor, chosen: torch.Tensor | None = None,
                 n_spans: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens of some spans: flat token indices (into ``kind.flatten()``) and their span's index.

    Spans are numbered in row-major order of their first tokens. With ``chosen`` (span
    indices, increasing, out of ``n_spans``), only those spans' tokens are returned and a
    token's span index is its position in ``chosen``.
    """
    span_of = begin.flatten().cumsum(0) - 1
    if chosen is not None and not len(chosen):
        return span_of[:0], span_of[:0]
    if chosen is not None:
        assert n_spans is not None
        compact = torch.full((n_spans,), -1, dtype=torch.long, device=kind.device)
        compact[chosen] = torch.arange(len(chosen), device=kind.device)
        span_of = compact[span_of.clamp(min=0)]
        tokens = ((kind.flatten() > 0) & (span_of >= 0)).nonzero().squeeze(1)
    else:
        tokens = (kind.flatten() > 0).nonzero().squeeze(1)
    return tokens, span_of[tokens]


def entity_spans(labels: torch.Tensor, valid: torch.Tensor, types: EntityTypes) -> dict[str, torch.Tensor]:
    """Gold entity spans of a batch, found on its device without Python loops.

    A span starts at a ``B-`` label or where the entity type changes; tokens that are
    ignored (-100) or padding end it.

    Args:
        labels: array of shape (batch, seq_len), gold label ids (-100 = ignore).
        valid: boolean array of shape (batch, seq_len), tokens to consider.
        types: the label-to-type map.

    Returns:
        ``row``, ``start``, ``end`` (inclusive), ``type`` per span (shape (n_spans,)) and
        ``span_of`` (shape (batch, seq_len), the span index of each token or -1).
    """
    device = labels.device
    kind, begin = span_begins(labels, valid, types.type_of.to(device), types.begins.to(device))
    row, start = begin.nonzero(as_tuple=True)
    tokens, span = span_members(kind, begin)
    span_of = torch.full((kind.numel(),), -1, dtype=torch.long, device=device)
    span_of[tokens] = span
    end = start + torch.bincount(span, minlength=len(row)) - 1
    return {"row": row, "start": start, "end": end, "type": kind[row, start], "span_of": span_of.view_as(kind)}


def mean_vectors(hidden: torch.Tensor, span_of: torch.Tensor, n_spans: int) -> torch.Tensor:
    """The mean hidden vector of each span: array of shape (n_spans, dim)."""
    inside = span_of >= 0
    return span_means(hidden[inside], span_of[inside], n_spans)


def span_means(vectors: torch.Tensor, span: torch.Tensor, n_spans: int) -> torch.Tensor:
    """Mean of ``vectors`` (shape (n, dim)) per span index ``span`` (shape (n,)): shape (n_spans, dim)."""
    sums = torch.zeros(n_spans, vectors.shape[-1], device=vectors.device, dtype=torch.float32)
    sums.index_add_(0, span, vectors.float())
    counts = torch.bincount(span, minlength=n_spans).clamp(min=1)
    return sums / counts[:, None]

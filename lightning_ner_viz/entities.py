"""The ``entities`` view: one vector per gold entity span, the mean of its subwords' hidden vectors.

"простоквашино" may be three subwords; this view shows it as one point, coloured by
its entity type (BIO decoding of the gold labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lightning_ner_viz.sinks.colors import entity_type
from lightning_ner_viz.snapshot import POSITION_BITS, Snapshot
from lightning_ner_viz.text import join_word

_BEGIN_PREFIXES = ("B-", "S-", "U-")


@dataclass
class EntityTypes:
    """Maps BIO label ids to entity types.

    Attributes:
        names: ``["O", type_1, ...]``: the entity view's label names.
        type_of: array of shape (n_labels,): the type index of each label (0 for ``O``).
        begins: array of shape (n_labels,): whether the label starts a span (``B-``/``S-``).
    """

    names: list[str]
    type_of: torch.Tensor
    begins: torch.Tensor

    @classmethod
    def from_label_names(cls, label_names: list[str]) -> EntityTypes:
        """Entity types in order of first appearance among the labels."""
        types = list(dict.fromkeys(entity_type(n) for n in label_names if n != "O"))
        type_of = torch.tensor([0 if n == "O" else 1 + types.index(entity_type(n)) for n in label_names])
        begins = torch.tensor([n.startswith(_BEGIN_PREFIXES) for n in label_names])
        return cls(["O", *types], type_of, begins)


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
    safe = labels.clamp(min=0)
    kind = torch.where(valid, types.type_of.to(device)[safe], 0)
    previous = torch.nn.functional.pad(kind[:, :-1], (1, 0))
    begin = (kind > 0) & (types.begins.to(device)[safe] | (kind != previous))
    span_of = torch.where(kind > 0, begin.flatten().cumsum(0).view_as(begin) - 1, -1)
    row, start = begin.nonzero(as_tuple=True)
    positions = torch.arange(labels.shape[1], device=device).expand_as(labels)
    inside = span_of >= 0
    end = torch.full((len(row),), -1, dtype=torch.long, device=device)
    end = end.scatter_reduce(0, span_of[inside], positions[inside], reduce="amax")
    return {"row": row, "start": start, "end": end, "type": kind[row, start], "span_of": span_of}


def mean_vectors(hidden: torch.Tensor, span_of: torch.Tensor, n_spans: int) -> torch.Tensor:
    """The mean hidden vector of each span: array of shape (n_spans, dim)."""
    inside = span_of >= 0
    sums = torch.zeros(n_spans, hidden.shape[-1], device=hidden.device, dtype=torch.float32)
    sums.index_add_(0, span_of[inside], hidden[inside].float())
    counts = torch.bincount(span_of[inside], minlength=n_spans).clamp(min=1)
    return sums / counts[:, None]


def entity_snapshot(columns: dict[str, torch.Tensor], tokens_of: dict[int, tuple[list[str], list[int]]],
                    types: EntityTypes, sentences: dict[int, str], epoch: int, step: int) -> Snapshot:
    """A Snapshot whose rows are entities: text = the span's words, class = the entity type.

    ``tokens_of`` maps a sentence id to its tokens and each token's word index.
    """
    token_id = columns["token_id"].numpy()
    sentence_id, start = token_id >> POSITION_BITS, token_id & ((1 << POSITION_BITS) - 1)
    texts = []
    for sid, a, b in zip(sentence_id.tolist(), start.tolist(), columns["end"].tolist()):
        tokens, words = tokens_of.get(sid, ([], []))
        by_word: dict[int, list[str]] = {}
        for token, word in zip(tokens[a : b + 1], words[a : b + 1]):
            by_word.setdefault(word, []).append(token)
        texts.append(" ".join(join_word(p) for p in by_word.values()) or "?")
    return Snapshot(
        epoch=epoch, step=step, token_id=token_id, sentence_id=sentence_id, position=start, token=texts, word=texts,
        gold=columns["label"].numpy(), pred=columns["pred"].numpy(), views={"entities": columns["entities"].numpy()},
        label_names=types.names, sentences={int(s): sentences.get(int(s), "") for s in np.unique(sentence_id)},
    )


def cls_snapshot(columns: dict[str, torch.Tensor], types: EntityTypes, sentences: dict[int, str], epoch: int,
                 step: int) -> Snapshot:
    """A Snapshot whose rows are sentences: their first ([CLS]) token's vector, class = main entity type."""
    token_id = columns["token_id"].numpy()
    sentence_id = token_id >> POSITION_BITS
    texts = [sentences.get(int(s), "?") for s in sentence_id]
    return Snapshot(
        epoch=epoch, step=step, token_id=token_id, sentence_id=sentence_id, position=np.zeros_like(token_id),
        token=texts, word=texts, gold=columns["label"].numpy(), pred=columns["pred"].numpy(),
        views={"cls": columns["cls"].numpy()}, label_names=types.names,
        sentences={int(s): t for s, t in zip(sentence_id, texts)},
    )

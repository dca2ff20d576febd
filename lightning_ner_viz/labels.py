"""BIO label names: entity types and span starts, shared by the capture and the sinks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

OUTSIDE = "O"
"""The label of tokens outside every entity."""

_SCHEME_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")
_BEGIN_PREFIXES = ("B-", "S-", "U-")


def entity_type(label: str) -> str:
    """``B-PER`` and ``I-PER`` -> ``PER``; other labels unchanged."""
    return label[2:] if label[:2] in _SCHEME_PREFIXES else label


def begins_span(label: str) -> bool:
    """Whether ``label`` always starts a new span (``B-``, ``S-``, ``U-``)."""
    return label.startswith(_BEGIN_PREFIXES)


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
        types = list(dict.fromkeys(entity_type(n) for n in label_names if n != OUTSIDE))
        type_of = torch.tensor([0 if n == OUTSIDE else 1 + types.index(entity_type(n)) for n in label_names])
        begins = torch.tensor([begins_span(n) for n in label_names])
        return cls([OUTSIDE, *types], type_of, begins)

"""Entity-level F1 of BIO tag sequences, as seqeval computes it, in plain Python and numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lightning_ner_viz.analysis._checks import NAN
from lightning_ner_viz.labels import OUTSIDE

Chunk = tuple[str, int, int]
"""An entity span: ``(type, first, last)`` positions in the joined tag sequence."""


def entity_chunks(names: Sequence[str]) -> set[Chunk]:
    """Chunks ``(type, first, last)`` of a tag sequence, exactly as seqeval's ``get_entities``.

    A tag's first character is its scheme prefix (``B``, ``I``, ``E``, ``S`` or ``O``) and
    what follows its first ``-`` is its type, as seqeval reads them; an ``I-`` after
    another type or after ``O`` starts a chunk (conlleval).
    """
    chunks: set[Chunk] = set()
    prev_tag, prev_type, begin = OUTSIDE, "", 0
    for i, name in enumerate([*names, OUTSIDE]):
        tag, type_ = name[:1] or OUTSIDE, name[1:].split("-", 1)[-1] or "_"
        type_changed = prev_type != type_
        if prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO") or (prev_tag not in "O." and type_changed):
            chunks.add((prev_type, begin, i - 1))
        if tag in "BS" or (prev_tag in "ESO" and tag in "EI") or (tag not in "O." and type_changed):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_f1(sentence_tags: Mapping[int, tuple[np.ndarray, np.ndarray]], label_names: Sequence[str]) -> float:
    """Entity-level micro F1, as ``seqeval.metrics.f1_score`` in its default (conlleval) mode.

    Args:
        sentence_tags: sentence id to ``(gold, pred)`` label-id arrays of shape (n_labelled_tokens,).
        label_names: label id to BIO name (``B-BRAND``, ``I-BRAND``, ``O``).

    Returns:
        F1 in [0, 1], 0 when there is no entity at all (as seqeval); NaN without sentences or
        when a prediction is unknown (an id outside ``label_names``, such as -1).

    Raises:
        ValueError: when a sentence's gold and pred differ in length or gold is not a label id.
    """
    names = list(label_names)
    tags: tuple[list[str], list[str]] = ([], [])
    for sid, (gold, pred) in sentence_tags.items():
        gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
        if gold.shape != pred.shape or ((gold < 0) | (gold >= len(names))).any():
            raise ValueError(f"Sentence {sid}: gold and pred must be aligned ids into label_names.")
        if ((pred < 0) | (pred >= len(names))).any():
            return NAN
        for seq, ids in zip(tags, (gold, pred)):
            seq += [names[i] for i in ids] + [OUTSIDE]  # seqeval's separator between sentences
    if not sentence_tags:
        return NAN
    true, found = entity_chunks(tags[0]), entity_chunks(tags[1])
    total = len(true) + len(found)
    return 2.0 * len(true & found) / total if total else 0.0

"""Label noise for the demo: flip a share of the validation words' labels, and say exactly which tokens changed."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from lightning_ner_viz.demo.data import Example


def flip_labels(examples: list[Example], rate: float, label_names: list[str], seed: int = 0) -> list[Example]:
    """A copy of ``examples`` where each word's label is, with probability ``rate``, replaced by another label.

    The replacement is drawn uniformly from the other labels with the same seeded RNG, so the same
    words flip on every machine.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"The label-noise rate must be in [0, 1]; got {rate}.")
    rng = random.Random(seed)
    noisy = []
    for ex in examples:
        labels = [rng.choice([n for n in label_names if n != lab]) if rng.random() < rate else lab for lab in ex.labels]
        noisy.append(Example(list(ex.words), labels))
    return noisy


def flipped_tokens(clean: list[dict[str, list[int]]], noisy: list[dict[str, list[int]]]) -> list[tuple[int, int]]:
    """``(example index, token position)`` of every token whose encoded label differs (a word's subwords included)."""
    found = []
    for i, (a, b) in enumerate(zip(clean, noisy)):
        found += [(i, pos) for pos, (x, y) in enumerate(zip(a["labels"], b["labels"])) if x != y]
    return found


def write_flipped(path: Path, flipped: list[tuple[int, int]], clean: list[dict[str, Any]], noisy: list[dict[str, Any]],
                  label_names: list[str]) -> None:
    """``flipped_labels.csv``: ``sentence_id``, ``position``, ``clean`` and ``given`` label, one row per flipped token."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence_id", "position", "clean", "given"])
        for sid, pos in flipped:
            writer.writerow([sid, pos, label_names[clean[sid]["labels"][pos]], label_names[noisy[sid]["labels"][pos]]])

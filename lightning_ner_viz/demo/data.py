"""A bundled, license-clean NER dataset: generated grocery product titles.

Each title (like "простоквашино молоко 3.2% 930 мл") mixes a BRAND, a product TYPE,
a FLAVOR, a fat PERCENT and a VOLUME, in varying order with filler words. Everything is
generated from the word lists below with a seeded RNG, so the data is identical on every
machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENTITY_TYPES = ("BRAND", "TYPE", "FLAVOR", "PERCENT", "VOLUME")
LABEL_NAMES = ["O"] + [f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")]

_BRANDS = [
    "prostokvashino", "vkusnoteka", "domik v derevne", "savushkin", "valio", "danone", "activia",
    "agusha", "chudo", "ehrmann", "president", "galbani", "alpen gold", "milka", "oreo", "heinz",
    "barilla", "mistral", "uvelka", "makfa", "lipton", "greenfield", "ahmad tea", "nescafe", "jacobs",
    "rich", "dobry", "j7", "fruktovy sad", "moya semya", "borjomi", "evian", "bonaqua", "mr ricco",
]
_TYPES = [
    "milk", "kefir", "yogurt", "cottage cheese", "sour cream", "butter", "cheese", "ice cream", "juice",
    "nectar", "tea", "coffee", "mineral water", "pasta", "buckwheat", "rice", "ketchup", "mayonnaise",
    "chocolate", "cookies", "cereal", "drinking yogurt", "cream", "milkshake",
]
_FLAVORS = [
    "strawberry", "vanilla", "banana", "peach", "cherry", "apple", "orange", "multifruit", "blueberry",
    "chocolate flavour", "caramel", "lemon", "mango", "raspberry", "classic", "plain",
]
_FILLERS = [
    "fresh", "natural", "organic", "new", "pasteurized", "ultra", "lactose free", "pack", "bottle",
    "family size", "promo", "farm", "premium", "light", "x2", "for kids", "sugar free",
]
_UNITS = ["ml", "l", "g", "kg"]


@dataclass(frozen=True)
class Example:
    """One title: words and their BIO labels (same length)."""

    words: list[str]
    labels: list[str]


def _span(text: str, entity: str) -> list[tuple[str, str]]:
    words = text.split()
    return [(w, ("B-" if i == 0 else "I-") + entity) for i, w in enumerate(words)]


def _percent(rng: random.Random) -> str:
    return rng.choice(["0.5%", "1%", "1.5%", "2.5%", "3.2%", "3.5%", "4%", "5%", "9%", "15%", "20%", "72.5%", "82.5%"])


def _volume(rng: random.Random) -> str:
    unit = rng.choice(_UNITS)
    amount = rng.choice(["0.5", "1", "1.5", "2"]) if unit in ("l", "kg") else str(rng.choice([90, 100, 125, 200, 250, 300, 400, 450, 500, 750, 900, 930, 950]))
    return f"{amount} {unit}" if rng.random() < 0.7 else f"{amount}{unit}"


def generate_examples(n: int, seed: int = 0) -> list[Example]:
    """``n`` generated product titles, identical for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [_span(rng.choice(_BRANDS), "BRAND"), _span(rng.choice(_TYPES), "TYPE")]
        if rng.random() < 0.5:
            parts.append(_span(rng.choice(_FLAVORS), "FLAVOR"))
        if rng.random() < 0.7:
            parts.append(_span(_percent(rng), "PERCENT"))
        if rng.random() < 0.8:
            parts.append(_span(_volume(rng), "VOLUME"))
        for _ in range(rng.choice([0, 1, 1, 2])):
            parts.insert(rng.randrange(len(parts) + 1), [(w, "O") for w in rng.choice(_FILLERS).split()])
        if rng.random() < 0.3:
            parts[0], parts[1] = parts[1], parts[0]
        pairs = [p for part in parts for p in part]
        out.append(Example([w for w, _ in pairs], [lab for _, lab in pairs]))
    return out


def read_conll(path: str | Path) -> list[Example]:
    """Read a CoNLL file: one ``word ... label`` line per token, blank lines between sentences.

    The first column is the word and the last the BIO label; ``-DOCSTART-`` lines are skipped.

    Raises:
        ValueError: naming the line when a line has fewer than two columns, or the file has no sentence.
    """
    examples: list[Example] = []
    words: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                examples.append(Example(words, labels))
                words, labels = [], []
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}:{number}: expected 'word ... label', got {line!r}.")
        words.append(fields[0])
        labels.append(fields[-1])
    if words:
        examples.append(Example(words, labels))
    if not examples:
        raise ValueError(f"{path} holds no sentence; expected CoNLL lines 'word ... label'.")
    return examples


def label_names_of(examples: list[Example]) -> list[str]:
    """Sorted label names with ``O`` first."""
    names = sorted({lab for ex in examples for lab in ex.labels} - {"O"}, key=lambda n: (n[2:], n[:2]))
    return ["O", *names]


def iter_text(examples: list[Example]) -> Iterator[str]:
    """Each example as one space-joined line (for training a tokenizer)."""
    for ex in examples:
        yield " ".join(ex.words)

"""A LightningDataModule over word-level NER examples, tokenized with word-aligned labels."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from lightning_ner_viz.capture.batch import IGNORE_INDEX
from lightning_ner_viz.demo.data import Example


def encode(examples: list[Example], tokenizer: Any, label_names: list[str], max_length: int = 64) -> list[dict[str, list[int]]]:
    """Tokenize words and align labels to subwords.

    The first subword of a word takes the word's label; later subwords take the
    ``I-`` label of the same entity (``O`` stays ``O``); special tokens get -100.
    """
    index = {name: i for i, name in enumerate(label_names)}
    encoded = []
    for ex in examples:
        enc = tokenizer(ex.words, is_split_into_words=True, truncation=True, max_length=max_length)
        labels, word_ids, previous = [], [], None
        for word in enc.word_ids():
            if word is None:
                labels.append(IGNORE_INDEX)
            elif word != previous:
                labels.append(index[ex.labels[word]])
            else:
                name = ex.labels[word]
                labels.append(index.get("I-" + name[2:], index[name]) if name != "O" else index["O"])
            word_ids.append(-1 if word is None else word)
            previous = word
        encoded.append({"input_ids": enc["input_ids"], "labels": labels, "word_ids": word_ids, "example_id": len(encoded)})
    return encoded


def collate(rows: list[dict[str, list[int]]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of encoded rows into a dict batch (``attention_mask`` included, and ``example_ids`` when every
    row has an ``example_id``)."""
    longest = max(len(r["input_ids"]) for r in rows)

    def pad(key: str, value: int) -> torch.Tensor:
        return torch.tensor([r[key] + [value] * (longest - len(r[key])) for r in rows])

    ids = pad("input_ids", pad_id)
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (longest - len(r["input_ids"])) for r in rows])
    batch = {"input_ids": ids, "attention_mask": mask, "labels": pad("labels", IGNORE_INDEX), "word_ids": pad("word_ids", -1)}
    if all("example_id" in r for r in rows):  # each row's index in its set: which example a shuffled row is
        batch["example_ids"] = torch.tensor([r["example_id"] for r in rows])
    return batch


class NerDataModule(pl.LightningDataModule):
    """Train/validation loaders over examples; exposes ``tokenizer`` and ``label_names``.

    Args:
        train: training examples.
        val: validation examples.
        tokenizer: a fast Hugging Face tokenizer.
        label_names: label id to name.
        batch_size: batch size for both loaders.
    """

    def __init__(self, train: list[Example], val: list[Example], tokenizer: Any, label_names: list[str], batch_size: int = 32) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.label_names = label_names
        self.batch_size = batch_size
        self.train_rows = encode(train, tokenizer, label_names)
        self.val_rows = encode(val, tokenizer, label_names)

    def _loader(self, rows: list[dict[str, list[int]]], shuffle: bool) -> DataLoader:
        pad_id = self.tokenizer.pad_token_id or 0
        return DataLoader(rows, batch_size=self.batch_size, shuffle=shuffle, collate_fn=lambda b: collate(b, pad_id))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_rows, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_rows, shuffle=False)

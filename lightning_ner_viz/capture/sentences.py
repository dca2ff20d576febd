"""The sentences of the selected rows: input ids, word ids, gold and predicted labels.

Hover text, words and entity-level F1 need whole sentences, not only the sampled
tokens. Each batch keeps the rows that had a kept token, entity or sentence; at the
epoch's end the rows of the finally selected ones are padded into one int table that
crosses ranks in a single gather.
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_ner_viz.capture.batch import TokenBatch
from lightning_ner_viz.snapshot import sentence_of

FIELDS = ("input_ids", "word_ids", "labels", "pred")
"""The per-token fields kept for each sentence, in table order."""

PAST_END = -999
"""Fills a table row past its sentence's end."""

UNKNOWN_WORD = -2
"""The word id of every token when the batch gave no ``word_ids``."""

Sentence = dict[str, np.ndarray]
"""One sentence: each of :data:`FIELDS` as an array of its unpadded length."""


class SentenceBuffer:
    """The stored sentences of one rank's epoch, in batch order (views of each batch's one CPU copy)."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # sentence ids, fields, lengths

    def remember(self, rows: list[torch.Tensor], batch: TokenBatch, example_ids: torch.Tensor,
                 pred: torch.Tensor) -> None:
        """Keep these batch rows' sentences (one copy to the CPU)."""
        marked = torch.zeros(batch.labels.shape[0], dtype=torch.bool, device=batch.labels.device)
        for r in rows:
            marked[r] = True
        index = marked.nonzero().squeeze(1)
        word_ids = batch.word_ids if batch.word_ids is not None else torch.full_like(batch.input_ids, UNKNOWN_WORD)
        fields = torch.stack([t.long() for t in (batch.input_ids, word_ids, batch.labels, pred)], 1)[index]
        self._chunks.append((example_ids[index].cpu().numpy(), fields.cpu().numpy(),
                             batch.attention_mask[index].sum(1).cpu().numpy()))

    def pick(self, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored rows of the sentences of ``token_ids`` (a sentence's first stored copy) and their lengths."""
        chunks = self._chunks
        sids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        unique, first = np.unique(sids, return_index=True)
        pick = first[np.isin(unique, sentence_of(token_ids))]
        lengths = np.concatenate([c[2] for c in chunks])[pick] if chunks else np.zeros(0, dtype=np.int64)
        return pick, lengths

    def table(self, pick: np.ndarray, longest: int) -> np.ndarray:
        """The picked rows as one padded int table, sorted by sentence id.

        Row layout: sentence id, then one block of ``longest`` columns per field of
        :data:`FIELDS`, :data:`PAST_END` past the sentence's end.
        """
        chunks = self._chunks
        sids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        blocks = np.full((len(pick), len(FIELDS), longest), PAST_END, dtype=np.int64)
        offset = 0
        for _, fields, chunk_lengths in chunks:  # copy each batch's picked rows, cut at their lengths
            rows = np.flatnonzero((pick >= offset) & (pick < offset + len(fields)))
            if len(rows):
                local = pick[rows] - offset
                width = min(fields.shape[2], longest)
                inside = np.arange(width) < chunk_lengths[local][:, None]
                blocks[rows, :, :width] = np.where(inside[:, None, :], fields[local, :, :width], PAST_END)
            offset += len(fields)
        return np.concatenate([sids[pick][:, None], blocks.reshape(len(pick), len(FIELDS) * longest)], 1)


def sentences_from_table(table: np.ndarray) -> dict[int, Sentence]:
    """Sentence id to its unpadded fields, from a (gathered) table of :meth:`SentenceBuffer.table`."""
    longest = (table.shape[1] - 1) // len(FIELDS)
    sentences: dict[int, Sentence] = {}
    for row in table:
        blocks = {name: row[1 + f * longest : 1 + (f + 1) * longest] for f, name in enumerate(FIELDS)}
        length = int((blocks["input_ids"] != PAST_END).sum())
        sentences[int(row[0])] = {k: v[:length] for k, v in blocks.items()}
    return sentences


def known_word_ids(sentence: Sentence) -> np.ndarray | None:
    """The sentence's word ids, or ``None`` when the batch gave none."""
    word_ids = sentence["word_ids"]
    return None if (word_ids == UNKNOWN_WORD).all() else word_ids

"""Train a WordPiece tokenizer locally (no downloads)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightning_ner_viz._imports import require


def train_wordpiece(texts: Iterable[str], vocab_size: int = 600) -> Any:
    """A ``PreTrainedTokenizerFast`` with a WordPiece vocabulary trained on ``texts``.

    A small vocabulary splits rare words into several subwords, as real
    tokenizers do with brand names.
    """
    require("transformers")
    from tokenizers import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=1, show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=wordpiece._tokenizer,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )

"""Build a WordPiece tokenizer locally (no downloads), the same one every run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from lightning_ner_viz._imports import require

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocabulary(words: Counter[str], vocab_size: int) -> list[str]:
    """A WordPiece vocabulary: special tokens, every character, frequent words, then frequent pieces.

    Ties are broken by the text, so the same words always give the same ids (the
    Hugging Face trainer breaks frequency ties differently from run to run). Words that
    miss the cut split into a prefix and ``##`` pieces, as real tokenizers split brand names.

    Args:
        words: pre-tokenized, normalised words and their counts.
        vocab_size: the vocabulary's size (at least the specials and characters).
    """
    chars = sorted({c for w in words for c in w})
    vocab = _SPECIALS + chars + ["##" + c for c in chars]
    budget = max(0, vocab_size - len(vocab))
    whole = sorted((w for w, n in words.items() if n >= 3 and len(w) > 1), key=lambda w: (-words[w], w))
    vocab += whole[: budget // 2]
    pieces: Counter[str] = Counter()
    for word, n in words.items():
        for size in (2, 3):
            if len(word) > size:
                pieces[word[:size]] += n
                pieces.update({"##" + word[i : i + size]: n for i in range(1, len(word) - size + 1)})
    known = set(vocab)
    ranked = sorted((p for p in pieces if p not in known), key=lambda p: (-pieces[p], p))
    return vocab + ranked[: max(0, vocab_size - len(vocab))]


def train_wordpiece(texts: Iterable[str], vocab_size: int = 600) -> Any:
    """A ``PreTrainedTokenizerFast`` with a lower-cased WordPiece vocabulary built from ``texts``."""
    require("transformers")
    from tokenizers import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast

    splitter = BertWordPieceTokenizer(vocab={t: i for i, t in enumerate(_SPECIALS)}, lowercase=True)
    words: Counter[str] = Counter()
    for text in texts:
        normal = splitter.normalizer.normalize_str(text)
        words.update(w for w, _ in splitter.pre_tokenizer.pre_tokenize_str(normal))
    vocab = wordpiece_vocabulary(words, vocab_size)
    wordpiece = BertWordPieceTokenizer(vocab={t: i for i, t in enumerate(vocab)}, lowercase=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=wordpiece._tokenizer,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )

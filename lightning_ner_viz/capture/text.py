"""Turn token ids back into token, word and sentence text for hover labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz.analysis.word_pieces import join_word
from lightning_ner_viz.capture.sentences import Sentence, known_word_ids

_SPECIAL_PREFIXES = ("[", "<")


def word_index(tokens: list[str], word_ids: np.ndarray | None = None) -> list[int]:
    """Which word each token belongs to.

    Uses ``word_ids`` when the batch provided them (-1 marks special tokens);
    otherwise it reads the tokenizer's convention from the tokens themselves:
    WordPiece continues a word with ``##``, SentencePiece starts one with ``▁``
    and byte-level BPE with ``Ġ``.
    """
    if word_ids is not None and (word_ids >= 0).any():
        return [int(w) if w >= 0 else -1 - i for i, w in enumerate(word_ids)]
    starts_with_marker = next((m for m in ("▁", "Ġ") if any(t.startswith(m) for t in tokens)), None)
    index, current = [], -1
    for i, tok in enumerate(tokens):
        special = tok.startswith(_SPECIAL_PREFIXES) and tok.endswith(("]", ">"))
        if starts_with_marker is not None:
            new_word = special or tok.startswith(starts_with_marker) or i == 0
        else:
            new_word = special or not tok.startswith("##")
        current = current + 1 if new_word else current
        index.append(current)
    return index


class TokenTexts:
    """Token, word and sentence text for sampled tokens.

    Args:
        tokenizer: a Hugging Face tokenizer (anything with ``convert_ids_to_tokens``),
            or ``None`` to show token ids.
    """

    CACHE_SENTENCES = 50_000
    """Sentences whose decoded text is kept: each epoch samples the same tokens, so it decodes the same sentences."""

    def __init__(self, tokenizer: Any | None) -> None:
        self.tokenizer = tokenizer
        self._decoded: dict[tuple[bytes, bytes], tuple[list[str], list[int], str]] = {}
        self._vocab: dict[int, str] = {}  # token id to its string, filled as ids are first seen

    def tokens_and_words(self, sentence: Sentence) -> tuple[list[str], list[int]]:
        """A stored sentence's token strings and each token's word index."""
        tokens, index, _ = self._decode(sentence["input_ids"], known_word_ids(sentence))
        return tokens, index

    def sentence_texts(self, sentences: dict[int, tuple[np.ndarray, np.ndarray | None]]) -> dict[int, str]:
        """Sentence id to readable text."""
        return self.describe(sentences, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))[2]

    def _decode(self, ids: np.ndarray, wids: np.ndarray | None) -> tuple[list[str], list[int], str]:
        """One sentence's tokens, their word indices and its text, decoded once for the same ids and word ids."""
        key = (np.asarray(ids).tobytes(), b"" if wids is None else np.asarray(wids).tobytes())
        found = self._decoded.get(key)
        if found is None:
            toks = self._tokens(ids)
            index = word_index(toks, wids)
            by_word: dict[int, list[str]] = {}
            for tok, w in zip(toks, index):
                by_word.setdefault(w, []).append(tok)
            text = " ".join(join_word(p) for p in by_word.values() if not (len(p) == 1 and _is_special(p[0])))
            if len(self._decoded) >= self.CACHE_SENTENCES:
                self._decoded.clear()
            found = self._decoded[key] = (toks, index, text)
        return found

    def _tokens(self, ids: np.ndarray) -> list[str]:
        ids = np.asarray(ids).tolist()
        vocab = self._vocab
        missing = [i for i in set(ids) if i not in vocab]
        if missing:  # one tokenizer call for the ids not seen before (a vocabulary is bounded)
            found = (self.tokenizer.convert_ids_to_tokens(missing) if self.tokenizer is not None
                     else [f"[{i}]" for i in missing])
            vocab.update(zip(missing, map(str, found)))
        return [vocab[i] for i in ids]

    def describe(
        self, sentences: dict[int, tuple[np.ndarray, np.ndarray | None]], sentence_id: np.ndarray, position: np.ndarray
    ) -> tuple[list[str], list[str], dict[int, str]]:
        """Token text, word text and sentence text.

        Args:
            sentences: sentence id to ``(input_ids, word_ids or None)`` of its unpadded tokens.
            sentence_id: array of shape (n_tokens,).
            position: array of shape (n_tokens,).

        Returns:
            ``(tokens, words, sentence_text)``, the first two one entry per token.
        """
        pieces: dict[int, list[str]] = {}
        words_of: dict[int, list[int]] = {}
        sentence_text: dict[int, str] = {}
        for sid, (ids, wids) in sentences.items():
            pieces[sid], words_of[sid], sentence_text[sid] = self._decode(ids, wids)
        tokens, words = [], []
        for sid, pos in zip(sentence_id.tolist(), position.tolist()):
            toks, index = pieces.get(sid, []), words_of.get(sid, [])
            if pos >= len(toks):
                tokens.append("?")
                words.append("?")
                continue
            tokens.append(toks[pos])
            words.append(join_word([t for t, w in zip(toks, index) if w == index[pos]]))
        return tokens, words, sentence_text


def _is_special(token: str) -> bool:
    return token.startswith(_SPECIAL_PREFIXES) and token.endswith(("]", ">"))

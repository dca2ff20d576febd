"""Subword pieces back into a word: one rule for the hover text, the label issues and the ``issues`` command.

Imports nothing (no numpy, no torch), so the command line can use it without slowing ``--help``.
"""

from __future__ import annotations


def join_word(pieces: list[str]) -> str:
    """Join a word's subword pieces into its text (WordPiece ``##``, SentencePiece ``▁``, byte-level BPE ``Ġ``)."""
    text = "".join(p[2:] if p.startswith("##") else p for p in pieces)
    return text.replace("▁", "").replace("Ġ", "")

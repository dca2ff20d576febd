"""The tiny tagger's data and config, for the helpers that fit in a subprocess (full disk, shutdown)."""

from __future__ import annotations

import os
from typing import Any


def tiny_data_and_config() -> tuple[Any, Any]:
    """A datamodule of 400 generated titles (320 train, 80 validation, batches of 16, a 400-word WordPiece
    vocabulary) and a 2-layer, 32-wide ``BertConfig`` for ``outside_model.UserCrfTagger``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import BertConfig

    from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, iter_text
    from lightning_ner_viz.demo.datamodule import NerDataModule
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    examples = generate_examples(400, seed=1)
    tokenizer = train_wordpiece(iter_text(examples), vocab_size=400)
    data = NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    return data, config

"""Shared fixtures: an isolated environment, tiny data, a locally trained tokenizer, tiny BERT models."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `examples` is importable

_HOME = Path(tempfile.mkdtemp(prefix="ner-viz-test-home-"))
for _var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "WANDB_DIR", "WANDB_CACHE_DIR",
             "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "MPLCONFIGDIR"):
    os.environ[_var] = str(_HOME / _var.lower())
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def examples():
    """400 generated product titles (deterministic)."""
    from lightning_ner_viz.demo.data import generate_examples

    return generate_examples(400, seed=1)


@pytest.fixture(scope="session")
def tokenizer(examples):
    """A WordPiece tokenizer trained locally on the examples."""
    from lightning_ner_viz.demo.data import iter_text
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    return train_wordpiece(iter_text(examples), vocab_size=400)


@pytest.fixture()
def datamodule(examples, tokenizer):
    """Train on 320 titles, validate on 80, batch size 16."""
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.demo.datamodule import NerDataModule

    return NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)


@pytest.fixture()
def bert_config(tokenizer):
    """A tiny BertConfig (hidden 32, 2 layers)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)


def trainer_kwargs(tmp_path: Path, **overrides):
    """Quiet, CPU-only Trainer arguments for tests."""
    kwargs = dict(default_root_dir=str(tmp_path), max_epochs=3, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                  num_sanity_val_steps=0)
    kwargs.update(overrides)
    return kwargs

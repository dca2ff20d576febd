"""The demo's model: a LightningModule around ``AutoModelForTokenClassification``."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from lightning_ner_viz._imports import require


def tiny_bert_config(vocab_size: int, label_names: list[str], hidden_size: int = 64, layers: int = 2) -> Any:
    """A small ``BertConfig`` that trains in seconds on a CPU."""
    transformers = require("transformers")
    return transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden_size * 2, max_position_embeddings=128, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
    )


class HFTokenClassifier(pl.LightningModule):
    """Fine-tunes any ``AutoModelForTokenClassification`` on dict batches.

    Args:
        model: a Hugging Face token-classification model.
        lr: AdamW learning rate.
    """

    def __init__(self, model: torch.nn.Module, lr: float = 5e-4) -> None:
        super().__init__()
        self.model = model
        self.lr = lr

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch).loss
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self(batch)
        mask = batch["labels"] != -100
        acc = (out.logits.argmax(-1)[mask] == batch["labels"][mask]).float().mean()
        self.log_dict({"val_loss": out.loss, "val_acc": acc}, prog_bar=True, batch_size=batch["input_ids"].shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)

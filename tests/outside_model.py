"""A LightningModule written the way a user would, outside the package: BERT + linear + CRF.

It deliberately does not use anything from lightning_ner_viz, so the end-to-end
tests prove the callback works on foreign code.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torchcrf import CRF
from transformers import BertConfig, BertModel


class UserCrfTagger(pl.LightningModule):
    """A user's tagger: the attribute names are theirs, not ours."""

    def __init__(self, config: BertConfig, num_tags: int, lr: float = 2e-3) -> None:
        super().__init__()
        self.backbone = BertModel(config, add_pooling_layer=False)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(config.hidden_size, num_tags))
        self.crf = CRF(num_tags, batch_first=True)
        self.lr = lr

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)

    def _nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emissions = self(batch["input_ids"], batch["attention_mask"])
        return -self.crf(emissions, batch["labels"].clamp(min=0), mask=batch["attention_mask"].bool(), reduction="mean")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._nll(batch)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log("val_nll", self._nll(batch), batch_size=batch["input_ids"].shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


class TwoLoaderTagger(UserCrfTagger):
    """The same tagger, validating on several loaders (``validation_step`` takes ``dataloader_idx``)."""

    def validation_step(self, batch, batch_idx, dataloader_idx=0):  # noqa: D102
        return super().validation_step(batch, batch_idx)


class TwoValidationLoaders(pl.LightningDataModule):
    """A datamodule's train loader; for validation, its validation loader and then a second one over the first
    ``second_rows`` rows of the same data (the same sentences under another loader)."""

    def __init__(self, data: pl.LightningDataModule, second_rows: int | None = None) -> None:
        super().__init__()
        self.data, self.second_rows = data, second_rows

    def setup(self, stage: str) -> None:  # noqa: D102
        self.data.setup(stage)

    def train_dataloader(self):  # noqa: D102
        return self.data.train_dataloader()

    def val_dataloader(self):  # noqa: D102
        first = self.data.val_dataloader()
        if self.second_rows is None:
            return [first, self.data.val_dataloader()]
        rows = list(first.dataset)[: self.second_rows]
        return [first, type(first)(rows, batch_size=first.batch_size, collate_fn=first.collate_fn)]

"""A BERT encoder + linear emissions + CRF tagger, written as a plain LightningModule, with the callback.

This is the kind of model people write by hand. The callback needs no change to
it: the encoder's output is the ``hidden`` view, ``emissions`` the linear layer,
and predictions come from ``CRF.decode``. Copy this file and replace the model and
the data with yours.

Run it on the bundled data (no download, no account, CPU)::

    python examples/bert_crf_tagger.py --epochs 3 --out runs/crf

It writes a Rerun recording, a self-contained HTML report, an offline W&B run and one
snapshot per epoch under ``--out``, and prints where each went and how to open it.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from torch import nn
from torchcrf import CRF
from transformers import BertConfig, BertModel


class BertCrfTagger(pl.LightningModule):
    """BERT -> dropout -> linear emissions -> CRF.

    Args:
        config: the encoder's ``BertConfig`` (built locally; nothing is downloaded).
        num_labels: number of BIO labels.
        lr: AdamW learning rate.
    """

    def __init__(self, config: BertConfig, num_labels: int, lr: float = 1e-3) -> None:
        super().__init__()
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(0.1)
        self.emissions = nn.Linear(config.hidden_size, num_labels)
        self.crf = CRF(num_labels, batch_first=True)
        self.lr = lr

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.emissions(self.dropout(hidden))

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emissions = self(batch["input_ids"], batch["attention_mask"])
        mask = batch["attention_mask"].bool()
        tags = batch["labels"].clamp(min=0)  # -100 (special tokens) scored as label 0 inside the mask
        return -self.crf(emissions, tags, mask=mask, reduction="mean")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), prog_bar=True, batch_size=batch["input_ids"].shape[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def main() -> None:
    """Train on the bundled product titles; log to Rerun, HTML and an offline W&B run."""
    from lightning.pytorch.loggers import WandbLogger

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, iter_text
    from lightning_ner_viz.demo.datamodule import NerDataModule
    from lightning_ner_viz.demo.tokenizer import train_wordpiece
    from lightning_ner_viz.sinks import HtmlSink, RerunSink, WandbSink

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/bert_crf")
    parser.add_argument("--examples", type=int, default=1200, help="generated titles, 5/6 train, 1/6 validation")
    args = parser.parse_args()

    # The data: replace with your own LightningDataModule (dict batches of input_ids, attention_mask, labels).
    examples = generate_examples(args.examples, seed=0)
    split = args.examples * 5 // 6
    tokenizer = train_wordpiece(iter_text(examples))
    data = NerDataModule(examples[:split], examples[split:], tokenizer, LABEL_NAMES)

    # The model: replace with yours.
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    model = BertCrfTagger(config, num_labels=len(LABEL_NAMES))

    # The callback: relative sink paths go under its snapshot root, <out>/ner_viz.
    rerun, html, wandb = RerunSink(path="embeddings.rrd"), HtmlSink(path="embeddings.html"), WandbSink()
    callback = EmbeddingDriftCallback(sinks=[rerun, html, wandb], label_names=LABEL_NAMES, tokenizer=tokenizer,
                                      hidden_module="encoder", max_tokens=1000)
    logger = WandbLogger(project="lightning-ner-viz-example", save_dir=args.out, offline=True)  # offline=False uploads
    trainer = pl.Trainer(max_epochs=args.epochs, default_root_dir=args.out, callbacks=[callback], logger=logger,
                         enable_checkpointing=False, log_every_n_steps=10)
    trainer.fit(model, data)  # returns when training is done; the last pictures are drawn in the background
    callback.wait()  # until every file below is written (wandb.finish() and the end of the script wait too)
    logger.experiment.finish()

    print("\nWrote:")
    print(f"  Rerun recording  {rerun.path}\n      open it:     rerun {rerun.path}")
    print(f"  HTML report      {html.path}\n      open it:     any browser, offline")
    print(f"  W&B offline run  {wandb.run_dir}\n      upload it:   wandb sync {wandb.run_dir}")
    snapshots = rerun.path.parent  # the snapshot root: one epoch=NNNN folder per epoch
    print(f"  snapshots        {snapshots}\n      re-render:   lightning-ner-viz render {snapshots} --sink html")


if __name__ == "__main__":
    main()

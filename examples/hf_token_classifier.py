"""A LightningModule wrapping ``AutoModelForTokenClassification``, with the callback added.

The callback finds everything itself: the hidden states are the output of the
HF model's base model (``model.bert``), the emissions its ``classifier``, and the
label names come from ``config.id2label``.

Run it on the bundled data::

    python examples/hf_token_classifier.py --epochs 3 --out runs/hf
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
from transformers import AutoModelForTokenClassification

from lightning_ner_viz import EmbeddingDriftCallback
from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, iter_text
from lightning_ner_viz.demo.datamodule import NerDataModule
from lightning_ner_viz.demo.model import HFTokenClassifier, tiny_bert_config
from lightning_ner_viz.demo.tokenizer import train_wordpiece
from lightning_ner_viz.sinks import RerunSink

__all__ = ["HFTokenClassifier", "build"]


def build(n_examples: int = 1200, batch_size: int = 32) -> tuple[HFTokenClassifier, NerDataModule]:
    """A tiny ``BertForTokenClassification`` (from a config) and the bundled data."""
    examples = generate_examples(n_examples, seed=0)
    tokenizer = train_wordpiece(iter_text(examples))
    split = int(len(examples) * 0.8)
    data = NerDataModule(examples[:split], examples[split:], tokenizer, LABEL_NAMES, batch_size=batch_size)
    model = AutoModelForTokenClassification.from_config(tiny_bert_config(len(tokenizer), LABEL_NAMES))
    return HFTokenClassifier(model), data


def main() -> None:
    """Train and write a Rerun recording."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/hf")
    args = parser.parse_args()
    module, data = build()
    callback = EmbeddingDriftCallback(sinks=[RerunSink(path=f"{args.out}/embeddings.rrd")], max_tokens=1000)
    pl.Trainer(max_epochs=args.epochs, default_root_dir=args.out, callbacks=[callback], logger=False,
               enable_checkpointing=False).fit(module, data)
    callback.wait()  # fit returned when training was done; this waits for the recording's last epochs
    print(f"Wrote {args.out}/embeddings.rrd; open it with: rerun {args.out}/embeddings.rrd")


if __name__ == "__main__":
    main()

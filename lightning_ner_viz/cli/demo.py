"""``lightning-ner-viz demo``: its options. The training itself is :func:`lightning_ner_viz.demo.run.run_demo`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from lightning_ner_viz.projection.frame_names import FRAME_CHOICES, check_reducer_frame, resolve_frame
from lightning_ner_viz.reducers.registry import REDUCER_NAMES

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_demo_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "demo",
        help="train a small NER model on CPU and write a Rerun recording, a W&B offline run and snapshots",
        description="Train a small NER tagger on CPU (bundled product-title data) with EmbeddingDriftCallback, "
        "then print where each output is and how to open it.",
    )
    add_demo_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``demo`` subcommand."""
    parser.add_argument("--out", default="demo-out", help="output directory (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: %(default)s)")
    parser.add_argument("--data", help="train on this CoNLL file (word ... label per line) instead of the bundled set")
    parser.add_argument(
        "--model", default="tiny",
        help="'tiny' (a small BERT built from a config, default), 'minilm' (the pretrained all-MiniLM-L6-v2 "
        "from the 'demo' extra), or a local Hugging Face model directory / hub name",
    )
    parser.add_argument("--reducer", default="pca", choices=REDUCER_NAMES, help="projection (default: %(default)s)")
    parser.add_argument("--frame", default="auto", choices=FRAME_CHOICES,
                        help="how epochs share one frame (default: %(default)s: procrustes for pca, fixed for "
                        "umap and tsne)")
    parser.add_argument("--max-tokens", type=int, default=2000, help="tokens per epoch (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=2500, help="bundled examples to generate (default: %(default)s)")
    parser.add_argument("--no-wandb", action="store_true", help="skip the offline W&B run")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the model's initial weights and of training (the data and the sampled tokens "
                        "stay the same, so two runs can be compared with `lightning-ner-viz compare`; "
                        "default: %(default)s)")
    parser.add_argument("--lr", type=float, help="learning rate (default: 1e-3 for tiny, 5e-5 for a pretrained model)")
    parser.add_argument("--label-noise", type=float, default=0.0, metavar="RATE",
                        help="flip this share of the validation words' labels (e.g. 0.05), to see the label issues "
                        "find them; the flipped tokens go to flipped_labels.csv (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Check the options, then train and log (imports torch and Lightning only now)."""
    check_reducer_frame(args.reducer, resolve_frame(args.frame, args.reducer))
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1; got {args.epochs}.")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be a positive number; got {args.lr}.")
    from lightning_ner_viz.demo.run import run_demo

    return run_demo(args)

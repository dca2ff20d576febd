"""The ``lightning-ner-viz`` command line: ``demo`` (more subcommands build on snapshots)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lightning_ner_viz.demo.run import add_demo_arguments, run_demo


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="lightning-ner-viz",
        description="Watch a token-classification model's embeddings evolve during fine-tuning.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="train a small NER model on CPU and write a Rerun recording, a W&B offline run and snapshots",
        description="Train a small NER tagger on CPU (bundled product-title data) with EmbeddingDriftCallback, "
        "then print where each output is and how to open it.",
    )
    add_demo_arguments(demo)
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-ner-viz`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:
        print(f"lightning-ner-viz {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

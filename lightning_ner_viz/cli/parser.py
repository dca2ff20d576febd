"""The ``lightning-ner-viz`` argument parser: one sub-parser per subcommand, each defined in its own module.

Building it imports no heavy package (torch, Lightning, numpy, optional backends), so
``--help`` is quick; each subcommand's handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse

from lightning_ner_viz.cli.compare import add_compare_parser
from lightning_ner_viz.cli.demo import add_demo_parser
from lightning_ner_viz.cli.issues import add_issues_parser
from lightning_ner_viz.cli.render import add_render_parser
from lightning_ner_viz.cli.replay import add_replay_parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each parsed subcommand carries its ``handler(args) -> exit code``."""
    parser = argparse.ArgumentParser(
        prog="lightning-ner-viz",
        description="Watch a token-classification model's embeddings evolve during fine-tuning.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_parser(subparsers)
    add_replay_parser(subparsers)
    add_render_parser(subparsers)
    add_issues_parser(subparsers)
    add_compare_parser(subparsers)
    return parser

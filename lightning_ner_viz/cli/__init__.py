"""The ``lightning-ner-viz`` command line: ``demo``, ``replay``, ``render``, ``issues`` and ``compare``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lightning_ner_viz.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-ner-viz`` console script.

    Returns:
        The exit code: 0 on success, 1 when a sink failed, 2 for bad input (argparse's usage
        errors exit with 2 too).
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError, ModuleNotFoundError) as err:
        print(f"lightning-ner-viz {args.command}: error: {err}", file=sys.stderr)
        return 2

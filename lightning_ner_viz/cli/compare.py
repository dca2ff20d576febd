"""``lightning-ner-viz compare``: what a change of training did to the representation, from several runs' snapshots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_ner_viz.cli.outputs import output_path
from lightning_ner_viz.reducers.registry import REDUCER_NAMES

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_TOP = 20
"""How many of the tokens whose neighbours changed most the report lists (the metrics module's default)."""


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",")]


def _into_directory(out: str, name: str) -> str | Path:
    """``out/name`` when ``out`` is an existing directory, else ``out``."""
    return Path(out) / name if Path(out).expanduser().is_dir() else out


def add_compare_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "compare", help="compare runs' snapshots: what another learning rate, seed or label set did to the representation",
        description="Compare two or more training runs snapshot by snapshot against the first (the reference): "
        "their clouds side by side in one frame, CKA, per-label centroid distances, and the tokens whose "
        "neighbours changed most. Runs are matched by snapshot (stage and epoch) and by stable token ids.",
    )
    parser.add_argument("snapshot_dirs", nargs="+", metavar="DIR",
                        help="a run's snapshot directory (epoch=NNNN-step=NNNNNNN folders, or the run directory above "
                        "them); two or more, the first is the reference")
    parser.add_argument("--out", required=True, help="the HTML report to write (.html added when the name has none; "
                        "compare.html in it when it is a directory)")
    parser.add_argument("--rrd", help="also write a Rerun recording to this file (.rrd added when the name has none)")
    parser.add_argument("--view", default="hidden", help="the view to compare (default: %(default)s)")
    parser.add_argument("--reducer", default="pca", choices=REDUCER_NAMES,
                        help="how each run's clouds are projected (default: %(default)s)")
    parser.add_argument("--n-components", type=int, default=2, choices=[2, 3], help="default: %(default)s")
    parser.add_argument("--names", type=_names, help="comma-separated names of the runs, in order "
                        "(default: each directory's name)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help="how many of the tokens whose neighbours changed most to list (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the reducers' random state (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``compare`` handler: load and match the runs, compare them, write the report (and recording), print the table."""
    import time

    from lightning_ner_viz.comparison.compare import compare_runs
    from lightning_ner_viz.comparison.html import write_report
    from lightning_ner_viz.comparison.table import summary_table

    started = time.perf_counter()
    out = output_path(_into_directory(args.out, "compare.html"), "html").resolve()
    rrd = output_path(_into_directory(args.rrd, "compare.rrd"), "rerun", "--rrd").resolve() if args.rrd else None
    from lightning_ner_viz._imports import require

    require("plotly")  # a missing extra fails before the work, not after it
    if rrd is not None:
        require("rerun")
    comparison = compare_runs(args.snapshot_dirs, names=args.names, view=args.view, reducer=args.reducer,
                              n_components=args.n_components, top=args.top, seed=args.seed)
    write_report(comparison, out)
    if rrd is not None:
        from lightning_ner_viz.comparison.rerun import write_recording

        write_recording(comparison, rrd)
    print(summary_table(comparison))
    print(f"\nReport: {out}")
    if rrd is not None:
        print(f"Recording: {rrd}  (open it with: rerun {rrd})")
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return 0

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

    replay = sub.add_parser(
        "replay", help="open a .rrd recording, or build one from a snapshot directory",
        description="Open PATH (a .rrd file or a directory of epoch=NNNN snapshots) in the Rerun viewer.",
    )
    replay.add_argument("path", help="a .rrd file, or a snapshot directory (e.g. demo-out/ner_viz)")
    replay.add_argument("--web", action="store_true", help="serve the web viewer on 127.0.0.1 and print its URL")
    replay.add_argument("--save", metavar="OUT.rrd", help="write a recording from snapshots instead of opening it")
    replay.add_argument("--port", type=int, default=9876, help="gRPC port for --web (default: %(default)s)")
    replay.add_argument("--web-port", type=int, default=9090, help="web viewer port for --web (default: %(default)s)")
    replay.set_defaults(handler=_replay)

    render = sub.add_parser(
        "render", help="re-render saved snapshots with another reducer, frame or sink, without retraining",
        description="Re-project every epoch under SNAPSHOT_DIR and log it to one sink.",
    )
    render.add_argument("snapshot_dir", help="directory of epoch=NNNN snapshots (or the run directory above it)")
    render.add_argument("--reducer", default="pca", choices=["pca", "umap", "tsne"], help="default: %(default)s")
    render.add_argument("--frame", default="procrustes", choices=["procrustes", "fixed", "warm", "aligned", "independent"],
                        help="how epochs share one frame; 'aligned' uses umap.AlignedUMAP (default: %(default)s)")
    render.add_argument("--sink", default="rerun", choices=["rerun", "wandb", "html", "tensorboard"], help="default: %(default)s")
    render.add_argument("--out", help="output file (rerun, html) or directory (wandb, tensorboard); "
                        "default: next to the snapshots")
    render.add_argument("--n-components", type=int, default=3, choices=[2, 3], help="default: %(default)s")
    render.set_defaults(handler=_render)
    return parser


def _replay(args: argparse.Namespace) -> int:
    from lightning_ner_viz.cli.replay import replay

    return replay(args.path, web=args.web, save=args.save, port=args.port, web_port=args.web_port)


def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lightning_ner_viz.cli.replay import load_snapshot_dir, make_sink, render_snapshots

    snapshots = load_snapshot_dir(args.snapshot_dir)
    default_name = {"rerun": "render.rrd", "html": "render.html", "wandb": "wandb-render", "tensorboard": "tensorboard-render"}
    out = Path(args.out) if args.out else Path(args.snapshot_dir).resolve() / default_name[args.sink]
    render_snapshots(snapshots, [make_sink(args.sink, out.resolve())], reducer=args.reducer, frame=args.frame,
                     n_components=args.n_components)
    print(f"Rendered {len(snapshots)} epochs ({args.reducer}, frame {args.frame}) to {out.resolve()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-ner-viz`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError, ModuleNotFoundError) as err:
        print(f"lightning-ner-viz {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

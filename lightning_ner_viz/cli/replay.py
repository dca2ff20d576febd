"""``lightning-ner-viz replay``: open recordings in the Rerun viewer, or build one from saved snapshots."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_ner_viz.cli.outputs import output_path

if TYPE_CHECKING:
    from lightning_ner_viz.projection.frame_names import RenderFrameChoice
    from lightning_ner_viz.reducers.registry import ReducerName

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_replay_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "replay", help="open .rrd recordings as one, or build a recording from a snapshot directory",
        description="Open PATH in the Rerun viewer: .rrd files of one run (a resumed run writes embeddings.rrd, "
        "embeddings-1.rrd, ...) shown as one recording, a folder holding them, or a directory of snapshots (epoch=NNNN-step=NNNNNNN) "
        "snapshots, from which a recording is built first.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help=".rrd files, or one folder: snapshots (e.g. demo-out/ner_viz) or .rrd recordings")
    parser.add_argument("--web", action="store_true", help="serve the web viewer on 127.0.0.1 and print its URL")
    parser.add_argument("--save", metavar="OUT.rrd", help="write the recording to OUT.rrd instead of opening it: "
                        "a copy of one file, the merge of several, or the one built from snapshots")
    parser.add_argument("--port", type=int, default=9876, help="gRPC port for --web (default: %(default)s)")
    parser.add_argument("--web-port", type=int, default=9090, help="web viewer port for --web (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="let the viewer print its start-up messages and analytics notice")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``replay`` handler."""
    return replay(*args.paths, web=args.web, save=args.save, port=args.port, web_port=args.web_port,
                  verbose=args.verbose)


def replay(*paths: str | os.PathLike[str], web: bool = False, save: str | os.PathLike[str] | None = None,
           port: int = 9876, web_port: int = 9090, reducer: ReducerName = "pca", frame: RenderFrameChoice = "auto",
           verbose: bool = False) -> int:
    """Open recordings as one, or build one from snapshots first; or write it to ``save``.

    Args:
        paths: ``.rrd`` files of one recording, or one folder of snapshots (or the run
            directory above it) or of ``.rrd`` files.
        web: serve the web viewer on 127.0.0.1 instead of opening the native viewer.
        save: write the recording here (``.rrd`` added when the name has no extension) and
            return without opening it: a copy of one file, one merged file of several, or
            the recording built from snapshots.
        port: gRPC port of the web viewer's server.
        web_port: HTTP port of the web viewer.
        reducer: the projection used to build a recording from snapshots.
        frame: how those epochs share one frame.
        verbose: let the viewer print its banner and start-up messages.

    Returns:
        The exit code: 0 after ``save``, 1 when the recording could not be built. Otherwise
        the viewer replaces this process and it does not return.

    Raises:
        ValueError: for a ``save`` name with another extension, files of several recordings,
            or snapshots that cannot be read.
        FileNotFoundError: for a missing path.
    """
    from lightning_ner_viz.cli.recordings import (
        check_one_recording,
        find_inputs,
        recordings_in,
        write_recording,
    )
    from lightning_ner_viz.cli.viewer import quiet_environment, viewer_launch

    out = output_path(save, "rerun", "--save").resolve() if save is not None else None
    inputs = find_inputs(paths)
    scratch = functools.cache(lambda: Path(tempfile.mkdtemp(prefix="ner-viz-replay-")))
    recordings = list(inputs.recordings)
    if inputs.snapshot_root is not None:
        from lightning_ner_viz.cli.render import render_to_sink, report_failures

        beside = recordings_in(inputs.snapshot_root)
        if beside:
            print(f"Building a recording from the snapshots in {inputs.snapshot_root}. To open the recordings there "
                  f"instead, run: lightning-ner-viz replay {' '.join(shlex.quote(str(path)) for path in beside)}")
        built = out or scratch() / "replay.rrd"
        epochs, failures = render_to_sink(inputs.snapshot_root, "rerun", built, reducer=reducer, frame=frame)
        if failures:
            return report_failures("replay", failures)
        print(f"Wrote {built} ({epochs} epochs).")
        if out is not None:
            return 0
        recordings = [built]
    elif len(recordings) > 1:
        check_one_recording(recordings)
    if out is not None:
        with tempfile.TemporaryDirectory(prefix="ner-viz-replay-") as tmp:
            quiet = len(recordings) > 1 and not verbose
            write_recording(recordings, out, quiet_environment(Path(tmp)) if quiet else None, verbose)
        how = "a copy of" if len(recordings) == 1 else "the merge of"
        print(f"Wrote {out} ({how} {', '.join(path.name for path in recordings)}).")
        return 0
    command, env = viewer_launch(recordings, scratch(), web=web, port=port, web_port=web_port, verbose=verbose)
    if web:
        print(f"Serving the Rerun web viewer: open "
              f"http://127.0.0.1:{web_port}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{port}%2Fproxy")
        print("Press Ctrl-C to stop.")
    sys.stdout.flush()
    os.execve(command[0], command, env)  # the viewer replaces this process, so signals reach it directly
    return 0

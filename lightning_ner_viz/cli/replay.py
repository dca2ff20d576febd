"""``lightning-ner-viz replay``: open a recording in the Rerun viewer, or build one from saved snapshots."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_ner_viz.projection.frame_names import RenderFrameName
    from lightning_ner_viz.reducers.registry import ReducerName

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_replay_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "replay", help="open a .rrd recording, or build one from a snapshot directory",
        description="Open PATH (a .rrd file or a directory of epoch=NNNN snapshots) in the Rerun viewer.",
    )
    parser.add_argument("path", help="a .rrd file, or a snapshot directory (e.g. demo-out/ner_viz)")
    parser.add_argument("--web", action="store_true", help="serve the web viewer on 127.0.0.1 and print its URL")
    parser.add_argument("--save", metavar="OUT.rrd", help="write a recording from snapshots instead of opening it")
    parser.add_argument("--port", type=int, default=9876, help="gRPC port for --web (default: %(default)s)")
    parser.add_argument("--web-port", type=int, default=9090, help="web viewer port for --web (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``replay`` handler."""
    return replay(args.path, web=args.web, save=args.save, port=args.port, web_port=args.web_port)


def rerun_executable() -> str:
    """The ``rerun`` viewer binary shipped in the rerun-sdk wheel.

    Not its Python wrapper script, which would leave the viewer running when it is stopped.

    Raises:
        ModuleNotFoundError: when rerun-sdk is not installed.
        FileNotFoundError: when the binary is missing.
    """
    from lightning_ner_viz._imports import require

    require("rerun")
    try:
        import rerun_cli

        binary = Path(rerun_cli.__file__).with_name("rerun")
    except ModuleNotFoundError:
        binary = Path(shutil.which("rerun") or "")
    if not binary.is_file():
        raise FileNotFoundError("The `rerun` viewer was not found; reinstall with `pip install 'lightning-ner-viz[rerun]'`.")
    return str(binary)


def viewer_command(rrd: Path, web: bool, port: int, web_port: int) -> list[str]:
    """The command that opens ``rrd`` in the native viewer or serves the web viewer on loopback."""
    if not web:
        return [rerun_executable(), str(rrd)]
    return [rerun_executable(), "--serve-web", "--bind", "127.0.0.1", "--port", str(port),
            "--web-viewer-port", str(web_port), str(rrd)]


def replay(path: str | os.PathLike[str], *, web: bool = False, save: str | None = None, port: int = 9876,
           web_port: int = 9090, reducer: ReducerName = "pca", frame: RenderFrameName = "procrustes") -> int:
    """Open a recording, or build one from snapshots first.

    Args:
        path: a ``.rrd`` file, or a snapshot directory (or the run directory above it).
        web: serve the web viewer on 127.0.0.1 instead of opening the native viewer.
        save: write the recording built from snapshots here and return, without opening it.
        port: gRPC port of the web viewer's server.
        web_port: HTTP port of the web viewer.
        reducer: the projection used to build a recording from snapshots.
        frame: how those epochs share one frame.

    Returns:
        The exit code: 0 after ``save``, 1 when the recording could not be written. Otherwise
        the viewer replaces this process and it does not return.

    Raises:
        ValueError: for ``save`` with a ``.rrd`` path, or snapshots that cannot be read.
        FileNotFoundError: when ``path`` is neither a ``.rrd`` file nor a directory.
    """
    source = Path(path).expanduser().resolve()
    if source.is_file() and source.suffix == ".rrd":
        if save:
            raise ValueError("--save builds a recording from snapshots; PATH is already a .rrd file.")
        rrd = source
    else:
        from lightning_ner_viz.cli.render import render_to_sink, report_failures

        rrd = Path(save).resolve() if save else Path(tempfile.mkdtemp(prefix="ner-viz-replay-")) / "replay.rrd"
        epochs, failures = render_to_sink(source, "rerun", rrd, reducer=reducer, frame=frame)
        if failures:
            return report_failures("replay", failures)
        print(f"Wrote {rrd} ({epochs} epochs).")
        if save:
            return 0
    command = viewer_command(rrd, web, port, web_port)
    if web:
        print(f"Serving the Rerun web viewer: open http://127.0.0.1:{web_port}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{port}%2Fproxy")
        print("Press Ctrl-C to stop.")
    sys.stdout.flush()
    os.execv(command[0], command)  # the viewer replaces this process, so signals reach it directly
    return 0

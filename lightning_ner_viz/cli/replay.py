"""Look again without retraining: open a recording, or re-render saved snapshots."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lightning_ner_viz.analysis.epoch_metrics import epoch_metrics
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.snapshot import Snapshot, load_snapshots

SINK_NAMES = ("rerun", "wandb", "html", "tensorboard")


def safe_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a user-given path and, when ``root`` is given, refuse one that escapes it.

    Raises:
        ValueError: when the resolved path is outside ``root`` (``..`` or a symlink out).
    """
    resolved = Path(path).expanduser().resolve()
    if root is not None:
        base = Path(root).expanduser().resolve()
        if resolved != base and base not in resolved.parents:
            raise ValueError(f"{path} resolves to {resolved}, outside {base}; refusing to follow it.")
    return resolved


def load_snapshot_dir(directory: str | os.PathLike[str]) -> list[Snapshot]:
    """Snapshots under ``directory`` (or ``directory/ner_viz``), refusing entries that link outside it."""
    base = safe_path(directory)
    if not base.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory of snapshots (epoch=NNNN folders).")
    if not any(base.glob("epoch=*")) and (base / "ner_viz").is_dir():
        base = base / "ner_viz"
    for entry in base.glob("epoch=*"):
        safe_path(entry, base)
    return load_snapshots(base)


def make_sink(name: str, out: Path) -> Sink:
    """A sink by name, writing under ``out`` (a file path for rerun/html, a directory otherwise)."""
    if name == "rerun":
        from lightning_ner_viz.sinks import RerunSink

        return RerunSink(path=out)
    if name == "html":
        from lightning_ner_viz.sinks.html import HtmlSink

        return HtmlSink(path=out)
    if name == "tensorboard":
        from lightning_ner_viz.sinks import TensorBoardSink

        return TensorBoardSink(log_dir=str(out))
    if name == "wandb":
        from lightning_ner_viz.sinks import WandbSink

        return WandbSink(init_kwargs={"dir": str(out), "project": "lightning-ner-viz-render"})
    raise ValueError(f"Unknown sink {name!r}; choose one of {list(SINK_NAMES)}.")


def render_snapshots(
    snapshots: list[Snapshot], sinks: list[Sink], reducer: str | Any = "pca", frame: str = "procrustes",
    n_components: int = 3, seed: int = 0,
) -> None:
    """Re-render saved snapshots, in epoch order, to the sinks.

    ``frame="aligned"`` lays all epochs out together with ``umap.AlignedUMAP``;
    the other frames replay the epochs one by one as during training.
    """
    for sink in sinks:
        sink.setup(None)
    if frame != "aligned":
        renderer = Renderer(reducer, n_components, seed, sinks, strict=True, frame=frame)
        for snapshot in snapshots:
            renderer.render(snapshot)
        renderer.close()
        return
    from lightning_ner_viz.projection.frames import aligned_umap

    layouts = {view: aligned_umap(snapshots, view, n_components, seed) for view in snapshots[0].views}
    previous = None
    for i, snapshot in enumerate(snapshots):
        coords = {view: layouts[view][i] for view in snapshot.views}
        metrics = epoch_metrics(snapshot, coords, previous=previous, first=snapshots[0] if i else None)
        for sink in sinks:
            sink.log_epoch(snapshot, coords, metrics)
        previous = snapshot
    for sink in sinks:
        sink.close()


def rerun_executable() -> str:
    """The ``rerun`` viewer binary shipped in the rerun-sdk wheel (not its Python wrapper script,
    which would leave the viewer running when it is stopped)."""
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
           web_port: int = 9090, reducer: str = "pca", frame: str = "procrustes") -> int:
    """Open a recording, or build one from snapshots (``save`` writes it instead of opening)."""
    source = safe_path(path)
    if source.is_file() and source.suffix == ".rrd":
        if save:
            raise ValueError("--save builds a recording from snapshots; PATH is already a .rrd file.")
        rrd = source
    else:
        snapshots = load_snapshot_dir(source)
        rrd = Path(save).resolve() if save else Path(tempfile.mkdtemp(prefix="ner-viz-replay-")) / "replay.rrd"
        render_snapshots(snapshots, [make_sink("rerun", rrd)], reducer=reducer, frame=frame)
        print(f"Wrote {rrd} ({len(snapshots)} epochs).")
        if save:
            return 0
    command = viewer_command(rrd, web, port, web_port)
    if web:
        print(f"Serving the Rerun web viewer: open http://127.0.0.1:{web_port}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{port}%2Fproxy")
        print("Press Ctrl-C to stop.")
    sys.stdout.flush()
    os.execv(command[0], command)  # the viewer replaces this process, so signals reach it directly
    return 0

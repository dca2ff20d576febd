"""The command line's edges: `replay --save` copies and merges, output extensions, several recordings shown as
one, a quiet viewer, and refusals with exit code 2. No viewer is started: its command line is checked instead."""

from __future__ import annotations

import contextlib
import filecmp
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rrd_reading import read_rrd

from lightning_ner_viz.cli import build_parser, main
from lightning_ner_viz.cli.outputs import output_path
from lightning_ner_viz.cli.recordings import find_inputs
from lightning_ner_viz.cli.viewer import rerun_executable, viewer_launch
from lightning_ner_viz.snapshot import Snapshot

SCRIPT = Path(sys.executable).with_name("lightning-ner-viz")
LABELS = ["O", "B-X", "I-X"]
HIDDEN = "/embeddings/hidden"


def _cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def _record(path: Path, epochs: list[int], recording_id: str = "run-1") -> Path:
    """A small recording as RerunSink writes one: a layout, then one cloud per epoch on the ``epoch`` timeline."""
    import rerun as rr
    import rerun.blueprint as rrb

    rec = rr.RecordingStream("lightning_ner_viz", recording_id=recording_id)
    rec.save(str(path))
    rec.send_blueprint(rrb.Blueprint(rrb.Spatial3DView(origin=HIDDEN)))
    for epoch in epochs:
        rec.set_time("epoch", sequence=epoch)
        rec.log(HIDDEN, rr.Points3D(np.full((4, 3), float(epoch))))
    rec.flush()
    rec.disconnect()
    return path


def _epochs(rrd: Path) -> list[int]:
    return sorted(row["epoch"] for row in read_rrd(rrd)[HIDDEN])


def _recording_ids(rrd: Path) -> list[str]:
    from rerun.chunk import RrdReader

    return [entry.recording_id for entry in RrdReader(str(rrd)).recordings()]


def _save_snapshots(root: Path, epochs: list[int], n: int = 30) -> Path:
    for epoch in epochs:
        rng = np.random.default_rng(epoch)
        gold = rng.integers(0, len(LABELS), n)
        Snapshot(epoch=epoch, step=5 * epoch, token_id=np.arange(n), sentence_id=np.zeros(n, dtype=np.int64),
                 position=np.arange(n), token=[f"t{i}" for i in range(n)], word=[f"w{i}" for i in range(n)],
                 gold=gold, pred=gold, views={"hidden": rng.normal(size=(n, 6)).astype(np.float32)},
                 label_names=LABELS).save(root / f"epoch={epoch:04d}")
    return root


@pytest.fixture()
def resumed_run(tmp_path: Path) -> Path:
    """A folder as a resumed fit leaves it: embeddings.rrd (epochs 0-1) and embeddings-1.rrd (epochs 2-3)."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    _record(folder / "embeddings-1.rrd", [2, 3])
    _record(folder / "embeddings.rrd", [0, 1])
    return folder


# ---- replay --save: copy and merge --------------------------------------------------------------------------


def test_replay_save_copies_one_recording_without_importing_heavy_packages(tmp_path):
    source = _record(tmp_path / "x.rrd", [0, 1])
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), "replay", str(source), "--save",
                           str(tmp_path / "y.rrd")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert filecmp.cmp(source, tmp_path / "y.rrd", shallow=False)
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert not imported & {"torch", "lightning", "numpy", "rerun", "pyarrow"}


def test_replay_save_merges_the_files_of_a_resumed_run(resumed_run, tmp_path):
    files = [resumed_run / "embeddings.rrd", resumed_run / "embeddings-1.rrd"]
    code, out, err = _cli("replay", *map(str, files), "--save", str(tmp_path / "merged.rrd"))
    assert code == 0, err
    assert "the merge of embeddings.rrd, embeddings-1.rrd" in out
    assert _recording_ids(tmp_path / "merged.rrd") == ["run-1"]  # one recording, not two
    assert _epochs(tmp_path / "merged.rrd") == [0, 1, 2, 3]


def test_replay_of_a_folder_of_recordings_merges_them(resumed_run, tmp_path):
    assert find_inputs([resumed_run]).recordings == (resumed_run / "embeddings.rrd", resumed_run / "embeddings-1.rrd")
    code, _, err = _cli("replay", str(resumed_run), "--save", str(tmp_path / "folder"))  # .rrd added
    assert code == 0, err
    assert _epochs(tmp_path / "folder.rrd") == [0, 1, 2, 3]


def test_a_snapshot_folder_still_builds_a_recording_from_its_snapshots(tmp_path):
    root = _save_snapshots(tmp_path / "ner_viz", [0, 1])
    _record(root / "embeddings.rrd", [7])
    code, out, err = _cli("replay", str(tmp_path), "--save", str(tmp_path / "built.rrd"))  # the run directory
    assert code == 0, err
    assert [row["epoch"] for row in read_rrd(tmp_path / "built.rrd")["/embeddings/hidden"]] == [0, 1]
    assert f"lightning-ner-viz replay {root / 'embeddings.rrd'}" in out  # how to open the recording instead


# ---- output names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sink", "out", "written"), [
    ("rerun", "render", "render.rrd"), ("html", "report", "report.html"),
    ("rerun", "RUN.RRD", "RUN.RRD"), ("html", "r.htm", "r.htm"), ("wandb", "runs", "runs"),
])
def test_output_path_adds_the_extension_the_sink_writes(tmp_path, sink, out, written):
    assert output_path(tmp_path / out, sink) == tmp_path / written


def test_output_path_in_an_existing_directory_uses_the_default_name(tmp_path):
    assert output_path(tmp_path, "html") == tmp_path / "render.html"


def test_render_adds_the_extension(tmp_path):
    _save_snapshots(tmp_path / "snaps", [0, 1])
    code, out, err = _cli("render", str(tmp_path / "snaps"), "--frame", "fixed", "--out", str(tmp_path / "name"))
    assert code == 0, err
    assert str(tmp_path / "name.rrd") in out
    assert [row["epoch"] for row in read_rrd(tmp_path / "name.rrd")["/embeddings/hidden"]] == [0, 1]
    assert not (tmp_path / "name").exists()


@pytest.mark.parametrize("args", [
    ["render", "{snaps}", "--sink", "html", "--out", "{tmp}/report.rrd"],
    ["render", "{snaps}", "--sink", "rerun", "--out", "{tmp}/emb.html"],
    ["replay", "{tmp}/x.rrd", "--save", "{tmp}/copy.txt"],
], ids=["html-as-rrd", "rerun-as-html", "save-as-txt"])
def test_a_name_with_the_wrong_extension_is_refused_before_any_work(tmp_path, args):
    # the snapshot folder and x.rrd do not exist: the name is checked first
    code, _, err = _cli(*(a.format(snaps=tmp_path / "missing", tmp=tmp_path) for a in args))
    assert code == 2 and "does not end with" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ---- refusals -----------------------------------------------------------------------------------------------


def test_files_of_different_recordings_are_refused(resumed_run, tmp_path):
    other = _record(tmp_path / "other.rrd", [0], recording_id="run-2")
    code, _, err = _cli("replay", str(resumed_run / "embeddings.rrd"), str(other), "--save", str(tmp_path / "m.rrd"))
    assert code == 2 and "2 different recordings" in err and "run-1" in err and "run-2" in err
    assert not (tmp_path / "m.rrd").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["{run}/embeddings.rrd", "{tmp}/nope.rrd"], "does not exist"),
    (["{run}/embeddings.rrd", "{run}"], "is not a .rrd file"),
    (["{run}/embeddings.rrd", "{tmp}/junk.rrd"], "not a readable Rerun recording"),
    (["{tmp}/empty"], "neither snapshots (epoch=NNNN-step=NNNNNNN folders) nor .rrd recordings"),
    (["{run}/embeddings.rrd", "--save", "{run}/embeddings.rrd"], "is one of the recordings"),
    (["{run}", "--save", "{run}/embeddings-1.rrd"], "is one of the recordings"),
], ids=["missing", "folder-and-file", "unreadable", "empty-folder", "save-over-input", "save-over-folder-input"])
def test_bad_replay_inputs_exit_with_2_and_one_line(resumed_run, tmp_path, args, message):
    (tmp_path / "junk.rrd").write_text("not a recording")
    (tmp_path / "empty").mkdir()
    before = {p: p.read_bytes() for p in resumed_run.iterdir()}
    code, _, err = _cli("replay", *(a.format(run=resumed_run, tmp=tmp_path) for a in args))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in resumed_run.iterdir()} == before


# ---- the viewer's command line and environment --------------------------------------------------------------


def test_viewer_gets_every_file_and_a_quiet_environment(resumed_run, tmp_path, monkeypatch):
    monkeypatch.delenv("RUST_LOG", raising=False)
    files = list(find_inputs([resumed_run]).recordings)
    command, env = viewer_launch(files, tmp_path / "scratch")
    assert command == [rerun_executable(), *map(str, files)]
    assert env["RUST_LOG"] == "warn"
    config = Path(env["XDG_CONFIG_HOME"]) / "rerun" / "analytics.json"
    assert tmp_path / "scratch" in config.parents and json.loads(config.read_text())["analytics_enabled"] is False
    # rerun itself reads that config: analytics off, and no first-run banner
    done = subprocess.run([rerun_executable(), "analytics", "config"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and "Welcome to Rerun" not in done.stdout + done.stderr
    assert json.loads(done.stdout)["analytics_enabled"] is False
    assert json.loads(done.stdout)["config_file_path"] == str(config)


def test_web_viewer_command_binds_loopback(resumed_run, tmp_path, monkeypatch):
    monkeypatch.setenv("RUST_LOG", "debug")  # the user's own level is kept
    files = [resumed_run / "embeddings.rrd"]
    command, env = viewer_launch(files, tmp_path, web=True, port=1234, web_port=5678)
    assert command == [rerun_executable(), "--serve-web", "--bind", "127.0.0.1", "--port", "1234",
                       "--web-viewer-port", "5678", str(files[0])]
    assert env["RUST_LOG"] == "debug"


def test_verbose_viewer_keeps_the_environment(resumed_run, tmp_path):
    args = build_parser().parse_args(["replay", str(resumed_run), "--verbose"])
    assert args.verbose and args.paths == [str(resumed_run)]
    _, env = viewer_launch([resumed_run / "embeddings.rrd"], tmp_path / "scratch", verbose=True)
    assert env == dict(os.environ) and not (tmp_path / "scratch").exists()

"""`replay` and `render` on a run's snapshots, without retraining."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import RecordingSink, epoch_dir, free_port
from rrd_reading import read_rrd

from lightning_ner_viz import NerVizWarning, load_snapshots
from lightning_ner_viz.cli import main
from lightning_ner_viz.cli.render import render_snapshots

SCRIPT = Path(sys.executable).with_name("lightning-ner-viz")


@pytest.fixture()
def run_dir(tmp_path, fit_with_callback):
    fit_with_callback(root=tmp_path / "run", epochs=3, max_tokens=150, trainer={"limit_train_batches": 3})
    return tmp_path / "run"


def _cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run the CLI in this process (the console script itself is tested in test_cli_demo.py)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's --help and usage errors
            code = int(exit_.code or 0)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_replay_save_builds_a_recording_from_snapshots(run_dir, tmp_path):
    out = tmp_path / "replayed.rrd"
    done = _cli("replay", str(run_dir / "ner_viz"), "--save", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_rrd(out)
    assert [r["epoch"] for r in rows["/embeddings/hidden"]] == [0, 1, 2]
    assert [r["epoch"] for r in rows["/embeddings/metrics/hidden/cka_prev"]] == [1, 2]


@pytest.mark.parametrize("sink", ["rerun", "tensorboard", "wandb"])
def test_render_with_another_sink(run_dir, tmp_path, sink):
    out = tmp_path / ("out.rrd" if sink == "rerun" else "outdir")
    done = _cli("render", str(run_dir), "--reducer", "pca", "--frame", "fixed", "--sink", sink, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    if sink == "rerun":
        rows = read_rrd(out)
        assert [r["epoch"] for r in rows["/embeddings/emissions"]] == [0, 1, 2]
        # the label issues again, from the token dynamics on disk: the newest epoch kept its probability rows
        assert [r["epoch"] for r in rows["/embeddings/label_issues/top"]] == [2]
    elif sink == "tensorboard":
        config = (out / "projector_config.pbtxt").read_text()
        assert config.count("embeddings {") == 6  # 3 epochs x 2 views
    else:
        run = next(out.rglob("offline-run-*"))
        tables = (run / "files" / "media" / "table").rglob("table_*.table.json")
        assert len(list(tables)) == 9  # 3 epochs x (2 views + entities)


def test_render_html(run_dir, tmp_path):
    out = tmp_path / "report.html"
    done = _cli("render", str(run_dir / "ner_viz"), "--sink", "html", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 100_000 and "<html" in out.read_text()[:2000].lower()
    assert "(pca, frame procrustes)" in done.stdout  # the default frame, resolved for the reducer


def test_render_aligned_umap_logs_views_and_groups(run_dir, tmp_path):
    out = tmp_path / "aligned.rrd"
    done = _cli("render", str(run_dir), "--frame", "aligned", "--out", str(out), timeout=400)  # umap by default
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(umap, frame aligned)" in done.stdout
    rows = read_rrd(out)
    assert [len(c["Points3D:positions"]) for c in rows["/embeddings/hidden"]] == [150, 150, 150]
    snapshots = load_snapshots(run_dir / "ner_viz")
    assert "entities" in snapshots[0].groups
    layouts = [*snapshots[0].views, *snapshots[0].groups]  # said before AlignedUMAP starts, then after each layout
    points = sum(len(s) for s in snapshots) * len(snapshots[0].views) + sum(len(s.groups["entities"]) for s in snapshots)
    assert (f"AlignedUMAP lays out 3 snapshots together, {len(layouts)} layouts ({', '.join(layouts)}), {points:,} "
            "points in all: about") in done.stderr, done.stderr[-2000:]
    assert "layout 'hidden' done" in done.stderr and "left." in done.stderr and "AlignedUMAP done in" in done.stderr
    for name in snapshots[0].groups:
        clouds = [r for r in rows[f"/embeddings/{name}"] if r.get("Points3D:positions") is not None]
        assert [len(c["Points3D:positions"]) for c in clouds] == [len(s.groups[name]) for s in snapshots]


def test_render_snapshots_isolates_a_failing_sink_and_logs_groups(run_dir):
    snapshots = load_snapshots(run_dir / "ner_viz")
    failing, recording = RecordingSink(fail_with=OSError("disk full")), RecordingSink()
    with pytest.warns(NerVizWarning, match="disk full"):
        failures = render_snapshots(snapshots, [failing, recording], reducer="pca", frame="fixed", n_components=2)
    assert len(failures) == 1 and "disk full" in failures[0]
    assert recording.epochs == [0, 1, 2] and recording.closed and failing.closed
    assert {(g.group.epoch, g.name) for g in recording.groups} == {(e, "entities") for e in (0, 1, 2)}
    assert {g.coords.shape[1] for g in recording.groups} == {2}


def test_snapshot_links_out_of_the_root_are_refused(run_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (run_dir / "ner_viz" / "epoch=0009").symlink_to(outside)
    done = _cli("render", str(run_dir / "ner_viz"), "--out", str(tmp_path / "x.rrd"))
    assert done.returncode == 2 and "outside" in done.stderr


def test_render_skips_a_damaged_epoch_with_a_warning_and_strict_refuses(run_dir, tmp_path):
    bad = epoch_dir(run_dir / "ner_viz", 1) / "meta.json"
    bad.write_text('{"format_version": 1, "epoch": 1}')  # valid JSON, missing keys
    out = tmp_path / "skipped.rrd"
    with pytest.warns(NerVizWarning, match="epoch=0001-step=") as record:
        done = _cli("render", str(run_dir), "--reducer", "pca", "--frame", "fixed", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["epoch"] for r in read_rrd(out)["/embeddings/hidden"]] == [0, 2]
    assert sum("missing" in str(w.message) for w in record) == 1
    strict = _cli("render", str(run_dir), "--strict", "--out", str(tmp_path / "strict.rrd"))
    assert strict.returncode == 2 and str(bad) in strict.stderr
    assert not (tmp_path / "strict.rrd").exists()


def test_missing_snapshot_dir_is_a_clear_error(tmp_path):
    done = _cli("replay", str(tmp_path / "nope"))
    assert done.returncode == 2 and "not a directory of snapshots" in done.stderr


def test_replay_web_serves_the_viewer_on_loopback(run_dir, tmp_path):
    rrd = tmp_path / "r.rrd"
    assert _cli("replay", str(run_dir), "--save", str(rrd)).returncode == 0
    grpc, web = free_port(), free_port()
    proc = subprocess.Popen([str(SCRIPT), "replay", str(rrd), "--web", "--port", str(grpc), "--web-port", str(web)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline and status != 200:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=2).status
            except OSError:
                time.sleep(0.5)
        assert status == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{web}/?url=" in out

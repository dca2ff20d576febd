"""The console script: `lightning-ner-viz demo --out DIR --epochs 3` writes both outputs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from dynamics_reading import read_issues
from rrd_reading import read_rrd
from wandb_reading import history, run_dir

from lightning_ner_viz import load_snapshots
from lightning_ner_viz.cli import main

SCRIPT = Path(sys.executable).with_name("lightning-ner-viz")


def test_demo_writes_recording_wandb_run_and_snapshots(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([str(SCRIPT), "demo", "--out", str(out), "--epochs", "3", "--examples", "800",
                           "--label-noise", "0.05"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"rerun {out / 'embeddings.rrd'}" in done.stdout  # says how to open it
    assert "wandb sync" in done.stdout
    rows = read_rrd(out / "embeddings.rrd")
    assert [r["epoch"] for r in rows["/embeddings/hidden"]] == [0, 1, 2]
    run = run_dir(out)
    epochs = [r["ner_viz/epoch"] for r in history(run) if "ner_viz/epoch" in r]
    assert epochs == [0, 1, 2]
    tables = sorted((run / "files" / "media" / "table").rglob("table_*.table.json"))  # the per-view token tables
    assert len(tables) == 9 and json.loads(tables[0].read_text())["data"]
    for key in ("errors", "clusters", "span_errors"):  # the analyses' tables, one per epoch
        assert len(list((run / "files" / "media" / "table").rglob(f"{key}_*.table.json"))) == 3, key
    assert [s.epoch for s in load_snapshots(out / "ner_viz")] == [0, 1, 2]
    # 5% of the validation words' labels flipped: the flipped tokens lead label_issues.csv
    flipped = {(int(r["sentence_id"]), int(r["position"])) for r in csv.DictReader((out / "flipped_labels.csv").open())}
    ranked = [(int(r["sentence_id"]), int(r["position"])) for r in read_issues(out / "ner_viz")]
    k = len(flipped)
    assert k > 30 and len(set(ranked[:k]) & flipped) >= 0.9 * k  # precision at k >= 0.9


def test_bad_data_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("justoneword\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["demo", "--out", str(tmp_path / "o"), "--data", str(bad)])
    assert code == 2 and "expected 'word ... label'" in err.getvalue()

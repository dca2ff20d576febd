"""WandbSink with snapshot keys: a baseline, two validations of one epoch and a later epoch, each its own
row, table and plot, read back from real offline runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from wandb_reading import history, run_dir

from lightning_ner_viz.sinks import WandbSink
from lightning_ner_viz.snapshot import Snapshot

LABELS = ["O", "B-X", "I-X"]
ENTITY_TYPES = ["O", "X"]
KEYS = [("validate", 0, 0), ("fit", 0, 5), ("fit", 0, 10), ("fit", 1, 20)]
"""(stage, epoch, step) of the four snapshots, in the order they are logged: a baseline, two
validations of epoch 0 (``val_check_interval=0.5``) and one of epoch 1."""
NAMES = ["validate=00-step=0000000", "epoch=0000-step=0000005", "epoch=0000-step=0000010", "epoch=0001-step=0000020"]
LABELS_SHOWN = ["baseline · validate 0 · step 0", "epoch 0 · step 5", "epoch 0 · step 10", "epoch 1 · step 20"]
MONOTONIC = "monotonically increasing"
"""In wandb's warning when a row is logged at a smaller ``step=`` than the run's current step."""


def make_snapshot(stage: str, epoch: int, step: int, n: int) -> Snapshot:
    """``n`` tokens (so every snapshot has its own size) with an ``entities`` group of 3 rows."""
    rng = np.random.default_rng(step)
    gold = rng.integers(0, len(LABELS), n)

    def build(rows: int, view: str, names: list[str], dims: int) -> Snapshot:
        labels = gold[:rows] % len(names)
        return Snapshot(
            epoch=epoch, step=step, stage=stage, token_id=np.arange(rows), sentence_id=np.zeros(rows, dtype=np.int64),
            position=np.arange(rows), token=[f"t{i}" for i in range(rows)], word=[f"w{i}" for i in range(rows)],
            gold=labels, pred=labels, views={view: rng.normal(size=(rows, dims)).astype(np.float32)},
            label_names=names,
        )

    snapshot = build(n, "hidden", LABELS, 6)
    snapshot.groups = {"entities": build(3, "entities", ENTITY_TYPES, 6)}
    return snapshot


def log_snapshot(sink: WandbSink, snapshot: Snapshot) -> None:
    """Log ``snapshot`` as the renderer does: ``log_epoch``, then one ``log_group`` per group."""
    coords = {v: np.full((len(snapshot), 3), snapshot.step, dtype=np.float32) for v in snapshot.views}
    sink.log_epoch(snapshot, coords, {"sample_accuracy": 1.0 / (1 + snapshot.step), "hidden/cka_prev": 0.5})
    for name, group in snapshot.groups.items():
        sink.log_group(name, group, np.zeros((len(group), 3), dtype=np.float32))


def _snapshots() -> list[Snapshot]:
    return [make_snapshot(stage, epoch, step, n=8 + i) for i, (stage, epoch, step) in enumerate(KEYS)]


def _media(run: Path, row: dict, key: str) -> dict:
    return json.loads((run / "files" / row[key]["path"]).read_text())


def test_four_snapshots_keep_their_own_rows_tables_and_plots(tmp_path):
    sink = WandbSink(init_kwargs={"dir": str(tmp_path), "project": "ner-viz-test"})
    sink.setup(None, tmp_path)
    snapshots = _snapshots()
    for snapshot in snapshots:
        log_snapshot(sink, snapshot)
    sink.close()

    run = run_dir(tmp_path)
    rows = [r for r in history(run) if "ner_viz/epoch" in r]
    assert [(r["ner_viz/epoch"], r["ner_viz/global_step"]) for r in rows] == [(e, s) for _, e, s in KEYS]
    assert [r["_step"] for r in rows] == sorted({r["_step"] for r in rows})  # one row each, W&B's step growing
    assert not any("ner_viz/stage" in r for r in rows)  # not numeric: in the tables and titles instead

    baseline, *fit = rows  # the baseline's scalars are apart, so the fit's curves start at step 5
    assert baseline["ner_viz/baseline/n_tokens"] == 8 and baseline["ner_viz/baseline/sample_accuracy"] == 1.0
    assert baseline["ner_viz/baseline/hidden/cka_prev"] == 0.5
    fit_scalars = {"ner_viz/n_tokens", "ner_viz/sample_accuracy", "ner_viz/hidden/cka_prev"}
    assert not fit_scalars & set(baseline)
    assert all(fit_scalars <= set(r) for r in fit)
    assert [r["ner_viz/n_tokens"] for r in fit] == [9, 10, 11]
    assert [r["ner_viz/sample_accuracy"] for r in fit] == pytest.approx([1 / 6, 1 / 11, 1 / 21])
    assert not any(k.startswith("ner_viz/baseline/") for r in fit for k in r)

    for key in ("ner_viz/hidden/table", "ner_viz/entities/table", "ner_viz/hidden/scatter", "ner_viz/entities/scatter"):
        paths = [r[key]["path"] for r in rows]
        assert len(set(paths)) == 4, paths  # nothing overwritten
    for row, snapshot, name, label in zip(rows, snapshots, NAMES, LABELS_SHOWN):
        table = _media(run, row, "ner_viz/hidden/table")
        columns = table["columns"]
        assert columns[:10] == ["token_id", "token", "word", "sentence_id", "gold", "predicted", "correct",
                                "snapshot", "epoch", "global_step"]
        assert len(table["data"]) == len(snapshot)
        assert {(r[7], r[8], r[9]) for r in table["data"]} == {(name, snapshot.epoch, snapshot.step)}
        assert {r[columns.index("x")] for r in table["data"]} == {float(snapshot.step)}
        groups = _media(run, row, "ner_viz/entities/table")
        assert {r[groups["columns"].index("snapshot")] for r in groups["data"]} == {name}
        assert _media(run, row, "ner_viz/hidden/scatter")["layout"]["title"]["text"] == f"hidden embeddings, {label}"
        assert _media(run, row, "ner_viz/entities/scatter")["layout"]["title"]["text"] == f"entities embeddings, {label}"


_WITH_LOGGER = """
import sys, types, wandb
sys.path.insert(0, {tests!r})
from lightning.pytorch.loggers import WandbLogger
from test_wandb_sink import _snapshots, log_snapshot
from lightning_ner_viz.sinks import WandbSink

control = wandb.init(project="ner-viz-test", dir={control!r})  # proves the warning would be seen
control.log({{"a": 1}}, step=5)
control.log({{"a": 2}}, step=3)
control.finish()

logger = WandbLogger(project="ner-viz-test", save_dir={logged!r}, offline=True)
sink = WandbSink()
sink.setup(types.SimpleNamespace(loggers=[logger], default_root_dir={logged!r}))
for snapshot in _snapshots():  # the Trainer logs its own rows between the validations: more rows than steps
    log_snapshot(sink, snapshot)
    for step in range(snapshot.step + 1, snapshot.step + 6):
        logger.log_metrics({{"train_loss": 1.0 / step}}, step=step)
        logger.log_metrics({{"lr": 0.1}}, step=step)
sink.close()
logger.experiment.finish()
"""


def test_with_a_wandb_logger_no_step_goes_backwards(tmp_path):
    """In a user's script (wandb not silenced), a baseline logged before the Trainer's rows and several
    validations per epoch never make W&B warn that steps must be monotonically increasing."""
    control, logged = tmp_path / "control", tmp_path / "logged"
    code = _WITH_LOGGER.format(tests=str(Path(__file__).parent), control=str(control), logged=str(logged))
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "WANDB_SERVICE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    warned = [line for line in done.stderr.splitlines() if MONOTONIC in line]
    assert len(warned) == 1 and "step 3 that is less than the current step 5" in warned[0], done.stderr[-3000:]
    run = run_dir(logged)  # only the control run warned; its console log may lag, so stderr is what counts
    output = run / "files" / "output.log"  # written when the run printed anything
    assert not output.exists() or MONOTONIC not in output.read_text()
    rows = history(run)
    ours = [r for r in rows if "ner_viz/epoch" in r]
    assert [r["ner_viz/global_step"] for r in ours] == [s for _, _, s in KEYS]
    assert "ner_viz/baseline/n_tokens" in ours[0] and all("ner_viz/n_tokens" in r for r in ours[1:])
    assert len([r for r in rows if "train_loss" in r]) == 20  # none of the Trainer's rows was dropped
    assert [r["_step"] for r in rows] == list(range(len(rows)))


def test_a_group_without_its_snapshot_row_still_names_the_snapshot(tmp_path):
    sink = WandbSink(init_kwargs={"dir": str(tmp_path), "project": "ner-viz-test"})
    sink.setup(SimpleNamespace(loggers=[], default_root_dir=str(tmp_path)), tmp_path)
    snapshot = make_snapshot("validate", 0, 0, n=8)
    sink.log_group("entities", snapshot.groups["entities"], np.zeros((3, 3), dtype=np.float32))
    sink.close()
    run = run_dir(tmp_path)
    (row,) = [r for r in history(run) if "ner_viz/entities/table" in r]
    assert (row["ner_viz/epoch"], row["ner_viz/global_step"]) == (0, 0)
    table = _media(run, row, "ner_viz/entities/table")
    assert {r[table["columns"].index("snapshot")] for r in table["data"]} == {NAMES[0]}


def test_a_baseline_validate_then_mid_epoch_validations_in_a_real_fit(tmp_path, bert_config, datamodule):
    from conftest import validate_then_fit_mid_epoch

    sink = WandbSink(init_kwargs={"dir": "wb"})  # its own run, under the snapshot root
    snapshots = validate_then_fit_mid_epoch(tmp_path, sink, bert_config, datamodule)
    run = run_dir(tmp_path / "ner_viz" / "wb")  # one run for the validate() and the fit
    rows = [r for r in history(run) if "ner_viz/epoch" in r]
    assert [(r["ner_viz/epoch"], r["ner_viz/global_step"]) for r in rows] == [(s.epoch, s.step) for s in snapshots]
    assert "ner_viz/baseline/n_tokens" in rows[0] and "ner_viz/n_tokens" not in rows[0]
    assert all("ner_viz/n_tokens" in r and "ner_viz/baseline/n_tokens" not in r for r in rows[1:])
    names = [{t[7] for t in _media(run, r, "ner_viz/hidden/table")["data"]} for r in rows]
    assert names == [{s.key.name} for s in snapshots]

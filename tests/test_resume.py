"""Resume: stop after epoch 2, resume to epoch 4, read back epochs 0-3 once each, same tokens."""

from __future__ import annotations

import numpy as np
import pytest
from dynamics_reading import fit_records, plain_dynamics, read_issues, token_id
from lightning.pytorch.callbacks import ModelCheckpoint
from rrd_reading import read_rrd
from wandb_reading import history

from lightning_ner_viz import load_snapshots
from lightning_ner_viz.sinks import RerunSink, WandbSink


def test_resume_continues_recording_run_and_token_set(tmp_path, fit_with_callback):
    first, second = (  # the same sinks and checkpoints: 2 epochs, then resumed from the last checkpoint to 4
        fit_with_callback(sinks=[RerunSink(path=tmp_path / "emb.rrd"), WandbSink(init_kwargs={"dir": str(tmp_path)})],
                          max_tokens=120, epochs=epochs, ckpt_path=ckpt_path, trainer={"limit_train_batches": 3},
                          callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)]).callback
        for epochs, ckpt_path in ((2, None), (4, tmp_path / "ckpt" / "last.ckpt"))
    )
    assert second.logged_epochs == [0, 1, 2, 3]

    files = sorted(tmp_path.glob("emb*.rrd"))
    assert [f.name for f in files] == ["emb-1.rrd", "emb.rrd"]  # a second file the viewer merges
    clouds = [row for f in files for row in read_rrd(f)["/embeddings/hidden"]]
    assert sorted(r["epoch"] for r in clouds) == [0, 1, 2, 3]  # no epoch twice
    assert all(r["token_id"] == clouds[0]["token_id"] for r in clouds)
    rerun_sink, wandb_sink = first.resolved_sinks
    assert second.resolved_sinks[0].recording_id == rerun_sink.recording_id
    assert second.resolved_sinks[1].run_id == wandb_sink.run_id
    runs = sorted(tmp_path.rglob(f"offline-run-*-{wandb_sink.run_id}*"))  # "-1" when both start in one second
    assert len(runs) == 2, sorted(tmp_path.rglob("offline-run-*"))  # the same W&B run id, continued
    epochs = [r["ner_viz/epoch"] for run in runs for r in history(run) if "ner_viz/epoch" in r]
    assert sorted(epochs) == [0, 1, 2, 3], [(run, [sorted(r) for r in history(run)]) for run in runs]

    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert [s.epoch for s in snapshots] == [0, 1, 2, 3]
    assert all(np.array_equal(s.token_id, snapshots[0].token_id) for s in snapshots)

    # the label issues' dynamics continue: the resumed run folds epochs 0-3 in, each once
    records = fit_records(tmp_path / "ner_viz")
    assert len(records) == 4
    plain = plain_dynamics(records)
    for row in read_issues(tmp_path / "ner_viz"):
        confidence, variability, correctness, flips = plain[token_id(row)]
        assert float(row["confidence"]) == pytest.approx(confidence, abs=1e-4)
        assert float(row["variability"]) == pytest.approx(variability, abs=1e-4)
        assert (float(row["correctness"]), int(row["flips"])) == (pytest.approx(correctness, abs=1e-4), flips)

"""A failing sink never kills training: it warns once with the cause, the snapshot stays on disk."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from conftest import RecordingSink, free_port
from rrd_reading import read_rrd

from lightning_ner_viz import NerVizWarning, load_snapshots
from lightning_ner_viz.sinks import RerunSink, WandbSink


def _disk_full() -> RecordingSink:
    """A user's sink with a bug."""
    return RecordingSink(fail_with=OSError(28, "No space left on device"))


class ExplodingReducer:
    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        raise FloatingPointError("reducer diverged")


def _messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, NerVizWarning)]


def test_a_raising_sink_warns_once_and_the_others_go_on(tmp_path, fit_with_callback):
    bad, rrd = _disk_full(), tmp_path / "ok.rrd"
    with pytest.warns(NerVizWarning) as record:
        trainer, _ = fit_with_callback(epochs=3, sinks=[bad, RerunSink(path=rrd)])
    assert trainer.current_epoch == 3 and bad.epochs == [0]  # dropped after its first failure, not retried
    failures = [m for m in _messages(record) if "RecordingSink" in m]
    assert len(failures) == 1 and "No space left on device" in failures[0]
    assert len(read_rrd(rrd)["/embeddings/hidden"]) == 3
    assert len(load_snapshots(tmp_path / "ner_viz")) == 3  # nothing captured is lost


def test_strict_reraises_the_sink_error(fit_with_callback):
    with pytest.raises(OSError, match="No space left"):
        fit_with_callback(sinks=[_disk_full()], strict=True)


def test_unwritable_recording_path_with_strict_false_warns_and_training_finishes(tmp_path, fit_with_callback):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    with pytest.warns(NerVizWarning, match="RerunSink") as record:
        trainer, callback = fit_with_callback(sinks=[RerunSink(path=blocker / "emb.rrd")], strict=False)
    assert trainer.current_epoch == 2 and callback.resolved_sinks == []  # trained without it
    assert any("not_a_dir" in m and "Training goes on without" in m for m in _messages(record)), _messages(record)
    assert len(load_snapshots(tmp_path / "ner_viz")) == 2


def test_viewer_that_stops_answering_warns_and_training_finishes(tmp_path, fit_with_callback):
    with socket.socket() as listener:  # accepts connections at setup, but never speaks Rerun's protocol
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sink = RerunSink(connect=f"rerun+http://127.0.0.1:{listener.getsockname()[1]}/proxy")
        sink.flush_timeout = 1.0
        with pytest.warns(NerVizWarning) as record:
            trainer, callback = fit_with_callback(epochs=1, sinks=[sink])
    assert trainer.current_epoch == 1 and callback.logged_epochs == []
    assert any("RerunSink" in m for m in _messages(record)), _messages(record)
    assert len(load_snapshots(tmp_path / "ner_viz")) == 1


def test_wandb_failure_warns_and_training_finishes(fit_with_callback):
    sink = WandbSink(init_kwargs={"mode": "not-a-mode"})  # wandb.init itself rejects this
    with pytest.warns(NerVizWarning) as record:
        trainer, callback = fit_with_callback(sinks=[sink])
    assert trainer.current_epoch == 2 and callback.logged_epochs == []
    assert any("WandbSink" in m for m in _messages(record)), _messages(record)
    assert sum("No sink logged epoch" in m for m in _messages(record)) == 2  # one per epoch, naming the fix


def test_worker_error_is_reported_not_lost(tmp_path, fit_with_callback):
    with pytest.warns(NerVizWarning, match="reducer diverged"):
        trainer, _ = fit_with_callback(reducer=ExplodingReducer())
    assert trainer.current_epoch == 2
    with pytest.raises(FloatingPointError):
        fit_with_callback(root=tmp_path / "strict", reducer=ExplodingReducer(), strict=True)


def test_unwritable_snapshot_dir_warns_and_sinks_still_log(tmp_path, fit_with_callback):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rrd = tmp_path / "emb.rrd"
    with pytest.warns(NerVizWarning, match="Could not save"):
        fit_with_callback(sinks=[RerunSink(path=rrd)], save_dir=str(blocker / "snaps"))
    assert len(read_rrd(rrd)["/embeddings/hidden"]) == 2

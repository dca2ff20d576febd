"""A failing sink never kills training: it warns once with the cause, the snapshot stays on disk."""

from __future__ import annotations

import socket

import lightning.pytorch as pl
import numpy as np
import pytest
from conftest import trainer_kwargs
from outside_model import UserCrfTagger
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz._warnings import NerVizWarning
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.sinks import RerunSink, WandbSink
from lightning_ner_viz.sinks.base import Sink


class ExplodingSink(Sink):
    """A user's sink with a bug."""

    def __init__(self) -> None:
        self.calls = 0

    def log_epoch(self, snapshot, coords, metrics) -> None:
        self.calls += 1
        raise OSError(28, "No space left on device")


class ExplodingReducer:
    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        raise FloatingPointError("reducer diverged")


def _fit(tmp_path, datamodule, bert_config, epochs: int = 2, **callback_kwargs):
    callback = EmbeddingDriftCallback(max_tokens=60, label_names=LABEL_NAMES, **callback_kwargs)
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=epochs, limit_train_batches=2), callbacks=[callback])
    trainer.fit(model, datamodule)
    return trainer, callback


def _messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, NerVizWarning)]


def test_a_raising_sink_warns_once_and_the_others_go_on(tmp_path, datamodule, bert_config):
    bad, rrd = ExplodingSink(), tmp_path / "ok.rrd"
    with pytest.warns(NerVizWarning) as record:
        trainer, _ = _fit(tmp_path, datamodule, bert_config, epochs=3, sinks=[bad, RerunSink(path=rrd)])
    assert trainer.current_epoch == 3 and bad.calls == 3
    failures = [m for m in _messages(record) if "ExplodingSink" in m]
    assert len(failures) == 1 and "No space left on device" in failures[0]
    assert len(read_rrd(rrd)["/embeddings/hidden"]) == 3
    assert len(load_snapshots(tmp_path / "ner_viz")) == 3  # nothing captured is lost


def test_strict_reraises_the_sink_error(tmp_path, datamodule, bert_config):
    with pytest.raises(OSError, match="No space left"):
        _fit(tmp_path, datamodule, bert_config, sinks=[ExplodingSink()], strict=True)


def test_unwritable_recording_path_warns_and_training_finishes(tmp_path, datamodule, bert_config):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    with pytest.warns(NerVizWarning, match="RerunSink") as record:
        trainer, _ = _fit(tmp_path, datamodule, bert_config, sinks=[RerunSink(path=blocker / "emb.rrd")])
    assert trainer.current_epoch == 2
    assert any("FileExistsError" in m or "NotADirectoryError" in m for m in _messages(record)), _messages(record)
    assert len(load_snapshots(tmp_path / "ner_viz")) == 2


def test_viewer_that_is_not_there_warns_and_training_finishes(tmp_path, datamodule, bert_config):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = RerunSink(connect=f"rerun+http://127.0.0.1:{port}/proxy")
    sink.flush_timeout = 1.0
    with pytest.warns(NerVizWarning, match="RerunSink"):
        trainer, _ = _fit(tmp_path, datamodule, bert_config, epochs=1, sinks=[sink])
    assert trainer.current_epoch == 1
    assert len(load_snapshots(tmp_path / "ner_viz")) == 1


def test_wandb_failure_warns_and_training_finishes(tmp_path, datamodule, bert_config):
    sink = WandbSink(init_kwargs={"mode": "not-a-mode"})  # wandb.init itself rejects this
    with pytest.warns(NerVizWarning, match="WandbSink"):
        trainer, _ = _fit(tmp_path, datamodule, bert_config, sinks=[sink])
    assert trainer.current_epoch == 2


def test_worker_error_is_reported_not_lost(tmp_path, datamodule, bert_config):
    with pytest.warns(NerVizWarning, match="reducer diverged"):
        trainer, _ = _fit(tmp_path, datamodule, bert_config, sinks=[], reducer=ExplodingReducer())
    assert trainer.current_epoch == 2
    with pytest.raises(FloatingPointError):
        _fit(tmp_path / "strict", datamodule, bert_config, sinks=[], reducer=ExplodingReducer(), strict=True)


def test_unwritable_snapshot_dir_warns_and_sinks_still_log(tmp_path, datamodule, bert_config):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rrd = tmp_path / "emb.rrd"
    with pytest.warns(NerVizWarning, match="Could not save"):
        _fit(tmp_path, datamodule, bert_config, sinks=[RerunSink(path=rrd)], save_dir=str(blocker / "snaps"))
    assert len(read_rrd(rrd)["/embeddings/hidden"]) == 2

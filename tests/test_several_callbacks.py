"""Several EmbeddingDriftCallbacks on one Trainer: each writes its own outputs, a shared output is refused
at setup, and each keeps its own checkpoint state."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.sinks import HtmlSink, RerunSink


def _callback(**kwargs) -> EmbeddingDriftCallback:
    return EmbeddingDriftCallback(max_tokens=60, label_names=LABEL_NAMES, **kwargs)


def test_two_callbacks_with_their_own_save_dir_write_two_readable_recordings(tmp_path, fit_with_callback):
    layer0 = _callback(hidden_module="backbone.encoder.layer.0", save_dir=str(tmp_path / "layer0"), sinks="auto")
    last = _callback(save_dir=str(tmp_path / "last"), sinks="auto")
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit_with_callback(layer0, callbacks=[last, ckpt])
    last.wait()  # the fixture waits for the first callback only

    for name, callback in (("layer0", layer0), ("last", last)):
        root = tmp_path / name
        assert [s.location for s in callback.resolved_sinks] == [str(root / "embeddings.rrd"),
                                                                  str(root / "embeddings.html")]
        clouds = read_rrd(root / "embeddings.rrd")["/embeddings/hidden"]
        assert sorted(row["epoch"] for row in clouds) == [0, 1]  # decodes, each epoch once
        assert [s.epoch for s in load_snapshots(root)] == [0, 1]
    first, second = (load_snapshots(tmp_path / n)[0].views["hidden"] for n in ("layer0", "last"))
    assert not torch.allclose(torch.as_tensor(first), torch.as_tensor(second))  # two layers, not one written twice

    assert layer0.state_key != last.state_key
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert saved[layer0.state_key]["captured_epochs"] == saved[last.state_key]["captured_epochs"] == [0, 1]
    assert saved[layer0.state_key]["sinks"]["RerunSink"] != saved[last.state_key]["sinks"]["RerunSink"]


def test_two_callbacks_on_one_snapshot_root_are_refused_before_training(tmp_path, fit_with_callback):
    first = _callback(hidden_module="backbone.encoder.layer.0", sinks=[])
    second = _callback(sinks=[])  # the same default save_dir: <default_root_dir>/ner_viz
    with pytest.raises(ValueError, match="both write") as raised:
        fit_with_callback(first, callbacks=[second])
    message = str(raised.value)
    assert "backbone.encoder.layer.0" in message and "save_dir" in message  # names both, says what to change
    assert not list((tmp_path / "ner_viz").glob("epoch=*"))


def test_two_sinks_on_one_file_are_refused_naming_both(tmp_path, fit_with_callback):
    with pytest.raises(ValueError, match=r"RerunSink\(path=.*\) .* and RerunSink\(path=.*\) .* both write .*emb\.rrd"):
        fit_with_callback(sinks=[RerunSink(path="emb.rrd"), RerunSink(path=tmp_path / "ner_viz" / "emb.rrd")])
    with pytest.raises(ValueError, match="both write"):
        fit_with_callback(_callback(sinks=[HtmlSink("a.html")], save_dir=str(tmp_path / "x")),
                          callbacks=[_callback(sinks=[HtmlSink(tmp_path / "x" / "a.html")], hidden_module="backbone",
                                               save_dir=str(tmp_path / "y"))])


def test_the_same_callback_may_fit_then_validate(tmp_path, fit_with_callback):
    trainer, callback = fit_with_callback(sinks=[RerunSink(path="emb.rrd")], epochs=1)
    trainer.validate(trainer.lightning_module, datamodule=trainer.datamodule, verbose=False)  # claims its files again
    assert callback.logged_epochs == [0]  # not refused (its own files); the validate run is its own snapshot
    assert callback.logged_snapshots == ["epoch=0000-step=0000002", "validate=00-step=0000002"]

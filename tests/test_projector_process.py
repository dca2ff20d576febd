"""UMAP/t-SNE project in a pooled low-priority child process; checkpoints never wait for rendering."""

from __future__ import annotations

import os
import signal
import threading

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import trainer_kwargs
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from outside_model import UserCrfTagger
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz._warnings import NerVizWarning
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.projection.projector import Projector
from lightning_ner_viz.projection.process import acquire, release
from lightning_ner_viz.store import RENDER_STATE
from lightning_ner_viz.sinks import RerunSink
from lightning_ner_viz.sinks.base import Sink


def _fit(tmp_path, datamodule, bert_config, epochs=2, callbacks=(), ckpt_path=None, **kwargs):
    callback = EmbeddingDriftCallback(max_tokens=80, label_names=LABEL_NAMES, **kwargs)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=epochs, limit_train_batches=2,
                                          enable_checkpointing=ckpt_path is not None or any(
                                              isinstance(c, ModelCheckpoint) for c in callbacks)),
                         callbacks=[callback, *callbacks])
    torch.manual_seed(0)
    trainer.fit(UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES)), datamodule, ckpt_path=ckpt_path)
    return trainer, callback


def test_child_process_gives_the_same_coordinates_as_the_thread(tmp_path, datamodule, bert_config):
    _, in_thread = _fit(tmp_path / "t", datamodule, bert_config, reducer="umap", frame="fixed",
                        background="thread", sinks=[RerunSink(path=tmp_path / "t.rrd")])
    _, in_child = _fit(tmp_path / "p", datamodule, bert_config, reducer="umap", frame="fixed",
                       sinks=[RerunSink(path=tmp_path / "p.rrd")])
    assert in_thread.renderer.place == "thread" and in_child.renderer.place == "process"
    a, b = read_rrd(tmp_path / "t.rrd")["/embeddings/hidden"], read_rrd(tmp_path / "p.rrd")["/embeddings/hidden"]
    assert [r["epoch"] for r in b] == [0, 1]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x["Points3D:positions"], y["Points3D:positions"], atol=1e-4)


def test_the_child_runs_at_low_priority_and_is_reused():
    first = acquire(threads=1)
    first.start(Projector("pca", 3, 0))  # a round trip: the child has set its priority by now
    pid = first._proc.pid
    if hasattr(os, "getpriority"):
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    if hasattr(os, "SCHED_IDLE"):
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    release(first)
    again = acquire(threads=1)
    assert again._proc.pid == pid  # numba code compiled once per training process, not once per fit
    release(again)


class KillTheChild(Callback):
    """Kills the projector process after the first validation epoch, as the OOM killer would."""

    def __init__(self, drift: EmbeddingDriftCallback) -> None:
        self.drift = drift

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            self.drift.wait_until_rendered()
            os.kill(self.drift.renderer.child_pid, signal.SIGKILL)


def test_a_dead_child_warns_and_rendering_goes_on_in_process(tmp_path, datamodule, bert_config):
    rrd = tmp_path / "emb.rrd"
    callback = EmbeddingDriftCallback(max_tokens=80, label_names=LABEL_NAMES, reducer="umap", frame="fixed",
                                      sinks=[RerunSink(path=rrd)])
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=3, limit_train_batches=2),
                         callbacks=[callback, KillTheChild(callback)])
    with pytest.warns(NerVizWarning, match="projector process exited") as record:
        trainer.fit(UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES)), datamodule)
    clouds = read_rrd(rrd)["/embeddings/hidden"]
    assert [r["epoch"] for r in clouds] == [0, 1, 2], [str(w.message) for w in record]
    extent = np.ptp(np.asarray(clouds[0]["Points3D:positions"]), axis=0).max()
    moved = np.abs(np.asarray(clouds[2]["Points3D:positions"]) - np.asarray(clouds[1]["Points3D:positions"])).max()
    assert moved < 0.5 * extent  # the in-process projector continued the child's frame


def test_a_reducer_that_cannot_be_pickled_projects_in_process(tmp_path, datamodule, bert_config):
    class LocalPCA:  # defined in a function: pickle cannot find it
        def fit_transform(self, X):
            X = X - X.mean(0)
            return X @ np.linalg.svd(X, full_matrices=False)[2][:3].T

        def transform(self, X):
            return self.fit_transform(X)

    with pytest.warns(NerVizWarning, match="cannot be sent to a child process"):
        _, callback = _fit(tmp_path, datamodule, bert_config, reducer=LocalPCA(), sinks=[])
    assert callback.renderer.place == "thread" and callback.renderer.rendered_epochs == [0, 1]


class SlowSink(Sink):
    """Holds each epoch until released, like a slow network sink."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.epochs: list[int] = []

    def log_epoch(self, snapshot, coords, metrics) -> None:
        self.release.wait(timeout=60)
        self.epochs.append(snapshot.epoch)


class CheckpointWhilePending(Callback):
    def __init__(self, drift: EmbeddingDriftCallback, sink: SlowSink) -> None:
        self.drift, self.sink, self.states = drift, sink, []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.states.append(self.drift.state_dict())  # what ModelCheckpoint stores
        self.sink.release.set()


def test_a_checkpoint_does_not_wait_for_rendering(tmp_path, datamodule, bert_config):
    sink = SlowSink()
    callback = EmbeddingDriftCallback(max_tokens=80, label_names=LABEL_NAMES, sinks=[sink])
    probe = CheckpointWhilePending(callback, sink)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, limit_train_batches=2), callbacks=[callback, probe])
    trainer.fit(UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES)), datamodule)
    (state,) = probe.states
    assert state["logged_epochs"] == [0] and state["renderer"]["rendered_epochs"] == []  # it did not wait
    assert sink.epochs == [0]


def test_resume_renders_what_was_captured_but_never_rendered(tmp_path, datamodule, bert_config):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    _fit(tmp_path, datamodule, bert_config, epochs=2, callbacks=[ckpt], sinks=[RerunSink(path=tmp_path / "a.rrd")])
    # as if the run died after checkpointing epoch 1 but before epoch 1 reached the sinks
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("EmbeddingDriftCallback")]
    checkpoint["callbacks"][key]["renderer"]["rendered_epochs"] = [0]
    torch.save(checkpoint, tmp_path / "ckpt" / "last.ckpt")
    (tmp_path / "ner_viz" / "epoch=0001" / RENDER_STATE).unlink()

    _fit(tmp_path, datamodule, bert_config, epochs=3, ckpt_path=tmp_path / "ckpt" / "last.ckpt",
         callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt2")], sinks=[RerunSink(path=tmp_path / "b.rrd")])
    assert [r["epoch"] for r in read_rrd(tmp_path / "b.rrd")["/embeddings/hidden"]] == [1, 2]
    assert [s.epoch for s in load_snapshots(tmp_path / "ner_viz")] == [0, 1, 2]
    assert all((tmp_path / "ner_viz" / f"epoch={e:04d}" / RENDER_STATE).is_file() for e in range(3))


class CheckpointWhileCapturing(Callback):
    """Takes the callback's state (what ModelCheckpoint stores) while the capture thread is held back."""

    def __init__(self, drift: EmbeddingDriftCallback, gate: threading.Event) -> None:
        self.drift, self.gate, self.states = drift, gate, []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.states.append(self.drift.state_dict())
        self.gate.set()


class TrackedAtStart(Callback):
    def __init__(self, drift: EmbeddingDriftCallback) -> None:
        self.drift, self.tracked = drift, None

    def on_train_start(self, trainer, pl_module) -> None:
        self.tracked = self.drift.tracked_ids


def test_a_checkpoint_does_not_wait_for_the_capture_and_a_resume_recovers_the_tokens(tmp_path, datamodule,
                                                                                       bert_config):
    gate = threading.Event()
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    decode = model.crf.decode  # only the callback decodes, in its capture thread: hold it until the checkpoint

    def held_decode(*args, **kwargs):
        gate.wait(timeout=30)
        return decode(*args, **kwargs)

    model.crf.decode = held_decode
    callback = EmbeddingDriftCallback(max_tokens=80, label_names=LABEL_NAMES, sinks=[RerunSink(path=tmp_path / "a.rrd")])
    probe = CheckpointWhileCapturing(callback, gate)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=2,
                                          num_sanity_val_steps=0), callbacks=[callback, probe])
    torch.manual_seed(0)
    trainer.fit(model, datamodule)
    (state,) = probe.states
    assert state["capturing_epochs"] == [0] and state["logged_epochs"] == [0]  # listed, not waited for
    assert state["tracked_ids"] is None and callback.tracked_ids is not None
    assert callback.logged_epochs == [0]  # the capture finished after the checkpoint

    # a run that died right after that checkpoint, before epoch 0 was rendered: the resume renders it
    # from its snapshot and takes the tracked tokens from it
    (tmp_path / "ner_viz" / "epoch=0000" / RENDER_STATE).unlink()
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("EmbeddingDriftCallback")]
    checkpoint["callbacks"][key] = state
    torch.save(checkpoint, tmp_path / "last.ckpt")
    resumed = EmbeddingDriftCallback(max_tokens=80, label_names=LABEL_NAMES, sinks=[RerunSink(path=tmp_path / "b.rrd")])
    restored = TrackedAtStart(resumed)
    pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=2),
               callbacks=[resumed, restored]).fit(UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES)), datamodule,
                                        ckpt_path=tmp_path / "last.ckpt")
    assert restored.tracked == callback.tracked_ids  # from the snapshot, before epoch 1 ran
    assert [r["epoch"] for r in read_rrd(tmp_path / "b.rrd")["/embeddings/hidden"]] == [0, 1]
    first, second = load_snapshots(tmp_path / "ner_viz")
    assert np.array_equal(first.token_id, second.token_id)


def test_projector_in_a_child_matches_in_process_on_random_snapshots():
    from lightning_ner_viz.snapshot import Snapshot

    rng = np.random.default_rng(0)
    n = 120

    def snapshot(epoch: int) -> Snapshot:
        return Snapshot(epoch=epoch, step=epoch, token_id=np.arange(n), sentence_id=np.arange(n) // 8,
                        position=np.arange(n) % 8, token=["t"] * n, word=["w"] * n,
                        gold=rng.integers(0, 3, n), pred=rng.integers(0, 3, n),
                        views={"hidden": rng.normal(size=(n, 16)).astype(np.float32)}, label_names=["O", "B-X", "I-X"])

    snapshots = [snapshot(e) for e in range(3)]
    local = Projector("pca", 3, 0, "procrustes")
    child = acquire(threads=1)
    try:
        child.start(Projector("pca", 3, 0, "procrustes"))
        for s in snapshots:
            a, b = local.project(s), child.project(s)
            np.testing.assert_allclose(a.coords["hidden"], b.coords["hidden"], atol=1e-5)
            assert a.metrics.keys() == b.metrics.keys()
    finally:
        release(child)


def test_a_child_killed_mid_send_leaves_no_error_behind():
    """A snapshot larger than the pipe's buffer, sent to a child that was just killed, falls back cleanly."""
    from lightning_ner_viz.projection.renderer import Renderer
    from lightning_ner_viz.snapshot import Snapshot

    rng = np.random.default_rng(0)
    n = 100

    def snapshot(epoch: int) -> Snapshot:
        return Snapshot(epoch=epoch, step=epoch, token_id=np.arange(n), sentence_id=np.arange(n) // 10,
                        position=np.arange(n) % 10, token=["t"] * n, word=["w"] * n, gold=rng.integers(0, 3, n),
                        pred=rng.integers(0, 3, n), views={"hidden": rng.normal(size=(n, 600)).astype(np.float32)},
                        label_names=["O", "B-X", "I-X"])

    renderer = Renderer("pca", 3, 0, [], place="process")
    renderer.render(snapshot(0))
    renderer._process._proc.kill()  # no wait: the next send breaks the pipe part-way
    with pytest.warns(NerVizWarning, match="projector process exited"):
        renderer.render(snapshot(1))
    renderer.render(snapshot(2))
    renderer.close()
    assert renderer.rendered_epochs == [0, 1, 2] and renderer.place == "thread"

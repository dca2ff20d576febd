"""UMAP/t-SNE project in a pooled low-priority child process; checkpoints never wait for rendering."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
import torch
from conftest import RecordingSink, epoch_dir
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from outside_model import UserCrfTagger
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning, Snapshot, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.projection.process import acquire, release
from lightning_ner_viz.projection.projector import Projector
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.sinks import RerunSink
from lightning_ner_viz.store import RENDER_STATE

MAX_TOKENS = 80


def _random_snapshot(rng: np.random.Generator, epoch: int, n: int, dim: int, words: int) -> Snapshot:
    """``n`` tokens in sentences of ``words`` tokens, random labels and ``dim``-wide hidden vectors."""
    return Snapshot(epoch=epoch, step=epoch, token_id=np.arange(n), sentence_id=np.arange(n) // words,
                    position=np.arange(n) % words, token=["t"] * n, word=["w"] * n, gold=rng.integers(0, 3, n),
                    pred=rng.integers(0, 3, n), views={"hidden": rng.normal(size=(n, dim)).astype(np.float32)},
                    label_names=["O", "B-X", "I-X"])


def test_child_process_gives_the_same_coordinates_as_the_thread(tmp_path, fit_with_callback):
    _, in_thread = fit_with_callback(root=tmp_path / "t", torch_seed=0, max_tokens=MAX_TOKENS, reducer="umap",
                                     frame="fixed", background="thread", sinks=[RerunSink(path=tmp_path / "t.rrd")])
    _, in_child = fit_with_callback(root=tmp_path / "p", torch_seed=0, max_tokens=MAX_TOKENS, reducer="umap",
                                    frame="fixed", sinks=[RerunSink(path=tmp_path / "p.rrd")])
    assert in_thread.renderer.place == "thread" and in_child.renderer.place == "process"
    a, b = read_rrd(tmp_path / "t.rrd")["/embeddings/hidden"], read_rrd(tmp_path / "p.rrd")["/embeddings/hidden"]
    assert [r["epoch"] for r in b] == [0, 1]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x["Points3D:positions"], y["Points3D:positions"], atol=1e-4)


def test_the_child_runs_at_low_priority_and_is_reused():
    first = acquire(threads=1)
    first.start(Projector("pca", 3, 0))  # a round trip: the child has set its priority by now
    pid = first.pid
    if hasattr(os, "getpriority"):
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    if hasattr(os, "SCHED_IDLE"):
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    release(first)
    again = acquire(threads=1)
    assert again.pid == pid  # numba code compiled once per training process, not once per fit
    release(again)


class KillTheChild(Callback):
    """Kills the projector process after the first validation epoch, as the OOM killer would."""

    def __init__(self, drift: EmbeddingDriftCallback) -> None:
        self.drift = drift

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            self.drift.wait_until_rendered()
            os.kill(self.drift.renderer.child_pid, signal.SIGKILL)


def test_a_dead_child_warns_and_rendering_goes_on_in_process(tmp_path, fit_with_callback):
    rrd = tmp_path / "emb.rrd"
    callback = EmbeddingDriftCallback(max_tokens=MAX_TOKENS, label_names=LABEL_NAMES, reducer="umap", frame="fixed",
                                      sinks=[RerunSink(path=rrd)])
    with pytest.warns(NerVizWarning, match="projector process exited") as record:
        fit_with_callback(callback, epochs=3, callbacks=[KillTheChild(callback)])
    clouds = read_rrd(rrd)["/embeddings/hidden"]
    assert [r["epoch"] for r in clouds] == [0, 1, 2], [str(w.message) for w in record]
    extent = np.ptp(np.asarray(clouds[0]["Points3D:positions"]), axis=0).max()
    moved = np.abs(np.asarray(clouds[2]["Points3D:positions"]) - np.asarray(clouds[1]["Points3D:positions"])).max()
    assert moved < 0.5 * extent  # the in-process projector continued the child's frame


def test_a_reducer_that_cannot_be_pickled_projects_in_process(fit_with_callback):
    class LocalPCA:  # defined in a function: pickle cannot find it
        def fit_transform(self, X):
            X = X - X.mean(0)
            return X @ np.linalg.svd(X, full_matrices=False)[2][:3].T

        def transform(self, X):
            return self.fit_transform(X)

    with pytest.warns(NerVizWarning, match="cannot be sent to a child process"):
        _, callback = fit_with_callback(torch_seed=0, max_tokens=MAX_TOKENS, reducer=LocalPCA())
    assert callback.renderer.place == "thread" and callback.renderer.rendered_epochs == [0, 1]


class CheckpointWhilePending(Callback):
    """Takes the callback's state while its sink holds the epoch, then lets the sink go on."""

    def __init__(self, drift: EmbeddingDriftCallback, release: threading.Event) -> None:
        self.drift, self.release, self.states = drift, release, []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.states.append(self.drift.state_dict())  # what ModelCheckpoint stores
        self.release.set()


def test_a_checkpoint_does_not_wait_for_rendering(fit_with_callback):
    release = threading.Event()
    sink = RecordingSink(gate=release)  # a slow sink: holds each epoch until released
    callback = EmbeddingDriftCallback(max_tokens=MAX_TOKENS, label_names=LABEL_NAMES, sinks=[sink])
    probe = CheckpointWhilePending(callback, release)
    fit_with_callback(callback, epochs=1, callbacks=[probe])
    (state,) = probe.states
    assert state["captured_epochs"] == [0] and state["renderer"]["rendered"] == []  # it did not wait
    assert state["logged_epochs"] == state["logged"] == []  # no sink had it yet
    assert sink.epochs == [0]


def test_resume_renders_what_was_captured_but_never_rendered(tmp_path, fit_with_callback):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit_with_callback(torch_seed=0, max_tokens=MAX_TOKENS, callbacks=[ckpt], sinks=[RerunSink(path=tmp_path / "a.rrd")])
    # as if the run died after checkpointing epoch 1 but before epoch 1 reached the sinks
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("EmbeddingDriftCallback")]
    checkpoint["callbacks"][key]["renderer"]["rendered"] = [epoch_dir(tmp_path / "ner_viz", 0).name]
    torch.save(checkpoint, tmp_path / "ckpt" / "last.ckpt")
    (epoch_dir(tmp_path / "ner_viz", 1) / RENDER_STATE).unlink()

    fit_with_callback(epochs=3, ckpt_path=tmp_path / "ckpt" / "last.ckpt", torch_seed=0, max_tokens=MAX_TOKENS,
                      callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt2")],
                      sinks=[RerunSink(path=tmp_path / "b.rrd")])
    assert [r["epoch"] for r in read_rrd(tmp_path / "b.rrd")["/embeddings/hidden"]] == [1, 2]
    assert [s.epoch for s in load_snapshots(tmp_path / "ner_viz")] == [0, 1, 2]
    assert all((epoch_dir(tmp_path / "ner_viz", e) / RENDER_STATE).is_file() for e in range(3))


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


def test_a_checkpoint_does_not_wait_for_the_capture_and_a_resume_recovers_the_tokens(tmp_path, fit_with_callback,
                                                                                       bert_config):
    gate = threading.Event()
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    decode = model.crf.decode  # only the callback decodes, in its capture thread: hold it until the checkpoint

    def held_decode(*args, **kwargs):
        gate.wait(timeout=30)
        return decode(*args, **kwargs)

    model.crf.decode = held_decode
    callback = EmbeddingDriftCallback(max_tokens=MAX_TOKENS, label_names=LABEL_NAMES,
                                      sinks=[RerunSink(path=tmp_path / "a.rrd")])
    probe = CheckpointWhileCapturing(callback, gate)
    trainer, _ = fit_with_callback(callback, model=model, epochs=1, callbacks=[probe], torch_seed=0,
                                   trainer={"limit_val_batches": 2})
    (state,) = probe.states
    assert state["capturing"] == state["captured"] == ["epoch=0000-step=0000002"]  # listed, not waited for
    assert state["captured_epochs"] == [0]
    assert state["tracked_ids"] is None and callback.tracked_ids is not None
    assert callback.logged_epochs == [0]  # the capture finished after the checkpoint

    # a run that died right after that checkpoint, before epoch 0 was rendered: the resume renders it
    # from its snapshot and takes the tracked tokens from it
    (epoch_dir(tmp_path / "ner_viz", 0) / RENDER_STATE).unlink()
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("EmbeddingDriftCallback")]
    checkpoint["callbacks"][key] = state
    torch.save(checkpoint, tmp_path / "last.ckpt")
    resumed = EmbeddingDriftCallback(max_tokens=MAX_TOKENS, label_names=LABEL_NAMES,
                                     sinks=[RerunSink(path=tmp_path / "b.rrd")])
    restored = TrackedAtStart(resumed)
    fit_with_callback(resumed, ckpt_path=tmp_path / "last.ckpt", callbacks=[restored], trainer={"limit_val_batches": 2})
    assert restored.tracked == callback.tracked_ids  # from the snapshot, before epoch 1 ran
    assert [r["epoch"] for r in read_rrd(tmp_path / "b.rrd")["/embeddings/hidden"]] == [0, 1]
    first, second = load_snapshots(tmp_path / "ner_viz")
    assert np.array_equal(first.token_id, second.token_id)


def test_projector_in_a_child_matches_in_process_on_random_snapshots():
    rng = np.random.default_rng(0)
    snapshots = [_random_snapshot(rng, e, n=120, dim=16, words=8) for e in range(3)]
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
    rng = np.random.default_rng(0)

    def snapshot(epoch: int) -> Snapshot:
        return _random_snapshot(rng, epoch, n=100, dim=600, words=10)

    renderer = Renderer("pca", 3, 0, [], place="process")
    renderer.render(snapshot(0))
    os.kill(renderer.child_pid, signal.SIGKILL)  # no wait: the next send breaks the pipe part-way
    with pytest.warns(NerVizWarning, match="projector process exited"):
        renderer.render(snapshot(1))
    renderer.render(snapshot(2))
    renderer.close()
    assert renderer.rendered_epochs == [0, 1, 2] and renderer.place == "thread"

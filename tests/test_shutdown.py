"""Bounded shutdown (issue #12): SIGTERM or an exception stops the rendering within seconds, keeps what is
rendered in valid files, leaves the rest on disk and prints the command that renders it; during training
the backlog is bounded by ``max_pending`` (catch-up: the oldest waiting epoch is skipped)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import RecordingSink
from lightning.pytorch.callbacks import Callback
from outside_model import UserCrfTagger
from rrd_reading import read_rrd
from shutdown_helpers import SlowPCA

from lightning_ner_viz import (
    EmbeddingDriftCallback,
    NerVizWarning,
    Snapshot,
    load_snapshots,
)
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.projection.pipeline import RenderPipeline
from lightning_ner_viz.projection.process import ProjectionAbandoned, abandon
from lightning_ner_viz.projection.renderer import Renderer
from lightning_ner_viz.runtime.shutdown import GRACE_SECONDS, sigterm_deferred
from lightning_ner_viz.sinks.html import read_payload
from lightning_ner_viz.store import RENDER_STATE, SnapshotStore, epoch_of

pytestmark = pytest.mark.serial  # wall-clock bounds: run alone, after the parallel tests (scripts/test.sh)

TESTS = Path(__file__).resolve().parent
CLI = Path(sys.executable).parent / "lightning-ner-viz"


def _fit_in_subprocess(root: Path, *options: str) -> subprocess.Popen[str]:
    """``shutdown_helpers.main`` in a fresh interpreter (own cwd, so the package comes from the install)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", "import shutdown_helpers; shutdown_helpers.main()", str(root),
                             *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)


def _stop_with_sigterm(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """Send SIGTERM; the seconds until the process exited, and its stderr (read to the end: the projector
    child, which shares it, has exited too)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    proc.wait(timeout=60)
    seconds = time.monotonic() - sent
    reader.join(timeout=10)
    assert not reader.is_alive(), "a child process of the fit outlived it"
    return seconds, errors[0]


def _render_commands(stderr: str) -> list[str]:
    return re.findall(r"^\s+(lightning-ner-viz render .*)$", stderr, flags=re.MULTILINE)


def _snapshot_epochs(root: Path) -> list[int]:
    return [s.epoch for s in load_snapshots(root / "ner_viz")]


def _rendered_epochs(root: Path) -> list[int]:
    return sorted(epoch_of(p.parent) for p in (root / "ner_viz").glob(f"epoch=*/{RENDER_STATE}"))


def test_sigterm_mid_training_stops_in_seconds_keeps_valid_files_and_the_command_renders_the_rest(tmp_path):
    root = tmp_path / "run"
    # each epoch takes ~1 s to render (3 reducer fits of 0.3 s) and ~0.6 s to train: the pictures fall behind, and
    # once the first is drawn, waiting epochs are skipped to catch up (max_pending=1)
    proc = _fit_in_subprocess(root, "--epochs", "20", "--delay", "0.3", "--train-seconds", "0.5")
    validated: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("validated "):
            validated.append(int(line.split()[1]))
        if len(validated) >= 4 and _rendered_epochs(root):
            break
    seconds, stderr = _stop_with_sigterm(proc)

    assert seconds < GRACE_SECONDS + 4, stderr[-3000:]  # measured: about 2.5 s
    rendered = _rendered_epochs(root)
    assert rendered and rendered[0] == 0  # in order, maybe with epochs skipped to catch up
    assert [r["epoch"] for r in read_rrd(root / "emb.rrd")["/embeddings/hidden"]] == rendered  # a valid recording
    html = read_payload(root / "emb.html")
    assert html["final"] is True and [e["epoch"] for e in html["epochs"]] == rendered  # closed properly
    on_disk = _snapshot_epochs(root)
    assert set(validated) <= set(on_disk) and len(on_disk) > len(rendered)  # nothing captured is lost
    assert "rendering stopped (SIGTERM)" in stderr

    commands = _render_commands(stderr)
    assert [shlex.split(c)[4] for c in commands] == ["rerun", "html"], commands  # one per kind of sink in use
    words = shlex.split(commands[0])  # the rerun one
    done = subprocess.run([str(CLI), *words[1:]], check=False, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(words[words.index("--out") + 1])
    assert [r["epoch"] for r in read_rrd(out)["/embeddings/hidden"]] == on_disk  # every epoch, once


def test_sigterm_while_the_end_of_fit_waits_for_the_backlog(tmp_path):
    root = tmp_path / "run"
    proc = _fit_in_subprocess(root, "--epochs", "5", "--delay", "0.5", "--max-pending", "none")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("training done"):
            break
    time.sleep(0.5)  # into on_fit_end's wait: Lightning's own SIGTERM handler is gone by then
    seconds, stderr = _stop_with_sigterm(proc)

    assert seconds < GRACE_SECONDS + 4, stderr[-3000:]
    assert proc.returncode == -signal.SIGTERM  # deferred while the sinks closed, then acted upon: not swallowed
    assert _snapshot_epochs(root) == [0, 1, 2, 3, 4]
    assert len(_rendered_epochs(root)) < 5 and _render_commands(stderr), stderr[-3000:]


class FailAtEpoch(UserCrfTagger):
    def __init__(self, *args, fail_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at, self.failed_at = fail_at, None

    def training_step(self, batch, batch_idx):
        if self.current_epoch == self.fail_at:
            self.failed_at = time.monotonic()
            raise RuntimeError("loss is NaN")
        return super().training_step(batch, batch_idx)


class SlowSink(RecordingSink):
    """A sink that takes ``seconds`` per epoch, like a remote one."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def log_epoch(self, snapshot, coords, metrics) -> None:
        time.sleep(self.seconds)
        super().log_epoch(snapshot, coords, metrics)


def test_an_exception_stops_rendering_within_the_grace_and_names_the_command(tmp_path, fit_with_callback, bert_config):
    sink = SlowSink(1.0)
    model = FailAtEpoch(bert_config, num_tags=len(LABEL_NAMES), fail_at=5)
    with pytest.warns(NerVizWarning, match=r"rendering stopped \(RuntimeError\)") as record, \
            pytest.raises(RuntimeError, match="loss is NaN"):
        fit_with_callback(model=model, epochs=8, sinks=[sink], background="thread", max_pending=None)
    elapsed = time.monotonic() - model.failed_at
    assert elapsed < GRACE_SECONDS + sink.seconds + 1  # the grace, then the epoch in the sink; not 5 epochs x 1 s
    assert sink.closed and 0 < len(sink.epochs) < 5 and sink.epochs == list(range(len(sink.epochs)))
    assert _snapshot_epochs(tmp_path) == [0, 1, 2, 3, 4]
    (message,) = [str(w.message) for w in record if "rendering stopped" in str(w.message)]
    assert f"lightning-ner-viz render {tmp_path / 'ner_viz'} --sink rerun" in message  # a custom sink: a Rerun file


class Backlog(Callback):
    """At each validation start: captured epochs neither logged by the sink nor skipped (the backlog training runs
    ahead of)."""

    def __init__(self, sink: RecordingSink, drift: EmbeddingDriftCallback) -> None:
        self.sink, self.drift, self.seen = sink, drift, []
        self.first_drawn: int | None = None  # the index in seen of the first validation after two epochs were drawn

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        skipped = len(self.drift._run.render.catch_up.skipped)
        if len(self.sink.epochs) >= 2 and self.first_drawn is None:  # the second started after a trim
            self.first_drawn = len(self.seen)
        self.seen.append(trainer.current_epoch - len(self.sink.epochs) - skipped)


@pytest.mark.parametrize("max_pending", [1, None])
def test_max_pending_skips_the_oldest_waiting_epoch_to_catch_up_and_none_draws_every_epoch(fit_with_callback,
                                                                                           max_pending, tmp_path):
    sink = SlowSink(0.4)
    callback = EmbeddingDriftCallback(sinks=[sink], background="thread", max_pending=max_pending, max_tokens=60,
                                      label_names=LABEL_NAMES)
    probe = Backlog(sink, callback)
    with pytest.warns() as record:
        fit_with_callback(callback, epochs=7, callbacks=[probe])
    warned = [str(w.message) for w in record if "lightning-ner-viz" in str(w.message)]
    skipped = [int(name.split("-")[0].split("=")[1]) for name in callback.state_dict()["renderer"]["skipped"]]
    assert _snapshot_epochs(tmp_path) == list(range(7))  # every captured epoch is on disk
    if max_pending is None:
        assert sink.epochs == list(range(7)) and not skipped and not warned  # the end of fit waited for all
        assert max(probe.seen) >= 5  # training ran ahead
        return
    assert skipped and sorted(sink.epochs + skipped) == list(range(7)), (sink.epochs, skipped)
    assert sink.epochs == sorted(sink.epochs) and sink.epochs[0] == 0 and sink.epochs[-1] == 6  # the newest is drawn
    # nothing is skipped before the first epoch is drawn; the backlog is trimmed when the next one starts
    drawn_since = probe.seen[probe.first_drawn:] if probe.first_drawn is not None else []
    assert max(drawn_since, default=0) <= max_pending + 2, probe.seen  # drawn, max_pending waiting, captured
    # the end of fit lists every skipped epoch with the command that draws them (warned on the training thread; the
    # warning at the first skip comes from the capture thread, where a catch_warnings of the main thread may hide it)
    (summary,) = [w for w in warned if "were skipped to catch up" in w]
    assert all(f"epoch {e} " in summary for e in skipped) and f"lightning-ner-viz render {tmp_path / 'ner_viz'}" in summary
    assert all("skipped to catch up" in w or "captured epochs already wait" in w for w in warned), warned
    # a resume would not draw the skipped epochs again: they are listed, not "captured but never rendered"
    assert set(callback.state_dict()["captured_epochs"]) == set(range(7))


def test_max_pending_is_checked_at_construction():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_pending"):
            EmbeddingDriftCallback(max_pending=bad)
    assert EmbeddingDriftCallback(max_pending=None).max_pending is None


def _snapshot(epoch: int) -> Snapshot:
    rng = np.random.default_rng(epoch)
    n = 60
    return Snapshot(epoch=epoch, step=epoch, token_id=np.arange(n), sentence_id=np.arange(n) // 6,
                    position=np.arange(n) % 6, token=["t"] * n, word=["w"] * n, gold=rng.integers(0, 3, n),
                    pred=rng.integers(0, 3, n), views={"hidden": rng.normal(size=(n, 8)).astype(np.float32)},
                    label_names=["O", "B-X", "I-X"])


def test_an_abandoned_child_projection_raises_instead_of_falling_back_and_the_child_ignores_sigterm():
    renderer = Renderer(SlowPCA(delay=0.0, then=30.0), 3, 0, [], place="process")
    renderer.render(_snapshot(0))  # the child is up
    os.kill(renderer.child_pid, signal.SIGTERM)  # as a signal to the whole process group: the parent decides
    errors: list[BaseException] = []

    def render() -> None:
        try:
            renderer.render(_snapshot(1))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=render)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert abandon(renderer.child_pid)  # it was still alive, projecting epoch 1 (30 s)
    thread.join(timeout=10)
    assert time.monotonic() - started < 2 and not thread.is_alive()
    assert [type(e) for e in errors] == [ProjectionAbandoned] and renderer.place == "process"  # no in-process retry
    assert renderer.rendered_epochs == [0]
    renderer.close()


def test_sigterm_deferred_notes_the_signal_and_still_calls_the_previous_handler():
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with sigterm_deferred() as received:
            assert not received()
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not received() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert received() and calls == [signal.SIGTERM]  # a Python handler runs at once, as before
        assert signal.getsignal(signal.SIGTERM) is not None and calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def _children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from Linux /proc")
def test_kill_9_of_the_trainer_takes_the_projector_child_with_it_within_2_s(tmp_path):
    proc = _fit_in_subprocess(tmp_path, "--epochs", "6", "--delay", "6")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("validated"), "the fit did not reach its first validation"
        deadline = time.monotonic() + 60
        while not (children := _children(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children, "no projector child process was started"
        while not list((tmp_path / "ner_viz").glob("epoch=0000-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # epoch 0 was saved, then sent to the child: it is projecting now (the reducer sleeps 6 s)
        proc.kill()
        proc.wait(timeout=10)
        killed = time.monotonic()
        while any(_running(pid) for pid in children) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        gone_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
    assert gone_after < 2.0, f"the projector child outlived a killed trainer by {gone_after:.1f} s"
    assert _snapshot_epochs(tmp_path)[:1] == [0]  # the captured epoch was saved before it was projected


class _Gathered:
    """What the capture hands the pipeline: here, a ready Snapshot under its name."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot, self.name = snapshot, snapshot.key.name


def test_catch_up_skips_only_an_epoch_that_waited_through_another_epochs_start(tmp_path):
    gate = threading.Event()
    sink = RecordingSink(gate=gate)
    renderer = Renderer("pca", 2, 0, [sink], store=SnapshotStore(tmp_path))
    pipeline = RenderPipeline(renderer, SnapshotStore(tmp_path), lambda g: g.snapshot, in_background=True,
                              strict=True, max_pending=1)
    pipeline.catch_up.rendered = 1  # as after this run's first drawn epoch
    pipeline.submit(_Gathered(_snapshot(0)))  # drawn at once: the sink holds it at the gate
    deadline = time.monotonic() + 30
    while pipeline._jobs.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    for epoch in (1, 2, 3):  # all three arrive while epoch 0 is drawn: none waited through another start yet
        pipeline.submit(_Gathered(_snapshot(epoch)))
    assert pipeline.catch_up.skipped == []
    with pytest.warns(NerVizWarning, match="skipped to catch up"):
        gate.set()  # epoch 1 starts: 2 and 3 waited through its start, so 2 (the oldest) goes, 3 stays
        pipeline.close(progress=False)
    assert sink.epochs == [0, 1, 3] and pipeline.catch_up.skipped == [SnapshotKey("fit", 2, 2).name]
    assert [s.epoch for s in load_snapshots(tmp_path)] == [0, 1, 2, 3]  # the skipped one is on disk

"""The detached end of ``fit`` (issue #16): ``fit`` returns when training is done, and the last pictures are
drawn afterwards; ``wait()``, ``wandb.finish()`` and the process's exit wait for them."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest
from conftest import RecordingSink
from rrd_reading import read_rrd
from shutdown_helpers import SlowPCA
from test_shutdown import _fit_in_subprocess
from wandb_reading import history, run_dir

from lightning_ner_viz.sinks.html import read_payload

pytestmark = pytest.mark.serial  # the subprocess fits time what happens after fit returns

RANK_ZERO = "lightning.pytorch.utilities.rank_zero"


def test_fit_returns_before_its_last_picture_and_wait_delivers_it(fit_with_callback, caplog):
    gate = threading.Event()  # the sink cannot log until the test opens it, like a slow network sink
    sink = RecordingSink(gate=gate)
    with caplog.at_level(logging.INFO, logger=RANK_ZERO):
        fitted = fit_with_callback(sinks=[sink], wait=False)
    assert sink.logged == [] and not sink.closed  # fit did not wait for the sink
    line = next(r.getMessage() for r in caplog.records if "still being drawn" in r.getMessage())
    assert "epoch 0 · step 2 and epoch 1 · step 4 are still being drawn" in line, line
    assert "callback.wait()" in line and repr(sink) in line  # what to call, and where the pictures go
    assert fitted.callback.logged_epochs == []

    gate.set()
    fitted.callback.wait()
    assert sink.epochs == [0, 1] and sink.closed
    assert fitted.callback.logged_epochs == [0, 1]


def test_wait_at_fit_end_keeps_the_waiting_end(fit_with_callback, caplog):
    gate = threading.Event()
    sink = RecordingSink(gate=gate)
    opener = threading.Timer(1.0, gate.set)
    opener.start()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger=RANK_ZERO):
        fit_with_callback(sinks=[sink], wait_at_fit_end=True, wait=False)
    assert sink.epochs == [0, 1] and sink.closed  # fit waited for both pictures and closed the sink
    assert time.monotonic() - started >= 1.0
    assert not any("still being drawn" in r.getMessage() for r in caplog.records)


def test_a_forked_child_does_not_wait_for_the_parents_pictures(fit_with_callback):
    """A DataLoader worker forked while pictures are drawn runs the exit hook when it ends: it has no rendering
    thread, so waiting there would hang it."""
    from lightning_ner_viz.runtime import detached

    gate = threading.Event()
    fitted = fit_with_callback(sinks=[RecordingSink(gate=gate)], wait=False)
    assert fitted.callback._run.render.pending  # pictures still to draw, in this process
    pid = os.fork()
    if pid == 0:  # the child: the hook must return at once
        started = time.monotonic()
        detached.finish_all()
        os._exit(0 if time.monotonic() - started < 5 else 1)
    _, status = os.waitpid(pid, 0)
    gate.set()
    fitted.callback.wait()
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_validate_after_a_detached_fit_queues_behind_its_pictures(fit_with_callback):
    sink = RecordingSink()
    fitted = fit_with_callback(sinks=[sink], reducer=SlowPCA(0.5), background="thread", wait=False)
    fitted.trainer.validate(fitted.trainer.lightning_module, datamodule=fitted.trainer.datamodule)
    fitted.callback.wait()
    assert [(e.snapshot.key.stage, e.snapshot.epoch) for e in sink.logged] == [("fit", 0), ("fit", 1), ("validate", 2)]


def _times(stdout: str, what: str) -> float:
    return float(re.search(rf"{what} at ([0-9.]+)", stdout).group(1))  # type: ignore[union-attr]


def test_the_process_waits_for_its_pictures_before_it_exits(tmp_path):
    """A script that ends right after fit: the process draws the epochs left, closes the files, then exits."""
    proc = _fit_in_subprocess(tmp_path, "--epochs", "3", "--delay", "1.0", "--max-pending", "none")
    out, err = proc.communicate(timeout=240)
    exited = time.time()
    assert proc.returncode == 0, err[-3000:]
    assert exited - _times(out, "fit returned") > 1.0  # there was something left to draw after fit returned
    assert _times(out, "fit returned") - _times(out, "training done") < 1.0  # and fit did not wait for it
    assert "still being drawn" in err and "drawing the last pictures before the process exits" in err, err[-3000:]

    assert [r["epoch"] for r in read_rrd(tmp_path / "emb.rrd")["/embeddings/hidden"]] == [0, 1, 2]
    payload = read_payload(tmp_path / "emb.html")
    assert payload["final"] is True and [e["epoch"] for e in payload["epochs"]] == [0, 1, 2]  # closed properly


def test_wandb_finish_right_after_fit_waits_for_the_pictures(tmp_path):
    """``fit`` then ``wandb.finish()`` on the WandbLogger's run: the run still gets every epoch and the report."""
    proc = _fit_in_subprocess(tmp_path, "--epochs", "2", "--delay", "1.5", "--wandb-logger")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert _times(out, "wandb finished") - _times(out, "fit returned") > 1.0  # finish() waited for the pictures

    rows = history(run_dir(tmp_path))
    ours = [r for r in rows if "ner_viz/epoch" in r]
    assert [r["ner_viz/epoch"] for r in ours] == [0, 1]
    assert any("ner_viz_report/embeddings" in r for r in rows)  # the sink's close logged the report


def test_sinks_are_told_about_a_detached_end(fit_with_callback):
    told: list[bool] = []

    class Listening(RecordingSink):
        def on_detached(self, wait):  # noqa: ANN001 - the Sink hook
            told.append(callable(wait))

    sink = Listening()
    fitted = fit_with_callback(sinks=[sink], wait=False)
    fitted.callback.wait()
    assert told == [True] and sink.closed

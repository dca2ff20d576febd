"""Fail early, count truthfully: unusable sink targets stop the run at setup; logged_epochs lists only
epochs a sink logged; an epoch no sink logged is named with the command that recovers it."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import RecordingSink, epoch_dir, free_port
from rrd_reading import read_rrd

from lightning_ner_viz import NerVizWarning, load_snapshots
from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink
from lightning_ner_viz.sinks.base import SinkTargetError


@pytest.mark.parametrize(
    ("make_sink", "says"),
    [
        (lambda tmp: RerunSink(path=tmp / "blocker" / "emb.rrd"), "cannot write into"),
        (lambda tmp: HtmlSink(tmp / "blocker" / "report.html"), "cannot write into"),
        (lambda tmp: HtmlSink(tmp), "is a directory"),
        (lambda tmp: TensorBoardSink(save_dir=tmp / "blocker" / "tb"), "cannot write into"),
        (lambda tmp: WandbSink(init_kwargs={"dir": str(tmp / "blocker" / "wandb")}), "cannot write into"),
        (lambda tmp: RerunSink(connect=f"rerun+http://127.0.0.1:{free_port()}/proxy"), "nothing listens there"),
    ],
    ids=["rerun-file", "html-file", "html-directory", "tensorboard", "wandb", "rerun-viewer"],
)
def test_an_unusable_target_stops_the_run_before_training(tmp_path, fit_with_callback, make_sink, says):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    sink = make_sink(tmp_path)
    with pytest.raises(SinkTargetError, match=says) as raised:
        fit_with_callback(sinks=[sink])
    message = str(raised.value)
    assert type(sink).__name__ in message and "strict=False" in message  # which sink, and how to go on anyway
    assert not (tmp_path / "ner_viz").exists() or not list((tmp_path / "ner_viz").glob("epoch=*"))  # nothing ran


def test_a_proc_path_is_refused_with_the_reason(tmp_path, fit_with_callback):
    with pytest.raises(SinkTargetError, match=r"RerunSink\(path='/proc/nope/emb.rrd'\) cannot write into /proc/nope"):
        fit_with_callback(sinks=[RerunSink("/proc/nope/emb.rrd")])


def test_strict_false_demotes_an_unusable_target_to_a_warning(tmp_path, fit_with_callback):
    rrd = tmp_path / "ok.rrd"
    with pytest.warns(NerVizWarning, match="nothing listens there.*Training goes on without"):
        trainer, callback = fit_with_callback(
            sinks=[RerunSink(connect=f"rerun+http://127.0.0.1:{free_port()}/proxy"), RerunSink(path=rrd)],
            strict=False)
    assert trainer.current_epoch == 2
    assert [repr(s) for s in callback.resolved_sinks] == [repr(RerunSink(path=rrd))]
    assert callback.logged_epochs == [0, 1]
    assert len(read_rrd(rrd)["/embeddings/hidden"]) == 2


def test_a_listening_viewer_passes_the_check(tmp_path, fit_with_callback):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sink = RerunSink(connect=f"127.0.0.1:{listener.getsockname()[1]}")
        sink.setup(None, tmp_path)
        sink.check_target()  # no error: something listens


def test_logged_epochs_lists_only_epochs_a_sink_logged_and_says_how_to_recover(tmp_path, fit_with_callback):
    broken = RecordingSink(fail_with=OSError(28, "No space left on device"))
    with pytest.warns(NerVizWarning) as record:
        _, callback = fit_with_callback(sinks=[broken])
    assert callback.captured_epochs == [0, 1] and callback.logged_epochs == []
    nothing = [str(w.message) for w in record if "No sink logged epoch" in str(w.message)]
    assert len(nothing) == 2 and "No sink logged epoch 0 · step 2: all 1 failed" in nothing[0]
    assert str(epoch_dir(tmp_path / "ner_viz", 0)) in nothing[0]
    command = nothing[0].split("`")[1]
    assert command.startswith("lightning-ner-viz render ")
    argv = shlex.split(command)
    done = subprocess.run([str(Path(sys.executable).with_name(argv[0])), *argv[1:]], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    recovered = read_rrd(tmp_path / "ner_viz" / "render.rrd")["/embeddings/hidden"]
    assert sorted(row["epoch"] for row in recovered) == [0, 1]  # the command draws what no sink logged


def test_one_working_sink_is_enough_to_count_an_epoch(tmp_path, fit_with_callback):
    broken, working = RecordingSink(fail_with=OSError(28, "No space left on device")), RecordingSink()
    with pytest.warns(NerVizWarning, match="RecordingSink"):
        _, callback = fit_with_callback(sinks=[broken, working])
    assert callback.logged_epochs == [0, 1] == working.epochs


def test_no_sinks_captures_snapshots_without_counting_them_logged(tmp_path, fit_with_callback):
    _, callback = fit_with_callback(sinks=[])
    assert callback.captured_epochs == [0, 1] and callback.logged_epochs == []
    assert len(load_snapshots(tmp_path / "ner_viz")) == 2


def _wandb_logger(tmp_path: Path, **kwargs):
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(save_dir=str(tmp_path), offline=True, project="resume-check", **kwargs)


def test_resume_with_another_wandb_run_warns_how_to_continue_the_same_run(tmp_path, fit_with_callback):
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first_logger = _wandb_logger(tmp_path)
    first = fit_with_callback(sinks=[WandbSink()], epochs=1, callbacks=[ckpt],
                              trainer={"logger": first_logger}).callback
    run_id = first.resolved_sinks[0].run_id
    first_logger.experiment.finish()
    assert run_id == first_logger.version

    other_logger = _wandb_logger(tmp_path)
    with pytest.warns(NerVizWarning, match=rf"WandbLogger\(id='{run_id}', resume='allow'"):
        fit_with_callback(sinks=[WandbSink()], epochs=2, ckpt_path=tmp_path / "ckpt" / "last.ckpt",
                          callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt2")], trainer={"logger": other_logger})
    assert other_logger.version != run_id
    other_logger.experiment.finish()

    with warnings.catch_warnings(record=True) as record:  # the same run continued: no warning
        warnings.simplefilter("always")
        again = _wandb_logger(tmp_path, id=run_id, resume="allow")
        fit_with_callback(sinks=[WandbSink()], epochs=2, ckpt_path=tmp_path / "ckpt" / "last.ckpt",
                          callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt3")], trainer={"logger": again})
        again.experiment.finish()  # no run left active for later tests
    assert not [w for w in record if "W&B run" in str(w.message)], [str(w.message) for w in record]


def test_setup_logs_one_line_saying_what_it_found(tmp_path, fit_with_callback, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        _, callback = fit_with_callback(epochs=1, sinks=[RerunSink(path="emb.rrd"), HtmlSink()], label_names=None)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lightning-ner-viz: hooked")]
    assert len(lines) == 1, lines
    line = lines[0]
    for module in callback.hooked_modules.values():
        assert repr(module) in line
    assert "CRF crf" in line and "label names from" in line and "frame 'procrustes'" in line
    assert f"RerunSink -> {tmp_path / 'ner_viz' / 'emb.rrd'}" in line  # the relative path, resolved
    assert f"HtmlSink -> {tmp_path / 'ner_viz' / 'embeddings.html'}" in line
    assert callback.resolved_sinks[0].location == str(tmp_path / "ner_viz" / "emb.rrd")

"""The sink registry: names, make_sink, state keyed by sink type, outputs under the snapshot root, deprecated names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

import numpy as np
import pytest
from rrd_reading import read_rrd

from lightning_ner_viz.sinks import HtmlSink, RerunSink, Sink, TensorBoardSink, WandbSink
from lightning_ner_viz.sinks.html import read_payload
from lightning_ner_viz.sinks.registry import (
    SINK_NAMES, SinkName, make_sink, restore_sink_states, setup_sinks, sink_class, sink_states,
)
from lightning_ner_viz.snapshot import Snapshot

LABELS = ["O", "B-X", "I-X"]


def _snapshot(epoch: int = 0, n: int = 12) -> tuple[Snapshot, dict[str, np.ndarray], dict[str, float]]:
    rng = np.random.default_rng(epoch)
    gold = rng.integers(0, len(LABELS), n)
    snap = Snapshot(
        epoch=epoch, step=5 * epoch, token_id=np.arange(n), sentence_id=np.zeros(n, dtype=np.int64),
        position=np.arange(n), token=[f"t{i}" for i in range(n)], word=[f"w{i}" for i in range(n)], gold=gold,
        pred=gold, views={"hidden": rng.normal(size=(n, 6)).astype(np.float32)}, label_names=LABELS,
        sentences={0: " ".join(f"w{i}" for i in range(n))},
    )
    return snap, {"hidden": rng.normal(size=(n, 3)).astype(np.float32)}, {"sample_accuracy": 1.0}


def _entities(rrd: Path) -> set[str]:
    return set(read_rrd(rrd))


# ---- names and make_sink --------------------------------------------------------------------


def test_sink_names_are_the_literal_and_every_name_can_be_made(tmp_path):
    assert SINK_NAMES == get_args(SinkName) == ("rerun", "wandb", "html", "tensorboard")
    made = {name: make_sink(name, tmp_path / name) for name in SINK_NAMES}
    assert {name: type(sink) for name, sink in made.items()} == {
        "rerun": RerunSink, "wandb": WandbSink, "html": HtmlSink, "tensorboard": TensorBoardSink}
    assert all(sink_class(name) is type(sink) and isinstance(sink, Sink) for name, sink in made.items())
    assert made["rerun"].path == tmp_path / "rerun" and made["html"].path == tmp_path / "html"
    assert made["tensorboard"].save_dir == tmp_path / "tensorboard"
    assert made["wandb"].init_kwargs["dir"] == str(tmp_path / "wandb")


def test_unknown_sink_name_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"'rerun', 'wandb', 'html', 'tensorboard'"):
        make_sink("tensorbord", tmp_path)


def test_importing_the_registry_is_light():
    code = ("import sys, lightning_ner_viz.sinks.registry as r; assert r.SINK_NAMES; "
            "print(sorted(m for m in ('torch', 'lightning', 'numpy', 'rerun', 'wandb', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- state keyed by sink type ---------------------------------------------------------------


def test_state_is_keyed_by_type_and_survives_a_new_order():
    first, second, html = RerunSink(recording_id="a"), RerunSink(recording_id="b"), HtmlSink("r.html")
    states = sink_states([first, second, html])
    assert states == {"RerunSink": {"recording_id": "a"}, "RerunSink#2": {"recording_id": "b"},
                      "HtmlSink": {"path": "r.html"}}
    restored = [HtmlSink("other.html"), RerunSink(), RerunSink(), WandbSink()]  # reordered, one sink added
    restore_sink_states(restored, states)
    assert [restored[1].recording_id, restored[2].recording_id] == ["a", "b"]
    assert restored[0].path == Path("r.html") and restored[3].run_id is None


def test_old_list_format_is_restored_by_position():
    sinks = [RerunSink(), HtmlSink("new.html")]
    restore_sink_states(sinks, [{"recording_id": "old"}, {"path": "old.html"}])
    assert sinks[0].recording_id == "old" and sinks[1].path == Path("old.html")
    restore_sink_states(sinks, [])  # a checkpoint without sinks leaves them alone
    restore_sink_states(sinks, None)
    assert sinks[0].recording_id == "old"


# ---- outputs under the snapshot root (setup's save_dir) -------------------------------------


def test_rerun_relative_path_resolves_under_save_dir_and_is_written(tmp_path):
    sink = RerunSink("runs/emb.rrd", prefix="emb")
    assert sink.path == Path("runs/emb.rrd")  # as given, until setup
    sink.setup(None, tmp_path / "store")
    assert sink.path == tmp_path / "store" / "runs" / "emb.rrd"
    for epoch in range(2):
        sink.log_epoch(*_snapshot(epoch))
    sink.close()
    assert sink.written_path == sink.path and sink.location == str(sink.path)
    rows = read_rrd(sink.path)
    assert {"/emb/hidden", "/emb/hidden/errors", "/emb/summary"} <= set(rows)
    assert sorted({r["epoch"] for r in rows["/emb/hidden"] if r.get("epoch") is not None}) == [0, 1]


def test_default_outputs_land_under_save_dir(tmp_path):
    rerun, html, tb = RerunSink(), HtmlSink(), TensorBoardSink()
    for sink in (rerun, html, tb):
        sink.setup(None, tmp_path)
    assert rerun.path == tmp_path / "embeddings.rrd" and html.path == tmp_path / "embeddings.html"
    assert tb.save_dir == tmp_path / "tensorboard"
    html.log_epoch(*_snapshot())
    assert read_payload(tmp_path / "embeddings.html")["epochs"][0]["epoch"] == 0
    absolute = RerunSink(tmp_path / "abs.rrd")
    absolute.setup(None, tmp_path / "elsewhere")
    assert absolute.path == tmp_path / "abs.rrd"


def test_wandb_relative_run_dir_resolves_under_save_dir(tmp_path):
    pytest.importorskip("wandb")
    sink = WandbSink(init_kwargs={"dir": "wb", "project": "registry-test"})
    sink.setup(None, tmp_path)
    assert sink.run_dir is None and sink.location is None  # not known before the run opens
    sink.log_epoch(*_snapshot())
    sink.close()
    assert sink.init_kwargs["dir"] == "wb"  # the user's arguments are left as given
    assert sink.run_dir is not None and sink.run_dir.is_dir() and sink.location == str(sink.run_dir)
    assert sink.run_dir.parent == tmp_path / "wb" / "wandb" and sink.run_id in sink.run_dir.name


def test_without_save_dir_the_trainer_root_or_the_path_as_given_is_used(tmp_path):
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), loggers=[])
    sinks = [RerunSink("a.rrd"), HtmlSink("a.html"), TensorBoardSink("tb")]
    for sink in sinks:
        sink.setup(trainer)  # the one-argument form
    assert [sinks[0].path, sinks[1].path, sinks[2].save_dir] == [
        tmp_path / "ner_viz" / "a.rrd", tmp_path / "ner_viz" / "a.html", tmp_path / "ner_viz" / "tb"]
    bare = RerunSink("a.rrd")
    bare.setup(None)
    assert bare.path == Path("a.rrd")


def test_setup_sinks_passes_save_dir_and_still_calls_old_style_sinks(tmp_path):
    class OldStyle(Sink):
        def setup(self, trainer):  # written before `save_dir` existed
            self.trainer = trainer

        def log_epoch(self, snapshot, coords, metrics):
            pass

    old, html = OldStyle(), HtmlSink("r.html")
    with pytest.warns(DeprecationWarning, match="save_dir"):
        setup_sinks([old, html], None, tmp_path)
    assert old.trainer is None and html.path == tmp_path / "r.html"


# ---- deprecated keywords and attributes -----------------------------------------------------


def test_rerun_root_is_a_deprecated_alias_of_prefix(tmp_path):
    with pytest.warns(DeprecationWarning, match="prefix="):
        sink = RerunSink(tmp_path / "old.rrd", root="old")
    assert sink.prefix == "old"
    with pytest.warns(DeprecationWarning, match=r"\.prefix"):
        assert sink.root == "old"
    sink.setup(None, tmp_path)
    sink.log_epoch(*_snapshot())
    sink.close()
    assert "/old/hidden" in _entities(tmp_path / "old.rrd")
    with pytest.raises(TypeError, match="prefix"):
        RerunSink(root="a", prefix="b")


def test_tensorboard_log_dir_and_tag_prefix_are_deprecated_aliases(tmp_path):
    pytest.importorskip("tensorboard")
    with pytest.warns(DeprecationWarning) as caught:
        sink = TensorBoardSink(log_dir="tb", tag_prefix="old")
    assert sorted(str(w.message).split(";")[0] for w in caught) == [
        "TensorBoardSink(log_dir=...) is deprecated", "TensorBoardSink(tag_prefix=...) is deprecated"]
    assert {w.filename for w in caught} == {__file__}  # points at the caller
    assert sink.prefix == "old"
    sink.setup(None, tmp_path)
    assert sink.save_dir == tmp_path / "tb"
    with pytest.warns(DeprecationWarning, match=r"\.prefix"):
        assert sink.tag_prefix == "old"
    with pytest.warns(DeprecationWarning, match=r"\.save_dir"):
        assert sink.log_dir == Path("tb")
    with pytest.warns(DeprecationWarning, match=r"\.save_dir"):
        assert sink.resolved_log_dir == tmp_path / "tb"
    snap, coords, _ = _snapshot()
    sink.log_epoch(snap, coords, {"n_tokens": float(len(snap))})
    sink.close()
    assert sink.writer_log_dir == str(tmp_path / "tb")
    assert f'tensor_name: "old/hidden:{snap.key.name}"' in (tmp_path / "tb" / "projector_config.pbtxt").read_text()
    with pytest.raises(TypeError, match="save_dir"):
        TensorBoardSink("a", log_dir="b")

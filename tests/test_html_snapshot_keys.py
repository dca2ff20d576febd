"""HtmlSink keys every snapshot by its name: a ``validate()`` baseline, several validations in one epoch and
later ones all get a record of their own, in capture order, through thinning, resuming and in the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium

from lightning_ner_viz import Snapshot
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.snapshot import make_token_id

LABELS = ["O", "B-X", "I-X"]
N = 60
BASELINE = SnapshotKey("validate", 0, 0, 0)
E0_S5, E0_S10, E1_S20 = SnapshotKey("fit", 0, 5), SnapshotKey("fit", 0, 10), SnapshotKey("fit", 1, 20)
KEYS = [BASELINE, E0_S5, E0_S10, E1_S20]
NAMES = ["validate=00-step=0000000", "epoch=0000-step=0000005", "epoch=0000-step=0000010", "epoch=0001-step=0000020"]
LABELS_SHOWN = ["baseline · validate 0 · step 0", "epoch 0 · step 5", "epoch 0 · step 10", "epoch 1 · step 20"]


def snapshot(key: SnapshotKey, groups: bool = False) -> tuple[Snapshot, dict[str, np.ndarray], dict[str, float]]:
    """A small snapshot of ``key`` whose coordinates, predictions and metrics depend on its step (no two alike)."""
    rng = np.random.default_rng(key.step + 100 * key.run)
    sentence_id, position = np.arange(N) // 6, np.arange(N) % 6
    gold = np.arange(N) % len(LABELS)
    pred = np.where(rng.random(N) < 0.5 / (key.step + 1), (gold + 1) % len(LABELS), gold)
    words = [f"w{i}" for i in range(N)]
    rows = {"entities": _group(key, 4 + key.step)} if groups else {}
    snap = Snapshot(epoch=key.epoch, step=key.step, stage=key.stage, run=key.run,
                    token_id=make_token_id(sentence_id, position), sentence_id=sentence_id, position=position,
                    token=words, word=words, gold=gold, pred=pred,
                    views={"hidden": rng.normal(size=(N, 8)).astype(np.float32)}, label_names=LABELS,
                    sentences={s: " ".join(words[6 * s:6 * s + 6]) for s in range(N // 6)}, groups=rows)
    coords = {"hidden": (snap.views["hidden"][:, :2] * (1 + key.step)).astype(np.float32)}
    metrics = {"sample_accuracy": float(snap.correct.mean()), "hidden/knn_purity": 0.5 + key.step / 100}
    return snap, coords, metrics


def _group(key: SnapshotKey, n: int) -> Snapshot:
    gold = np.arange(n) % 2
    return Snapshot(epoch=key.epoch, step=key.step, stage=key.stage, run=key.run, token_id=np.arange(n),
                    sentence_id=np.zeros(n, int), position=np.zeros(n, int), token=["x"] * n, word=["x"] * n,
                    gold=gold, pred=gold, views={"entities": np.zeros((n, 4), np.float32)}, label_names=["O", "X"])


def log(sink: HtmlSink, keys: list[SnapshotKey], groups: bool = False) -> None:
    for key in keys:
        snap, coords, metrics = snapshot(key, groups)
        sink.log_epoch(snap, coords, metrics)
        for name, rows in snap.groups.items():
            sink.log_group(name, rows, np.full((len(rows), 2), float(key.step), np.float32))


def records(data: dict[str, Any], field: str = "name") -> list[Any]:
    return [e[field] for e in data["epochs"]]


def test_a_baseline_and_two_validations_in_one_epoch_each_keep_their_own_record(tmp_path):
    sink = HtmlSink(tmp_path / "r.html")
    log(sink, KEYS)
    data = read_payload(sink.path)
    assert records(data) == NAMES and records(data, "label") == LABELS_SHOWN
    assert records(data, "epoch") == [0, 0, 0, 1] and records(data, "step") == [0, 5, 10, 20]
    assert records(data, "stage") == ["validate", "fit", "fit", "fit"]
    assert records(data, "baseline") == [True, False, False, False]
    ids = np.asarray(data["tokens"]["id"])
    for key, record in zip(KEYS, data["epochs"]):  # each record holds its own snapshot: none overwrote another
        snap, coords, _ = snapshot(key)
        assert ids[record["idx"]].tolist() == snap.token_id.tolist() and record["pred"] == snap.pred.tolist()
        shown = np.reshape(record["coords"]["hidden"], (-1, 2))  # rounded to 4 significant digits
        assert np.allclose(shown, coords["hidden"], rtol=0, atol=1e-3 * np.abs(coords["hidden"]).max())
    points = data["metrics"]["snapshots"]
    assert [p["name"] for p in points] == NAMES and [p["tick"] for p in points] == ["base", "e0·s5", "e0·s10", "e1"]
    assert data["metrics"]["epochs"] == [0, 0, 0, 1]
    assert data["metrics"]["series"]["hidden/knn_purity"] == [0.5, 0.55, 0.6, 0.7]


def test_records_and_metrics_stay_in_capture_order_whatever_order_they_arrive_in(tmp_path):
    sink = HtmlSink(tmp_path / "r.html")
    log(sink, [E0_S10, BASELINE, E1_S20, E0_S5])
    data = read_payload(sink.path)
    assert records(data) == NAMES and [p["name"] for p in data["metrics"]["snapshots"]] == NAMES
    log(sink, [SnapshotKey("validate", 1, 20, 1)])  # a validate() after fit, at fit's last step: after it
    data = read_payload(sink.path)
    assert records(data)[-2:] == ["epoch=0001-step=0000020", "validate=01-step=0000020"]
    assert records(data, "label")[-1] == "validate 1 · step 20" and records(data, "baseline")[-1] is False
    assert data["metrics"]["snapshots"][-1]["tick"] == "val 1"


def test_groups_join_their_own_snapshot_by_name(tmp_path):
    sink = HtmlSink(tmp_path / "r.html")
    log(sink, KEYS, groups=True)
    part = read_payload(sink.path)["groups"]["entities"]
    assert records(part) == NAMES
    assert [len(e["idx"]) for e in part["epochs"]] == [4 + k.step for k in KEYS]  # 5 and 10 in epoch 0 apart
    assert [e["coords"]["entities"][0] for e in part["epochs"]] == [k.step for k in KEYS]


def test_flush_after_a_baseline_writes_it_and_fit_goes_on_in_the_same_file(tmp_path):
    sink = HtmlSink(tmp_path / "r.html")
    snap, coords, metrics = snapshot(BASELINE, groups=True)
    sink.log_epoch(snap, coords, metrics)
    assert not sink.path.exists()  # waits for the baseline's groups
    sink.flush()  # trainer.validate() ended without them
    data = read_payload(sink.path)
    assert records(data) == NAMES[:1] and data["final"] is False and data["groups"] == {}
    log(sink, KEYS[1:], groups=True)
    sink.close()
    data = read_payload(sink.path)
    assert records(data) == NAMES and records(data["groups"]["entities"]) == NAMES[1:] and data["final"] is True


def test_max_epochs_inline_thins_by_position_in_capture_order(tmp_path):
    keys = [*KEYS, SnapshotKey("fit", 1, 25), SnapshotKey("fit", 2, 30)]
    sink = HtmlSink(tmp_path / "thin.html", max_epochs_inline=3)
    log(sink, keys, groups=True)
    data = read_payload(sink.path)
    kept = [keys[0].name, keys[2].name, keys[5].name]  # the first (the baseline), the latest, one between
    assert records(data) == kept and records(data["groups"]["entities"]) == kept
    assert [p["name"] for p in data["metrics"]["snapshots"]] == [k.name for k in keys]  # metrics of all
    assert len(data["metrics"]["series"]["hidden/knn_purity"]) == 6


def test_resume_keeps_the_earlier_snapshots_and_logs_the_later_one(tmp_path):
    path = tmp_path / "resumed.html"
    first = HtmlSink(path)
    log(first, KEYS[:3])
    before = read_payload(path)
    second = HtmlSink(path)
    second.load_state_dict(first.state_dict())
    log(second, [E1_S20])
    data = read_payload(path)
    assert records(data) == NAMES and records(data, "baseline") == [True, False, False, False]
    assert data["epochs"][:3] == before["epochs"] and data["tokens"] == before["tokens"]
    assert [p["name"] for p in data["metrics"]["snapshots"]] == NAMES
    assert data["metrics"]["series"]["hidden/knn_purity"] == [0.5, 0.55, 0.6, 0.7]


def test_resume_from_a_mid_epoch_checkpoint_drops_what_came_after_it(tmp_path):
    path = tmp_path / "resumed.html"
    first = HtmlSink(path)
    log(first, KEYS)
    second = HtmlSink(path)
    second.load_state_dict(first.state_dict())
    log(second, [E0_S10])  # fit restarted from the checkpoint at step 5: step 10 is captured again, step 20 not yet
    data = read_payload(path)
    assert records(data) == NAMES[:3] and [p["name"] for p in data["metrics"]["snapshots"]] == NAMES[:3]


def test_resume_reads_a_report_written_before_snapshots_had_names(tmp_path):
    path = tmp_path / "old.html"
    old = HtmlSink(path)
    log(old, [SnapshotKey("fit", 0, 10), SnapshotKey("fit", 1, 20)])
    text = path.read_text(encoding="utf-8")
    payload = read_payload(path)
    for e in payload["epochs"]:  # as an older version wrote it: epochs and steps only
        for field in ("name", "label", "stage", "run", "baseline"):
            del e[field]
    del payload["metrics"]["snapshots"]
    data = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    path.write_text(re.sub(r'(id="ner-viz-data">).*?(</script>)', lambda m: m[1] + data + m[2], text, flags=re.S),
                    encoding="utf-8")
    new = HtmlSink(path)
    new.load_state_dict(old.state_dict())
    log(new, [SnapshotKey("fit", 2, 30)])
    data = read_payload(path)
    assert records(data) == ["epoch=0000", "epoch=0001", "epoch=0002-step=0000030"]
    assert records(data, "label") == ["epoch 0", "epoch 1", "epoch 2 · step 30"]
    assert records(data, "step") == [10, 20, 30]
    assert [p["tick"] for p in data["metrics"]["snapshots"]] == ["e0", "e1", "e2"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sink = HtmlSink(tmp_path_factory.mktemp("keys") / "report.html")
    log(sink, KEYS)
    sink.close()
    return sink.path


@needs_chromium
def test_in_chromium_the_slider_reaches_every_snapshot_and_names_the_baseline(report, tmp_path):
    with chromium_page(tmp_path / "profile", 1300, 1100) as (page, errors):
        page.goto(report.as_uri() + "#epoch=0")  # an older link: the last snapshot of epoch 0
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        assert page.evaluate("nerViz.state().name") == NAMES[2]
        assert page.evaluate("nerViz.names") == NAMES and page.evaluate("nerViz.labels") == LABELS_SHOWN
        assert page.evaluate("nerViz.epochs") == [0, 0, 0, 1] and page.evaluate("nerViz.frames('hidden')") == NAMES
        summary = page.inner_text("#summary")
        assert "4 snapshots: 1 baseline (validate at step 0), epochs 0–1 (3 validations)" in summary, summary

        page.focus("#slider")
        page.keyboard.press("Home")
        for k, (name, label) in enumerate(zip(NAMES, LABELS_SHOWN)):
            if k:
                page.keyboard.press("ArrowRight")
            page.wait_for_function(f"nerViz.state().index === {k}")
            state = page.evaluate("nerViz.state()")
            assert (state["name"], state["label"]) == (name, label)
            shown = page.inner_text("#snaplabel")
            assert label in shown and f"{k + 1} of 4" in shown, shown
            assert page.evaluate("location.hash") == f"#snapshot={name}"
            chart = page.evaluate("document.querySelector('#metrics .metric').layout")
            assert [s["x0"] for s in chart["shapes"] if s["type"] == "line"] == [k]  # the charts' marker follows
        page.keyboard.press("Home")
        page.wait_for_function("nerViz.state().index === 0")
        assert "baseline" in page.inner_text("#snaplabel") and "untrained" in page.inner_text("#snaplabel")

        chart = page.evaluate("(() => { const d = document.querySelector('#metrics .metric'); return {"
                              "ticks: d.layout.xaxis.ticktext, data: d.data.map(t => ({"
                              "x: t.x, symbol: t.marker.symbol || null, hover: t.customdata}))}; })()")
        assert [t.replace("<br>", "·") for t in chart["ticks"]] == ["base", "e0·s5", "e0·s10", "e1"]
        fit, validate = chart["data"][:2]  # the baseline apart from fit's line, a diamond
        assert (fit["x"], fit["symbol"], fit["hover"]) == ([1, 2, 3], None, LABELS_SHOWN[1:])
        assert (validate["x"], validate["symbol"], validate["hover"]) == ([0], "diamond", LABELS_SHOWN[:1])
        assert [s["x0"] for s in page.evaluate("document.querySelector('#metrics .metric').layout.shapes")
                if s["type"] == "rect"] == [-0.45]  # the baseline's band
        page.goto(report.as_uri() + "#snapshot=" + NAMES[1])
        page.reload()
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        assert page.evaluate("nerViz.state().label") == "epoch 0 · step 5"
        page.evaluate(f"nerViz.setSnapshot('{NAMES[0]}')")
        assert page.evaluate("nerViz.state().index") == 0
        assert not errors, errors

"""The label issues in the Rerun, W&B and TensorBoard sinks: the data map and the table of the most suspect tokens,
logged per fit snapshot and read back from the files each backend wrote (real reports of tests/label_issue_data.py)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from label_issue_data import HOSTILE, reports, snapshot_of

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.sinks.data_map_png import CORRECTNESS, data_map_image
from lightning_ner_viz.sinks.heatmap import INK
from lightning_ner_viz.sinks.label_issue_text import issues_markdown, md
from lightning_ner_viz.sinks.pixel_font import text_mask

pytest.importorskip("cleanlab")
STEPS = [10, 20, 30]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The three fit snapshots, each with its real label-issue report, and a function logging them to a sink."""
    found = reports(tmp_path_factory.mktemp("store"))
    snaps = [snapshot_of(epoch, np.asarray(report.points["token_id"][:12], dtype=np.int64))
             for epoch, report in enumerate(found)]

    def log(sink) -> None:
        rng = np.random.default_rng(0)
        for snap, report in zip(snaps, found):
            sink.log_epoch(snap, {"hidden": rng.normal(size=(len(snap), 3)).astype(np.float32)}, {})
            sink.log_analysis(snap, EpochAnalysis(label_issues=report))
        sink.close()

    return snaps, found, log


def _decoded(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_markdown_escapes_user_text_and_lists_the_most_suspect_first(logged):
    _, found, _ = logged
    assert md("a|b <i>`c`</i> *d* [e](f) x_y & \\") == (
        "a\\|b &lt;i&gt;\\`c\\`&lt;/i&gt; \\*d\\* \\[e\\](f) x\\_y &amp; \\\\")
    report = found[-1]
    text = issues_markdown(report, "epoch 2 · step 30", 10)
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 10 and rows[0].startswith(f"| 1 | {md(report.top[0]['token'])} | {report.top[0]['given']} |")
    full = issues_markdown(report, "x")
    assert HOSTILE not in full and md(HOSTILE) in full and "<script>" not in full


def test_data_map_image_is_titled_and_draws_each_point(logged):
    _, found, _ = logged
    image = data_map_image(found[-1], "epoch 2 · step 30")
    small = image[::2, ::2]  # drawn at scale 2
    title = text_mask("label issues · data map · epoch 2 · step 30")
    assert ((small[8:8 + title.shape[0], 8:8 + title.shape[1]] == INK).all(axis=2) == title).all()
    colours = {tuple(p) for p in small.reshape(-1, 3).tolist()}
    assert tuple(CORRECTNESS[0]) in colours and tuple(CORRECTNESS[-1]) in colours  # never and always right
    assert not np.array_equal(image, data_map_image(found[0], "epoch 2 · step 30"))


# ---- Rerun ----------------------------------------------------------------------------------------


def test_rerun_logs_the_data_map_and_the_table_at_each_snapshot(tmp_path, logged):
    from rrd_reading import read_rrd

    from lightning_ner_viz.sinks import RerunSink

    snaps, found, log = logged
    sink = RerunSink(path="a.rrd")
    sink.setup(None, tmp_path)
    log(sink)
    rows = read_rrd(tmp_path / "a.rrd")
    path = "/embeddings/label_issues/data_map"
    maps = [r for r in rows[path] if r.get("Points2D:positions") is not None]
    assert [(r["epoch"], r["step"]) for r in maps] == [(s.epoch, s.step) for s in snaps]
    for r, report in zip(maps, found):
        p = report.points
        assert len(r["Points2D:positions"]) == len(p["rank"]) == 160
        np.testing.assert_allclose(np.asarray(r["Points2D:positions"]), np.c_[p["variability"], p["confidence"]],
                                   atol=1e-6)  # x = variability, y = confidence, as they are
        assert r["rank"] == p["rank"] and r["flagged"] == p["flagged"] and r["token_id"] == p["token_id"]
        labels = r["Points2D:labels"]  # the sentence for the most suspect and the flagged tokens only
        assert labels[:50] == p["text"][:50] and p["text"][0].startswith("#1 ") and " | " in labels[0]
        assert all(label == (text if flag else text.split(" | ")[0])
                   for label, text, flag in zip(labels[50:], p["text"][50:], p["flagged"][50:]))
    (scale,) = [r["Transform3D:scale"] for r in rows[path] if r.get("Transform3D:scale")]
    assert scale[0][1] < 0  # confidence upwards
    rings = rows[f"{path}/flagged"]
    assert [len(r["Points2D:positions"]) for r in rings] == [r.flagged for r in found]
    assert len(rows[f"{path}/frame/names"]) == 1  # static, once
    hard = sum(c < 0.25 for c in found[-1].points["confidence"])
    assert f"hard to learn, wrong labels: {hard} below .25" in rows[f"{path}/regions"][-1]["Points2D:labels"]

    tables = rows["/embeddings/label_issues/top"]
    assert [r["step"] for r in tables] == STEPS
    text = tables[-1]["TextDocument:text"][0]
    assert text.startswith("## Label issues · epoch 2 · step 30")
    assert f"| 1 | {md(found[-1].top[0]['token'])} |" in text and "&lt;img" in text and "<img" not in text


def test_rerun_blueprint_shows_the_data_map_and_the_table():
    import rerun.blueprint as rrb

    from lightning_ner_viz.sinks.rerun_blueprint import default_blueprint

    def views(part) -> list:
        found = [part] if isinstance(part, rrb.View) else []
        for child in getattr(part, "contents", None) or []:
            found += views(child)
        return found

    blueprint = default_blueprint("emb", ["hidden"], ["confusion", "label_issues/data_map", "label_issues/top"])
    blueprint.to_blueprint()  # builds
    found = views(blueprint.root_container)
    assert [str(v.origin) for v in found if isinstance(v, rrb.Spatial2DView)] == ["emb/confusion", "emb/label_issues"]
    texts = [str(v.origin) for v in found if isinstance(v, rrb.TextDocumentView)]
    assert texts == ["emb/summary", "emb/errors", "emb/clusters", "emb/label_issues/top"]


# ---- W&B --------------------------------------------------------------------------------------------


def test_wandb_row_holds_the_table_and_the_data_map(tmp_path, logged):
    from wandb_reading import history, run_dir

    from lightning_ner_viz.analysis.label_issue_report import CSV_COLUMNS
    from lightning_ner_viz.sinks import WandbSink

    snaps, found, log = logged
    sink = WandbSink(init_kwargs={"dir": str(tmp_path), "project": "ner-viz-test"})
    sink.setup(SimpleNamespace(loggers=[], default_root_dir=str(tmp_path)), tmp_path)
    log(sink)
    run = run_dir(tmp_path)
    rows = [r for r in history(run) if "ner_viz/label_issues/top" in r]
    assert [r["ner_viz/global_step"] for r in rows] == STEPS and all("ner_viz/label_issues/data_map" in r for r in rows)

    def media(row: dict, key: str) -> dict:
        return json.loads((run / "files" / row[key]["path"]).read_text())

    for row, snap, report in zip(rows, snaps, found):
        table = media(row, "ner_viz/label_issues/top")
        assert table["columns"] == ["snapshot", "epoch", "global_step", *CSV_COLUMNS, "token_id"]
        assert len(table["data"]) == 50
        top = dict(zip(table["columns"], table["data"][0]))
        assert top == {"snapshot": snap.key.name, "epoch": snap.epoch, "global_step": snap.step, **report.top[0]}
        fig = media(row, "ner_viz/label_issues/data_map")
        flagged = [t for t in fig["data"] if t["name"].startswith("flagged")]
        assert sum(len(t["x"]) for t in fig["data"]) == len(report.points["rank"])
        assert len(flagged[0]["x"]) == report.flagged and fig["layout"]["title"]["text"].count(snap.label) == 1
        assert all("<img" not in text for t in fig["data"] for text in t["text"])


# ---- TensorBoard -------------------------------------------------------------------------------------


def test_tensorboard_event_file_holds_the_image_and_the_text(tmp_path, logged):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    from lightning_ner_viz.sinks import TensorBoardSink

    snaps, found, log = logged
    sink = TensorBoardSink(save_dir="tb")
    sink.setup(None, tmp_path)
    log(sink)
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    images = acc.Images("ner_viz/label_issues/data_map")
    assert [e.step for e in images] == STEPS
    np.testing.assert_array_equal(_decoded(images[-1].encoded_image_string), data_map_image(found[-1], snaps[-1].label))
    texts = [(e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode())
             for e in acc.Tensors("ner_viz/label_issues/top/text_summary")]
    assert [s for s, _ in texts] == STEPS
    text = texts[-1][1]
    assert f"| 1 | {md(found[-1].top[0]['token'])} |" in text
    assert sum(line.startswith("| ") and line[2].isdigit() for line in text.splitlines()) == 10


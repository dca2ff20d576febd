"""The analyses in the Rerun, W&B and TensorBoard sinks: the confusion and class-similarity heatmaps, the errors,
sub-cluster and span-error tables, read back from the files each backend wrote (planted snapshots, then a real fit)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from analysis_snapshots import KEYS, LABELS, N_ERRORS, coords_of, log_all, snapshots

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalyst
from lightning_ner_viz.sinks.heatmap import BLUES, colorize, confusion_image, png_bytes, similarity_image
from lightning_ner_viz.sinks.pixel_font import text_mask, text_width

pytest.importorskip("sklearn")
STEPS = [step for _, _, step in KEYS]


def _decoded(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def planted():
    """The three planted snapshots and their analyses (one analyst, so cluster ids are stable)."""
    snaps = snapshots()
    analyst = EpochAnalyst()
    return snaps, [analyst.analyse(s) for s in snaps]


def test_planted_analyses_find_the_split_and_the_errors(planted):
    snaps, analyses = planted
    brand = [[s for s in a.clusters["hidden"].summaries if s.class_name == "B-BRAND"] for a in analyses]
    assert [len(b) for b in brand] == [1, 2, 2]
    assert {tuple(s.top_words[:1]) for s in brand[1]} == {("valio",), ("danone",)}
    assert [e.kind for e in analyses[1].clusters["hidden"].events] == ["split"]
    assert len(analyses[1].errors["hidden"]) == N_ERRORS


# ---- the heatmap images themselves -------------------------------------------------------------


def test_heatmap_draws_label_names_values_and_a_colour_bar():
    counts = np.array([[90, 10], [0, 0]])
    image = confusion_image(counts, ["O", "B-X"], "epoch 1 · step 5", )
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    small = image[::2, ::2]  # drawn at scale 2
    ink = (small < 60).all(axis=2)
    title = text_mask("confusion · whole validation set · epoch 1 · step 5")
    assert (ink[6:6 + title.shape[0], 6:6 + title.shape[1]] == title).all()  # the title, as written
    blues = {tuple(c) for c in colorize(np.array([0.9, 0.1]), 0, 1, BLUES)}
    assert blues <= {tuple(p) for p in small.reshape(-1, 3)}  # the row's shares as cell colours
    missing = (small == (222, 222, 222)).all(axis=2)  # the empty gold row is grey (no share)
    assert missing.sum() >= 2 * 27 * 27
    sim = similarity_image(np.array([[1.0, -0.5], [-0.5, 1.0]]), ["A", "B"], np.array([2.0, np.nan]), "hidden", "x")
    assert sim.shape[1] >= 2 * text_width("cosine similarity of the centred centroids; sep = nearest gap / spread")
    for rgb in (image, sim, image[:1, :1]):
        png = png_bytes(rgb)
        np.testing.assert_array_equal(_decoded(png), rgb)  # lossless
    assert len(png_bytes(image)) < image.nbytes / 50


# ---- Rerun ----------------------------------------------------------------------------------------


def test_rerun_logs_heatmaps_tables_and_cluster_layers_at_each_snapshot(tmp_path, planted):
    from rrd_reading import read_rrd

    from lightning_ner_viz.sinks import RerunSink

    snaps, analyses = planted
    sink = RerunSink(path="a.rrd")
    sink.setup(None, tmp_path)
    log_all(sink, snaps, analyses)
    rows = read_rrd(tmp_path / "a.rrd")
    p = "/embeddings"
    for path in ("confusion", "confusion/counts", "class_similarity/hidden", "class_similarity/entities",
                 "errors", "clusters"):
        assert [r["step"] for r in rows[f"{p}/{path}"]] == STEPS, path
    assert [r["epoch"] for r in rows[f"{p}/confusion"]] == [-1, 0, 1]  # the baseline before epoch 0
    attracted = [r["step"] for r in rows.get(f"{p}/error_attraction/hidden", [])]
    assert attracted and set(attracted) <= set(STEPS)  # snapshots with errors draw where they go
    image = rows[f"{p}/confusion"][1]
    assert image["EncodedImage:media_type"] == ["image/png"]
    np.testing.assert_array_equal(_decoded(bytes(image["EncodedImage:blob"][0])),
                                  confusion_image(snaps[1].confusion, LABELS, snaps[1].label))
    counts = rows[f"{p}/confusion/counts"][1]
    assert counts["Tensor:data"][0]["names"] == ["gold", "predicted"] and counts["label_names"] == LABELS
    assert counts["Tensor:data"][0]["buffer"] == snaps[1].confusion.reshape(-1).tolist()

    errors = rows[f"{p}/errors"][1]["TextDocument:text"][0]
    assert errors.startswith("## Errors · epoch 0 · step 10") and errors.count("| I-BRAND | B-BRAND |") == N_ERRORS
    assert "«" in errors
    assert "| B-BRAND | #" in rows[f"{p}/clusters"][1]["TextDocument:text"][0]

    for cloud, n_rows in (("hidden", len(snaps[0])), ("entities", len(snaps[0].groups["entities"]))):
        layer = rows[f"{p}/{cloud}/clusters"]
        contexts = [r for r in layer if r.get("AnnotationContext:context")]
        points = [r for r in layer if r.get("Points3D:positions")]
        assert [r["step"] for r in contexts] == [r["step"] for r in points] == STEPS
        for snapshot, r in zip(snaps, points):
            views, groups = coords_of(snapshot)
            np.testing.assert_allclose(r["Points3D:positions"], (views if cloud == "hidden" else groups)[cloud])
            assert len(r["Points3D:class_ids"]) == n_rows
        labels = {c["class_description"]["info"]["id"]: c["class_description"]["info"]["label"]
                  for c in contexts[1]["AnnotationContext:context"][0]}
        assert set(points[1]["Points3D:class_ids"]) <= set(labels)
        brand = sorted(label for label in labels.values() if "BRAND #" in label and "valio" in label.split("·")[2])
        assert brand and all(" · n=" in label and "% errors" in label for label in brand), labels
    hidden_labels = [c["class_description"]["info"]["label"]
                     for c in [r for r in rows[f"{p}/hidden/clusters"] if r.get("AnnotationContext:context")][1]
                     ["AnnotationContext:context"][0]]
    assert any(label.startswith("I-BRAND #") and "100% errors" in label for label in hidden_labels)

    summaries = rows[f"{p}/summary"]
    assert [r["step"] for r in summaries] == STEPS  # one each, with the sub-clusters
    text = summaries[1]["TextDocument:text"][0]
    assert "| BRAND | 110 | 5 | 12 | 3 | 2 | 130 | 129 |" in text  # span counts of step 10
    assert "B-BRAND: #1 split into #1, #6" in text and "Sub-clusters" in summaries[0]["TextDocument:text"][0]


def test_rerun_summary_without_analyses_is_logged_by_the_next_snapshot_or_close(tmp_path, planted):
    from rrd_reading import read_rrd

    from lightning_ner_viz.sinks import RerunSink

    snaps, _ = planted
    sink = RerunSink(path="a.rrd")
    sink.setup(None, tmp_path)
    for snapshot in snaps[:2]:
        sink.log_epoch(snapshot, coords_of(snapshot)[0], {})
    sink.close()
    rows = read_rrd(tmp_path / "a.rrd")
    assert [r["step"] for r in rows["/embeddings/summary"]] == STEPS[:2]
    assert "Sub-clusters" not in rows["/embeddings/summary"][0]["TextDocument:text"][0]
    assert "/embeddings/confusion" not in rows


def test_rerun_blueprint_gains_the_analysis_panels_and_stays_valid_without():
    import rerun.blueprint as rrb

    from lightning_ner_viz.sinks.rerun_blueprint import default_blueprint

    def views(part) -> list:
        found = [part] if isinstance(part, rrb.View) else []
        for child in getattr(part, "contents", None) or []:
            found += views(child)
        return found

    plain = default_blueprint("emb", ["hidden", "entities"])
    full = default_blueprint("emb", ["hidden", "entities"], ["confusion", "class_similarity/hidden"],
                             ["hidden", "entities"])
    for blueprint in (plain, full):
        blueprint.to_blueprint()  # builds
    plain_views = views(plain.root_container)
    full_views = views(full.root_container)
    assert not any(isinstance(v, rrb.Spatial2DView) for v in plain_views)
    assert [str(v.origin) for v in full_views if isinstance(v, rrb.Spatial2DView)] == [
        "emb/confusion", "emb/class_similarity/hidden"]
    texts = [str(v.origin) for v in full_views if isinstance(v, rrb.TextDocumentView)]
    assert texts == ["emb/summary", "emb/errors", "emb/clusters"]
    spaces = [(str(v.origin), v.contents) for v in full_views if isinstance(v, rrb.Spatial3DView)]
    assert [origin for origin, _ in spaces] == ["emb/hidden", "emb/hidden", "emb/entities", "emb/entities"]


# ---- W&B --------------------------------------------------------------------------------------------


def test_wandb_puts_the_analyses_in_each_snapshots_row(tmp_path, planted):
    from wandb_reading import history, run_dir

    from lightning_ner_viz.sinks import WandbSink

    snaps, analyses = planted
    sink = WandbSink(init_kwargs={"dir": str(tmp_path), "project": "ner-viz-test"})
    sink.setup(SimpleNamespace(loggers=[], default_root_dir=str(tmp_path)), tmp_path)
    log_all(sink, snaps, analyses)
    run = run_dir(tmp_path)
    rows = [r for r in history(run) if "ner_viz/epoch" in r]
    assert [(r["ner_viz/epoch"], r["ner_viz/global_step"]) for r in rows] == [(e, s) for _, e, s in KEYS]  # one row each
    keys = ["ner_viz/confusion", "ner_viz/class_similarity/hidden", "ner_viz/class_similarity/entities",
            "ner_viz/errors", "ner_viz/clusters", "ner_viz/span_errors",
            "ner_viz/hidden/table", "ner_viz/entities/scatter"]
    for row in rows:
        assert all(k in row for k in keys), sorted(set(keys) - set(row))

    def media(row: dict, key: str) -> dict:
        return json.loads((run / "files" / row[key]["path"]).read_text())

    for row, snapshot in zip(rows, snaps):
        fig = media(row, "ner_viz/confusion")
        heat = fig["data"][0]
        assert heat["type"] == "heatmap" and heat["x"] == LABELS and fig["layout"]["title"]["text"].endswith(snapshot.label)
        assert np.asarray(heat["customdata"]).tolist() == snapshot.confusion.tolist()
        sim = media(row, "ner_viz/class_similarity/hidden")["data"][0]
        assert sim["zmin"] == -1 and sim["zmax"] == 1
        errors = media(row, "ner_viz/errors")
        assert len(errors["data"]) == N_ERRORS
        assert {tuple(r[errors["columns"].index(c)] for c in ("gold", "predicted")) for r in errors["data"]} == {
            ("I-BRAND", "B-BRAND")}
        assert {r[0] for r in errors["data"]} == {snapshot.key.name}
        spans = media(row, "ner_viz/span_errors")
        assert [r[spans["columns"].index("type")] for r in spans["data"]] == ["BRAND", "PROD"]
        assert spans["data"][0][spans["columns"].index("correct")] == 100 + snapshot.step
        clusters = media(row, "ner_viz/clusters")
        clouds = {r[clusters["columns"].index("cloud")] for r in clusters["data"]}
        assert clouds == {"hidden", "entities"}
    assert ["ner_viz/cluster_events" in r for r in rows] == [False, True, False]  # logged when there are events
    events = media(rows[1], "ner_viz/cluster_events")
    assert [(r[events["columns"].index("cloud")], r[events["columns"].index("text")]) for r in events["data"]] == [
        ("hidden", "B-BRAND: #1 split into #1, #6"), ("entities", "BRAND: #0 split into #0, #2")]


# ---- TensorBoard -------------------------------------------------------------------------------------


def _tensorboard(log_dir: Path) -> tuple[dict, dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    images = {tag: acc.Images(tag) for tag in acc.Tags()["images"]}
    texts = {tag.removesuffix("/text_summary"): [(e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode())
                                                 for e in acc.Tensors(tag)]
             for tag in acc.Tags()["tensors"]}  # add_text writes <tag>/text_summary
    return images, texts


def test_tensorboard_adds_images_and_texts_at_the_global_step(tmp_path, planted):
    pytest.importorskip("tensorboard")
    from lightning_ner_viz.sinks import TensorBoardSink

    snaps, analyses = planted
    sink = TensorBoardSink(save_dir="tb")
    sink.setup(None, tmp_path)
    log_all(sink, snaps, analyses)
    images, texts = _tensorboard(tmp_path / "tb")
    for prefix, step in (("ner_viz/baseline", 0), ("ner_viz", 10), ("ner_viz", 20)):
        for tag in ("confusion", "class_similarity/hidden", "class_similarity/entities"):
            assert step in [e.step for e in images[f"{prefix}/{tag}"]], (prefix, tag)
        for tag in ("errors", "clusters", "span_errors"):
            assert step in [s for s, _ in texts[f"{prefix}/{tag}"]], (prefix, tag)
    assert [e.step for e in images["ner_viz/confusion"]] == [10, 20]  # the baseline's are apart
    assert any(tag.endswith("/error_attraction/hidden") for tag in images)
    np.testing.assert_array_equal(_decoded(images["ner_viz/confusion"][0].encoded_image_string),
                                  confusion_image(snaps[1].confusion, LABELS, snaps[1].label))
    (text,) = [t for s, t in texts["ner_viz/errors"] if s == 10]
    assert text.count("| I-BRAND | B-BRAND |") == N_ERRORS
    (text,) = [t for s, t in texts["ner_viz/clusters"] if s == 10]
    assert "B-BRAND: #1 split into #1, #6" in text


# ---- a real fit with all three -----------------------------------------------------------------------


def test_a_fit_logs_the_analyses_to_all_three_sinks(tmp_path, fit_with_callback):
    pytest.importorskip("tensorboard")
    from rrd_reading import read_rrd
    from wandb_reading import history, run_dir

    from lightning_ner_viz import load_snapshots
    from lightning_ner_viz.sinks import RerunSink, TensorBoardSink, WandbSink

    sinks = [RerunSink(path="emb.rrd"), WandbSink(init_kwargs={"dir": "wb"}), TensorBoardSink(save_dir="tb")]
    fit_with_callback(sinks=sinks, strict=True, max_pending=None)
    snaps = load_snapshots(tmp_path / "ner_viz")
    steps = [s.step for s in snaps]
    assert len(steps) == 2 and all(s.confusion is not None for s in snaps)

    rows = read_rrd(tmp_path / "ner_viz" / "emb.rrd")
    for path in ("confusion", "class_similarity/hidden", "errors", "clusters", "hidden/clusters"):
        assert sorted({r["step"] for r in rows[f"/embeddings/{path}"]}) == steps, path

    wandb_rows = [r for r in history(run_dir(tmp_path / "ner_viz" / "wb")) if "ner_viz/epoch" in r]
    assert [r["ner_viz/global_step"] for r in wandb_rows] == steps
    for key in ("confusion", "class_similarity/hidden", "errors", "clusters", "span_errors"):
        assert all(f"ner_viz/{key}" in r for r in wandb_rows), key

    images, texts = _tensorboard(tmp_path / "ner_viz" / "tb")
    assert [e.step for e in images["ner_viz/confusion"]] == steps
    assert [e.step for e in images["ner_viz/class_similarity/hidden"]] == steps
    assert [s for s, _ in texts["ner_viz/errors"]] == [s for s, _ in texts["ner_viz/clusters"]] == steps

"""HtmlSink: one self-contained HTML file, rewritten atomically per epoch, checked in a real headless Chromium."""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium

from lightning_ner_viz import Snapshot
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.snapshot import make_token_id

LABELS = ["O", "B-BRAND", "I-BRAND", "B-TYPE", "I-TYPE"]
N_SENTENCES, WORDS = 100, 6  # 600 tokens


def make_snapshot(epoch: int, n_components: int = 3) -> tuple[Snapshot, dict[str, np.ndarray], dict[str, float]]:
    """Label clusters that tighten with the epoch; fewer wrong predictions each epoch."""
    rng = np.random.default_rng(epoch)
    base = np.random.default_rng(123)
    n = N_SENTENCES * WORDS
    sentence_id, position = np.repeat(np.arange(N_SENTENCES), WORDS), np.tile(np.arange(WORDS), N_SENTENCES)
    gold = base.integers(0, len(LABELS), n)
    centers = base.normal(0, 4, (len(LABELS), 16))
    hidden = centers[gold] + rng.normal(0, 3.0 / (epoch + 1), (n, 16))
    emissions = np.eye(len(LABELS))[gold] * (2 + epoch) + rng.normal(0, 1, (n, len(LABELS)))
    pred = np.where(rng.random(n) < 0.3 / (epoch + 1), (gold + 1) % len(LABELS), gold)
    words = [f"w{s}x{p}" for s, p in zip(sentence_id, position)]
    words[0] = "<b>&"  # must be escaped, not rendered
    sentences = {s: " ".join(words[s * WORDS:(s + 1) * WORDS]) for s in range(N_SENTENCES)}
    snap = Snapshot(epoch=epoch, step=10 * (epoch + 1), token_id=make_token_id(sentence_id, position),
                    sentence_id=sentence_id, position=position, token=list(words), word=list(words), gold=gold,
                    pred=pred, views={"hidden": hidden.astype(np.float32), "emissions": emissions.astype(np.float32)},
                    label_names=LABELS, sentences=sentences)
    coords = {v: x[:, :n_components].astype(np.float32) for v, x in snap.views.items()}
    metrics = {"n_tokens": float(n), "sample_accuracy": float(snap.correct.mean()), "entity_f1": 0.5 + epoch / 10,
               "hidden/knn_purity": 0.6 + epoch / 10, "emissions/knn_purity": 0.7 + epoch / 20,
               **({"hidden/cka_prev": 0.9, "hidden/centroid_shift/B-BRAND": 0.2} if epoch else {})}
    return snap, coords, metrics


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    sink = HtmlSink(path, title="test <report>")
    for epoch in range(3):
        sink.log_epoch(*make_snapshot(epoch))
    sink.close()
    return path


def test_file_is_self_contained(report):
    import plotly

    text = report.read_text(encoding="utf-8")
    plotly_js = plotly.offline.get_plotlyjs()
    assert plotly_js[:2000] in text and plotly_js[-2000:] in text  # plotly.js inlined, not fetched
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", text, re.I)
    ours = text.replace(plotly_js, "")
    assert "http://" not in ours and "https://" not in ours
    assert "<title>test &lt;report&gt;</title>" in text
    assert 3_000_000 < report.stat().st_size < len(plotly_js) + 1_000_000  # 600 tokens x 3 epochs add < 1 MB
    raw = json.loads(re.search(r'id="ner-viz-data">(.*?)</script>', text, re.DOTALL).group(1))
    first = raw["epochs"][0]  # the per-token numbers are packed (packed_arrays.py); read_payload unpacks them
    assert all(first[k]["packed"] for k in ("idx", "pred", "conf")) and first["coords"]["hidden"]["packed"] == "int16"


def test_every_epoch_is_a_frame_with_tokens_hover_and_metrics(report):
    data = read_payload(report)
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    n = N_SENTENCES * WORDS
    for e in data["epochs"]:
        assert set(e["coords"]) == {"hidden", "emissions"}
        assert len(e["coords"]["hidden"]) == 3 * n and len(e["idx"]) == len(e["pred"]) == len(e["conf"]) == n
        assert 1 / len(LABELS) <= min(e["conf"]) and max(e["conf"]) <= 1
    assert data["epochs"][0]["coords"]["hidden"] != data["epochs"][2]["coords"]["hidden"]
    assert [len(r) for r in data["ranges"]["hidden"]] == [2, 2, 2]
    tokens = data["tokens"]
    assert len(tokens["id"]) == n and tokens["text"][0] == "&lt;b&gt;&amp;"  # escaped for plotly's hover HTML
    assert tokens["sent"][1] == "&lt;b&gt;&amp; <b>«w0x1»</b> w0x2 w0x3 w0x4 w0x5"
    assert data["labels"] == LABELS and data["colors"][0] == "#5a5a5a"
    assert data["metrics"]["epochs"] == [0, 1, 2]
    assert data["metrics"]["series"]["hidden/cka_prev"] == [None, 0.9, 0.9]  # missing at epoch 0
    titles = [c["title"] for c in data["charts"]]
    assert titles[0] == "accuracy and F1 on the sample" and "kNN label purity" in titles
    purity = next(c for c in data["charts"] if c["title"] == "kNN label purity")
    assert [line["name"] for line in purity["lines"]] == ["hidden", "emissions"]
    assert data["final"] is True


def test_rewritten_atomically_and_complete_after_every_epoch(tmp_path, monkeypatch):
    path = tmp_path / "live.html"
    sink = HtmlSink(path)
    for epoch in range(3):
        reader = path.open(encoding="utf-8") if path.exists() else None
        sink.log_epoch(*make_snapshot(epoch))
        if reader is not None:  # a reader that opened the old file still reads it whole
            old = reader.read()
            reader.close()
            assert old.rstrip().endswith("</html>") and len(read_payload_text(old)["epochs"]) == epoch
        assert [e["epoch"] for e in read_payload(path)["epochs"]] == list(range(epoch + 1))
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")
        assert read_payload(path)["final"] is False
        assert sorted(p.name for p in tmp_path.iterdir()) == ["live.html"]  # no temporary file left
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        sink.log_epoch(*make_snapshot(3))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["live.html"]


def read_payload_text(text: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        return read_payload(f.name)
    finally:
        os.unlink(f.name)


def test_max_epochs_inline_keeps_first_latest_and_a_spread_but_every_metric(tmp_path):
    sink = HtmlSink(tmp_path / "thin.html", max_epochs_inline=3)
    for epoch in range(6):
        sink.log_epoch(*make_snapshot(epoch, n_components=2))
    data = read_payload(tmp_path / "thin.html")
    kept = [e["epoch"] for e in data["epochs"]]
    assert len(kept) == 3 and kept[0] == 0 and kept[-1] == 5
    assert data["metrics"]["epochs"] == list(range(6))
    assert len(data["epochs"][0]["coords"]["hidden"]) == 2 * N_SENTENCES * WORDS  # 2-D coordinates
    with pytest.raises(ValueError, match="max_epochs_inline"):
        HtmlSink(max_epochs_inline=0)


def test_resume_continues_the_same_file(tmp_path):
    path = tmp_path / "resumed.html"
    first = HtmlSink(path)
    for epoch in range(2):
        first.log_epoch(*make_snapshot(epoch))
    before = read_payload(path)
    state = pickle.loads(pickle.dumps(first)).state_dict()  # picklable, e.g. for ddp_spawn
    second = HtmlSink(path)
    second.load_state_dict(state)
    second.log_epoch(*make_snapshot(2))
    data = read_payload(path)
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    assert data["metrics"]["epochs"] == [0, 1, 2]
    assert data["epochs"][:2] == before["epochs"] and data["tokens"] == before["tokens"]


def test_a_resumed_report_keeps_the_earlier_snapshots_neighbours_packed(tmp_path):
    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
    from lightning_ner_viz.analysis.neighbours import NeighbourFinder

    path, finder = tmp_path / "resumed.html", NeighbourFinder()

    def log(sink: HtmlSink, epoch: int) -> None:
        snapshot, coords, metrics = make_snapshot(epoch)
        sink.log_epoch(snapshot, coords, metrics)
        sink.log_analysis(snapshot, EpochAnalysis(neighbours=finder.find(snapshot)))

    first = HtmlSink(path)
    for epoch in range(2):
        log(first, epoch)
    before = read_payload(path)
    second = HtmlSink(path)
    second.load_state_dict(first.state_dict())
    log(second, 2)
    data = read_payload(path)
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2] and data["epochs"][:2] == before["epochs"]
    raw = json.loads(re.search(r'id="ner-viz-data">(.*?)</script>', path.read_text(encoding="utf-8"), re.DOTALL).group(1))
    assert all(e["analysis"]["neighbours"][k]["packed"] for e in raw["epochs"] for k in ("row", "dist"))


def test_relative_path_resolves_under_the_save_dir_given_to_setup(tmp_path):
    sink = HtmlSink("reports/r.html")
    assert sink.path == Path("reports/r.html")
    sink.setup(None, tmp_path / "store")
    assert sink.path == tmp_path / "store" / "reports" / "r.html" and sink.location == str(sink.path)
    sink.log_epoch(*make_snapshot(0, n_components=2))
    assert [e["epoch"] for e in read_payload(tmp_path / "store" / "reports" / "r.html")["epochs"]] == [0]
    assert sink.state_dict() == {"path": str(tmp_path / "store" / "reports" / "r.html")}


def test_with_the_callback_relative_path_lands_in_ner_viz(tmp_path, fit_with_callback, datamodule):
    fit_with_callback(sinks=[HtmlSink("report.html")], max_tokens=300, tokenizer=datamodule.tokenizer,
                      background=False)
    data = read_payload(tmp_path / "ner_viz" / "report.html")
    assert [e["epoch"] for e in data["epochs"]] == [0, 1]
    assert set(data["views"]) == {"hidden", "emissions"} and data["epochs"][1]["conf"] is not None
    assert any("<b>«" in s for s in data["tokens"]["sent"])
    assert data["final"] is True


def _pixels(png: bytes) -> np.ndarray:
    image = pytest.importorskip("PIL.Image", reason="Pillow (installed with rerun-sdk) reads the screenshots")
    import io

    return np.asarray(image.open(io.BytesIO(png)).convert("RGB"))


@needs_chromium
def test_renders_in_headless_chromium_and_the_slider_drives_the_frames(report, tmp_path):
    with chromium_page(tmp_path / "profile", 1300, 900) as (page, errors):
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        page.goto(report.as_uri() + "#epoch=2")
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        state = page.evaluate("nerViz.state()")
        assert state["epoch"] == 2 and state["webgl"], state
        names = [e["name"] for e in read_payload(report)["epochs"]]  # frames are named by snapshot
        assert names == ["epoch=0000-step=0000010", "epoch=0001-step=0000020", "epoch=0002-step=0000030"]
        assert page.evaluate("nerViz.frames('hidden')") == names and page.evaluate("nerViz.frames('emissions')") == names

        view = page.locator("#view-hidden")
        shot_last = _pixels(view.screenshot())
        assert shot_last.std() > 10 and len(np.unique(shot_last.reshape(-1, 3), axis=0)) > 50  # not blank
        full = _pixels(page.screenshot(full_page=True))
        assert full.shape[0] > 900 and len(np.unique(full.reshape(-1, 3), axis=0)) > 200
        plotted_last = page.evaluate("nerViz.plotted('hidden')")
        assert [t["name"] for t in plotted_last] == LABELS

        page.focus("#slider")  # the slider itself, moved by keyboard like a user would
        page.keyboard.press("Home")
        page.wait_for_function("nerViz.state().epoch === 0")
        page.wait_for_timeout(300)
        plotted_first = page.evaluate("nerViz.plotted('hidden')")
        assert plotted_first != plotted_last
        data = read_payload(report)
        first = data["epochs"][0]
        b_brand = [j for j, t in enumerate(first["idx"]) if data["tokens"]["gold"][t] == 1]
        fit = data["rescale"].get("hidden", [[1.0, 0.0]] * 3)[0]  # the page draws epochs at one size
        assert plotted_first[1]["x"] == [fit[0] * first["coords"]["hidden"][3 * j] + fit[1] for j in b_brand]
        shot_first = _pixels(view.screenshot())
        assert np.abs(shot_first.astype(int) - shot_last.astype(int)).mean() > 1  # the picture changed
        assert page.evaluate("location.hash") == "#snapshot=epoch=0000-step=0000010"

        page.evaluate("nerViz.setEpoch(1)")
        assert page.evaluate("nerViz.state().epoch") == 1
        page.click("#modes button[data-mode=correct]")
        page.wait_for_function("nerViz.state().mode === 'correct'")
        page.wait_for_function("nerViz.plotted('emissions').map(t => t.name).join() === 'correct,incorrect'")
        assert "incorrect" in page.inner_text("#legend")
        page.click("#legend .chip[data-name=correct]")  # a legend chip hides its points in every view
        page.wait_for_function("nerViz.plotted('hidden')[0].x.length === 0")
        assert len(page.evaluate("nerViz.plotted('hidden')")[1]["x"]) > 0

        page.click("#play")  # plays from epoch 1 to the last one, then stops
        page.wait_for_function("nerViz.state().epoch === 2", timeout=5_000)
        page.wait_for_function("document.getElementById('play').textContent.includes('Play')", timeout=5_000)
        assert page.locator("#metrics .metric").count() >= 3
        assert not errors, errors
        assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests  # offline

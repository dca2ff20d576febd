"""WandbSink logs the interactive HTML report once, at the end of fit, as a ``wandb.Html``
(``ner_viz_report/embeddings``): its own copy, or the file of the callback's HtmlSink. The media file in the offline run is the complete report and
opens in headless Chromium without errors; the per-snapshot tables stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import chromium_page, needs_chromium
from test_wandb_sink import _snapshots, log_snapshot
from wandb_reading import history, run_dir

from lightning_ner_viz import load_snapshots
from lightning_ner_viz.sinks import HtmlSink, WandbSink
from lightning_ner_viz.sinks.html import read_payload
from lightning_ner_viz.sinks.wandb_report import COPY_NAME

KEY = "ner_viz_report/embeddings"


def _logged_report(run: Path) -> tuple[list[dict], Path]:
    """The run's rows, and the one report media file (asserting it was logged once, after every snapshot's row)."""
    rows = history(run)
    reports = [r for r in rows if KEY in r]
    assert len(reports) == 1, [sorted(r) for r in rows]
    (report,) = reports
    assert report[KEY]["_type"] == "html-file" and "ner_viz/epoch" not in report  # not one more snapshot
    assert report["_step"] > max(r["_step"] for r in rows if "ner_viz/epoch" in r)
    media = run / "files" / report[KEY]["path"]
    assert media.is_file() and media.stat().st_size == report[KEY]["size"]
    return rows, media


def _check_complete(media: Path, names: list[str]) -> None:
    """The page holds every snapshot, is marked complete, has its slider and play button and plotly.js, and
    nothing W&B would inject (``inject=False``)."""
    payload = read_payload(media)
    assert [e["name"] for e in payload["epochs"]] == names and payload["final"] is True
    page = media.read_text(encoding="utf-8")
    assert 'id="slider"' in page and 'id="play"' in page and "plotly.js" in page
    assert "app.wandb.ai" not in page and '<base target="_blank">' not in page
    assert media.stat().st_size > 3_000_000  # self-contained: plotly.js is inlined


def test_without_an_html_sink_the_run_gets_its_own_complete_report(tmp_path, fit_with_callback):
    fit_with_callback(sinks=[WandbSink(init_kwargs={"dir": str(tmp_path / "wb")})], epochs=3)
    names = [s.key.name for s in load_snapshots(tmp_path / "ner_viz")]
    assert len(names) == 3
    run = run_dir(tmp_path / "wb")
    rows, media = _logged_report(run)
    _check_complete(media, names)
    copy = run / COPY_NAME  # beside files/, so W&B uploads only the media file
    assert copy.read_bytes() == media.read_bytes()
    snapshot_rows = [r for r in rows if "ner_viz/epoch" in r]
    assert len(snapshot_rows) == 3 and all("ner_viz/hidden/table" in r for r in snapshot_rows)  # tables stay


@needs_chromium
def test_with_an_html_sink_its_file_is_logged_and_opens_in_a_browser(tmp_path, fit_with_callback):
    html = HtmlSink()
    fit_with_callback(sinks=[html, WandbSink(init_kwargs={"dir": str(tmp_path / "wb")})])
    names = [s.key.name for s in load_snapshots(tmp_path / "ner_viz")]
    run = run_dir(tmp_path / "wb")
    _, media = _logged_report(run)
    assert media.read_bytes() == html.path.read_bytes() and not (run / COPY_NAME).exists()  # no second copy
    _check_complete(media, names)

    with chromium_page(tmp_path / "profile", 1400, 1000) as (page, errors):
        page.goto(media.as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=30_000)
        page.evaluate("nerViz.ready")
        assert page.evaluate("nerViz.frames('hidden')") == names
        assert page.evaluate("nerViz.state()")["name"] == names[-1]
        page.focus("#slider")
        page.keyboard.press("Home")
        page.wait_for_function(f"nerViz.state().name === {names[0]!r}")
        page.wait_for_timeout(300)
        assert errors == []


def test_report_false_logs_none_and_a_path_logs_that_file(tmp_path):
    off = WandbSink(init_kwargs={"dir": str(tmp_path / "off"), "project": "ner-viz-test"}, report=False)
    off.setup(None, tmp_path)
    for snapshot in _snapshots():
        log_snapshot(off, snapshot)
    off.close()
    run = run_dir(tmp_path / "off")
    assert not [r for r in history(run) if KEY in r] and not (run / COPY_NAME).exists()

    (tmp_path / "mine.html").write_text("<!DOCTYPE html><html><head></head><body>mine</body></html>")
    given = WandbSink(init_kwargs={"dir": str(tmp_path / "given"), "project": "ner-viz-test"}, report="mine.html")
    given.setup(None, tmp_path)  # a relative path resolves under the snapshot root
    log_snapshot(given, _snapshots()[0])
    given.close()
    run = run_dir(tmp_path / "given")
    _, media = _logged_report(run)
    assert media.read_text() == (tmp_path / "mine.html").read_text()  # passed through unchanged
    with pytest.raises(TypeError, match="report="):
        WandbSink(report=3)  # type: ignore[arg-type]

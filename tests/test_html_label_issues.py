"""HtmlSink's label-issue panel: each fit snapshot carries its report (the data map and the most suspect tokens),
the panel follows the slider, a point or a row rings its token in the clouds, and hostile text stays text, in a
real headless Chromium over a page an HtmlSink wrote from real reports (tests/label_issue_data.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium
from label_issue_data import HOSTILE, reports, snapshot_of

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.analysis.label_issue_report import LabelIssueReport
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.sinks.html_label_issues import label_issues_part

pytest.importorskip("cleanlab", reason="label issues need cleanlab (the analysis extra)")

POINT_AT = """id => {  // the viewport position of token id's point on the data map
  const div = document.getElementById('limap'), xa = div._fullLayout.xaxis, ya = div._fullLayout.yaxis;
  const box = div.getBoundingClientRect();
  const p = nerViz.data.epochs[nerViz.state().index].analysis.label_issues.points;
  const j = p.token_id.indexOf(id);
  return {x: box.left + xa._offset + xa.l2p(p.variability[j]), y: box.top + ya._offset + ya.l2p(p.confidence[j])};
}"""
LONELY = """() => {  // the in-sample point farthest (in pixels) from any other point, so a mouse over it hovers it alone
  const div = document.getElementById('limap'), xa = div._fullLayout.xaxis, ya = div._fullLayout.yaxis;
  const p = nerViz.data.epochs[nerViz.state().index].analysis.label_issues.points;
  const at = p.token_id.map((_, j) => [xa.l2p(p.variability[j]), ya.l2p(p.confidence[j])]);
  let best = null, far = -1;
  at.forEach((a, j) => {
    if (!p.in_sample[j]) return;
    const d = Math.min(...at.filter((_, k) => k !== j).map(b => Math.hypot(a[0] - b[0], a[1] - b[1])));
    if (d > far) { far = d; best = p.token_id[j]; }
  });
  return {id: best, gap: far};
}"""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LabelIssueReport], list[int]]:
    """A baseline ``validate()`` snapshot (no report), then the three fit validations with their reports."""
    root = tmp_path_factory.mktemp("label_issues")
    found = reports(root / "store")
    sample = np.array(sorted(t for t, s in zip(found[0].points["token_id"], found[0].points["in_sample"]) if s))
    sink = HtmlSink(root / "report.html")
    baseline = dataclasses.replace(snapshot_of(0, sample), stage="validate", step=0)
    snapshots = [(baseline, None)] + [(snapshot_of(e, sample), r) for e, r in enumerate(found)]
    for snapshot, report in snapshots:
        sink.log_epoch(snapshot, {"hidden": snapshot.views["hidden"]}, {"label_issues/flagged": 1.0})
        sink.log_analysis(snapshot, EpochAnalysis(label_issues=report))
    sink.close()
    return sink.path, found, sample.tolist()


def test_each_fit_snapshot_carries_its_report_and_the_baseline_none(written):
    path, found, sample = written
    data = read_payload(path)
    assert [e["stage"] for e in data["epochs"]] == ["validate", "fit", "fit", "fit"]
    assert "label_issues" not in data["epochs"][0]["analysis"]
    for e, report in zip(data["epochs"][1:], found):
        part = e["analysis"]["label_issues"]
        assert part == json.loads(json.dumps(label_issues_part(report)))
        assert part["validations"] == report.validations and len(part["points"]["token_id"]) == 160
        assert part["top"][0]["token_id"] == report.top[0]["token_id"] and len(part["top"]) == len(report.top)
        assert {t for t, s in zip(part["points"]["token_id"], part["points"]["in_sample"]) if s} == set(sample)
    text = path.read_text(encoding="utf-8")
    assert "</script><script>window.__pwned" not in text and "<\\/script><script>window.__pwned" in text



def test_thinning_and_resuming_keep_each_kept_snapshots_report(written, tmp_path):
    _, found, sample = written
    path, ids = tmp_path / "thin.html", np.array(sample)
    first = HtmlSink(path, max_epochs_inline=2)
    for epoch, report in enumerate(found[:2]):
        first.log_epoch(snapshot_of(epoch, ids), {"hidden": np.zeros((len(ids), 2))}, {})
        first.log_analysis(snapshot_of(epoch, ids), EpochAnalysis(label_issues=report))
    second = HtmlSink(path, max_epochs_inline=2)  # resumed at epoch 2: epochs 0 and 1 read back, 1 thinned away
    second.load_state_dict(first.state_dict())
    second.log_epoch(snapshot_of(2, ids), {"hidden": np.zeros((len(ids), 2))}, {})
    second.log_analysis(snapshot_of(2, ids), EpochAnalysis(label_issues=found[2]))
    kept = read_payload(path)["epochs"]
    assert [e["epoch"] for e in kept] == [0, 2]
    assert [e["analysis"]["label_issues"]["top"][0]["token_id"] for e in kept] == [
        found[0].top[0]["token_id"], found[2].top[0]["token_id"]]
    assert kept[0]["analysis"]["label_issues"]["validations"] == 1 and kept[1]["analysis"]["label_issues"]["validations"] == 3


@needs_chromium
def test_in_chromium_the_panel_follows_the_slider_rings_tokens_and_keeps_hostile_text_as_text(written, tmp_path):
    path, found, sample = written
    with chromium_page(tmp_path / "profile", 1400, 1000) as (page, errors):
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        for k, report in enumerate(found):  # each fit snapshot: its points, its rows, its numbers
            page.evaluate(f"nerViz.setSnapshot(nerViz.names[{k + 1}])")
            shown = page.evaluate("nerViz.labelIssues()")
            assert shown["shown"] and shown["points"] == len(report.points["token_id"]) == 160
            assert shown["flagged"] == sum(report.points["flagged"]) == report.flagged
            assert shown["rows"] == [row["token_id"] for row in report.top]
            assert f"{report.validations} validation" in shown["head"] and "softmax" in shown["head"]
            assert report.csv_path in shown["head"] and "160 labelled tokens ranked" in shown["head"]
            first, top = page.locator("#litable tbody tr").first.inner_text(), report.top[0]
            assert first.split()[0] == str(top["rank"]) == "1"
            assert top["word"] in first and top["given"] in first and top["suggested"] in first
        assert HOSTILE in page.inner_text("#litable")  # a hostile word shows as text in the table

        page.evaluate("nerViz.setSnapshot(nerViz.names[0])")  # the validate() baseline: a note, no panel
        shown = page.evaluate("nerViz.labelIssues()")
        assert not shown["shown"] and "fit validations only" in shown["head"]
        assert not page.locator("#li").is_visible()

        page.focus("#slider")
        page.keyboard.press("End")  # back to the last fit snapshot
        page.wait_for_function("nerViz.state().index === 3")
        page.locator("#limap").scroll_into_view_if_needed()
        lonely = page.evaluate(LONELY)
        assert lonely["id"] in sample and lonely["gap"] > 6
        at = page.evaluate(POINT_AT, lonely["id"])
        page.mouse.move(at["x"], at["y"])  # hover: the token in its sentence, given -> suggested
        page.wait_for_selector("#limap .hoverlayer .hovertext")
        j = found[2].points["token_id"].index(lonely["id"])
        head = found[2].points["text"][j].split(" | ")[0]
        assert head in page.evaluate("document.querySelector('#limap .hoverlayer').textContent")
        page.mouse.click(at["x"], at["y"])  # click: ring it in the clouds
        page.wait_for_function("nerViz.highlighted('hidden') !== null")
        assert page.evaluate("nerViz.analysis().selected") == lonely["id"]
        shown = page.evaluate("nerViz.labelIssues()")
        assert shown["picked"] == lonely["id"] and shown["ring"] is not None and "Ringed in the clouds" in shown["note"]
        assert len(page.evaluate("nerViz.highlighted('hidden')")["x"]) == 1

        out = next(i for i, row in enumerate(found[2].top) if not row["in_sample"])
        page.locator("#litable tbody tr").nth(out).click()  # a row not in the sample: said so, nothing ringed
        page.wait_for_function("nerViz.highlighted('hidden') === null")
        shown = page.evaluate("nerViz.labelIssues()")
        assert shown["picked"] == found[2].top[out]["token_id"] and "not among the" in shown["note"]
        assert page.locator("#litable tbody tr.sel").count() == 1
        inside = next(i for i, row in enumerate(found[2].top) if row["in_sample"])
        page.locator("#litable tbody tr").nth(inside).click()  # a row in the sample: ringed, as a point
        page.wait_for_function("nerViz.highlighted('hidden') !== null")
        assert page.evaluate("nerViz.analysis().selected") == found[2].top[inside]["token_id"]
        page.locator("#litable tbody tr").nth(inside).click()  # again: cleared
        page.wait_for_function("nerViz.highlighted('hidden') === null")
        assert page.evaluate("nerViz.labelIssues().picked") is None

        hostile = page.evaluate("""() => document.getElementById('limap').data.flatMap(t => t.hovertext || [])
            .filter(h => h.includes('pwned'))""")
        assert all("<img" not in h and "<script" not in h and "</script" not in h for h in hostile)
        assert any("&lt;img src=x" in h for h in hostile) and any("&lt;/script&gt;&lt;script&gt;" in h for h in hostile)
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('img, iframe').length") == 0
        assert page.evaluate("document.scripts.length") == 3
        assert not errors and not console, (errors, console)

        bare = HtmlSink(tmp_path / "bare.html")  # a report without label issues has no such section
        snapshot = snapshot_of(0, np.array(sample))
        bare.log_epoch(snapshot, {"hidden": snapshot.views["hidden"]}, {})
        bare.log_analysis(snapshot, EpochAnalysis())
        page.goto(bare.path.as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        assert not page.locator("#lisection").is_visible() and not page.evaluate("nerViz.labelIssues().shown")
        assert not errors and not console, (errors, console)

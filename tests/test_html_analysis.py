"""HtmlSink shows each snapshot's analyses: the whole-set confusion and span errors, the errors table, class
similarity and sub-clusters; written once per snapshot after ``log_analysis``, thinned and resumed with its cloud,
and driven by the slider, the colour modes and the errors table in a real headless Chromium (#13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium

from lightning_ner_viz import Snapshot
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis, EpochAnalyst
from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.sinks.html_analysis import ERROR_ROWS
from lightning_ner_viz.snapshot import make_token_id

pytest.importorskip("sklearn", reason="sub-clusters need scikit-learn (the analysis extra)")

LABELS = ["O", "B-BRAND", "I-BRAND", "B-TYPE", "I-TYPE"]
TYPES = ["BRAND", "TYPE"]
O, B_BRAND, I_BRAND, B_TYPE, I_TYPE = range(5)
COUNTS = {O: 120, B_BRAND: 60, I_BRAND: 40, B_TYPE: 40, I_TYPE: 40}  # 300 tokens, 50 sentences of 6
PLANTED = 8
"""B-TYPE tokens whose vectors sit among the I-BRAND ones, predicted O: their neighbours vote I-BRAND."""
DIM, WORDS = 16, 6


def token_snapshot(epoch: int) -> Snapshot:
    """Label clusters far apart; B-BRAND in two planted sub-clusters (words ``valio`` and ``danone``); the first
    ``PLANTED`` B-TYPE tokens in I-BRAND's region, predicted O; a few O tokens predicted B-BRAND where they are."""
    rng = np.random.default_rng(epoch)
    gold = np.concatenate([np.full(n, label) for label, n in COUNTS.items()])
    n = len(gold)
    centres = 10.0 * np.eye(DIM)[:len(LABELS)]
    hidden = centres[gold] + rng.normal(0, 0.6, (n, DIM))
    brand = np.flatnonzero(gold == B_BRAND)
    hidden[brand[30:]] += 6.0 * np.eye(DIM)[8]  # the second B-BRAND sub-cluster
    planted = np.flatnonzero(gold == B_TYPE)[:PLANTED]
    hidden[planted] = centres[I_BRAND] + rng.normal(0, 0.6, (PLANTED, DIM))
    pred = gold.copy()
    pred[planted] = O
    pred[np.flatnonzero(gold == O)[:3 + epoch]] = B_BRAND  # mild errors, where O tokens are: attracted less
    words = [f"w{i}" for i in range(n)]
    for k, i in enumerate(brand):
        words[i] = "valio" if k < 30 else "danone"
    for i in planted:
        words[i] = "yogurt"
    sentence_id, position = np.arange(n) // WORDS, np.arange(n) % WORDS
    confusion = np.diag([COUNTS[c] * 10 for c in range(len(LABELS))]).astype(np.int64)
    confusion[B_TYPE, O] = 20 - 5 * epoch  # the whole set: fewer B-TYPE -> O each epoch
    confusion[O, B_BRAND] = 3 + epoch
    spans = np.array([[90 + epoch, 1, 2, 7 - epoch, 0, 100, 95], [80, 0, 5 + epoch, 15 - epoch, 2, 100, 90]])
    return Snapshot(
        epoch=epoch, step=10 * (epoch + 1), token_id=make_token_id(sentence_id, position), sentence_id=sentence_id,
        position=position, token=list(words), word=list(words), gold=gold, pred=pred,
        views={"hidden": hidden.astype(np.float32), "emissions": np.eye(len(LABELS))[pred].astype(np.float32) * 3},
        label_names=LABELS, sentences={s: " ".join(words[s * WORDS:(s + 1) * WORDS]) for s in range(n // WORDS)},
        groups={"entities": entity_group(epoch)}, confusion=confusion, span_counts=spans, span_types=TYPES)


def entity_group(epoch: int) -> Snapshot:
    """One row per entity span, entity types as classes; BRAND in two sub-clusters."""
    rng = np.random.default_rng(100 + epoch)
    gold = np.repeat([1, 2], 40)
    x = 10.0 * np.eye(8)[gold] + rng.normal(0, 0.5, (80, 8))
    x[20:40] += 6.0 * np.eye(8)[5]
    return Snapshot(epoch=epoch, step=10 * (epoch + 1), token_id=np.arange(80), sentence_id=np.arange(80) // 2,
                    position=np.zeros(80, int), token=["valio"] * 80, word=["valio"] * 80, gold=gold, pred=gold,
                    views={"entities": x.astype(np.float32)}, label_names=["O", *TYPES],
                    sentences={s: "valio milk" for s in range(40)})


def log_snapshot(sink: HtmlSink, snapshot: Snapshot, analyst: EpochAnalyst | None) -> EpochAnalysis | None:
    """What the renderer does: ``log_epoch``, each ``log_group``, then ``log_analysis`` (when ``analyst`` is given)."""
    coords = {v: x[:, :3] for v, x in snapshot.views.items()}
    sink.log_epoch(snapshot, coords, {"entity_f1": 0.8})
    for name, group in snapshot.groups.items():
        sink.log_group(name, group, group.views[name][:, :3])
    if analyst is None:
        return None
    analysis = analyst.analyse(snapshot)
    sink.log_analysis(snapshot, analysis)
    return analysis


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sink, analyst = HtmlSink(tmp_path_factory.mktemp("analysis") / "report.html"), EpochAnalyst()
    for epoch in range(3):
        log_snapshot(sink, token_snapshot(epoch), analyst)
    sink.close()
    return sink.path


def test_each_snapshot_carries_its_whole_set_confusion_and_span_counts(report):
    data = read_payload(report)
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    for epoch, e in enumerate(data["epochs"]):
        snapshot = token_snapshot(epoch)
        assert e["analysis"]["confusion"] == snapshot.confusion.tolist()
        spans = e["analysis"]["spans"]
        assert spans["types"] == TYPES and spans["columns"] == list(SPAN_CATEGORIES)
        assert spans["counts"] == snapshot.span_counts.tolist()
        assert spans["f1"][0] == pytest.approx(2 * (90 + epoch) / 195, abs=1e-4)
    confusions = [e["analysis"]["confusion"] for e in data["epochs"]]
    assert confusions[0] != confusions[1] != confusions[2] and confusions[0] != confusions[2]
    assert data["epochs"][0]["analysis"]["spans"] != data["epochs"][2]["analysis"]["spans"]


def test_errors_are_sorted_by_margin_and_the_planted_tokens_vote_for_the_class_they_sit_in(report):
    data = read_payload(report)
    tokens = data["tokens"]
    for e in data["epochs"]:
        for view in ("hidden", "emissions"):
            errors = e["analysis"]["errors"][view]
            assert len(errors["row"]) == PLANTED + 3 + e["epoch"]  # every error, the table shows ERROR_ROWS of them
            assert len(errors["knn"]) == len(errors["near"]) == len(errors["margin"]) == len(errors["row"])
        errors = e["analysis"]["errors"]["hidden"]
        margins = [m for m in errors["margin"] if m is not None]
        assert margins == sorted(margins)
        first = errors["row"][:PLANTED]  # the most attracted: the planted B-TYPE tokens in I-BRAND's region
        assert {tokens["gold"][e["idx"][r]] for r in first} == {B_TYPE} and {e["pred"][r] for r in first} == {O}
        assert errors["knn"][:PLANTED] == [I_BRAND] * PLANTED and errors["near"][:PLANTED] == [I_BRAND] * PLANTED
        assert all(m < 0 for m in errors["margin"][:PLANTED])
        assert {tokens["word"][e["idx"][r]] for r in first} == {"yogurt"}
    assert data["error_rows"] == ERROR_ROWS


def test_cluster_ids_per_token_find_the_planted_sub_clusters_and_stay(report):
    data = read_payload(report)
    gold = np.asarray(data["tokens"]["gold"])
    ids_per_epoch = []
    for e in data["epochs"]:
        clusters = e["analysis"]["clusters"]
        assert clusters["view"] == "hidden" and len(clusters["cid"]) == len(e["idx"])
        cid = np.asarray(clusters["cid"])
        brand = cid[gold[e["idx"]] == B_BRAND]
        assert len(set(brand[:30].tolist())) == 1 and len(set(brand[30:].tolist())) == 1 and brand[0] != brand[-1]
        assert brand[0] >= 0 and brand[-1] >= 0
        ids_per_epoch.append((int(brand[0]), int(brand[-1])))
        summaries = {(s["class"], s["id"]): s for s in clusters["summaries"]}
        valio, danone = summaries[(B_BRAND, brand[0])], summaries[(B_BRAND, brand[-1])]
        assert valio["words"] == ["valio"] and danone["words"] == ["danone"]
        assert valio["size"] == 30 and valio["error_rate"] == 0
        assert {"hidden", "emissions", "entities"} <= set(e["analysis"]["similarity"])
        sim = e["analysis"]["similarity"]["hidden"]
        assert sim["labels"] == LABELS and len(sim["sim"]) == len(LABELS) and sim["sim"][0][0] == pytest.approx(1)
    assert len(set(ids_per_epoch)) == 1  # stable ids across snapshots
    for g in data["groups"]["entities"]["epochs"]:
        cid = g["analysis"]["clusters"]["cid"]
        assert len(cid) == len(g["idx"]) == 80 and len(set(cid[:20])) == 1 and cid[0] != cid[20]


def test_written_once_per_snapshot_after_its_analysis(tmp_path, monkeypatch):
    sink, analyst = HtmlSink(tmp_path / "r.html"), EpochAnalyst()
    writes: list[list[str]] = []
    write = sink._write

    def counted() -> None:
        write()
        writes.append([e["name"] for e in read_payload(sink.path)["epochs"]])

    monkeypatch.setattr(sink, "_write", counted)
    log_snapshot(sink, token_snapshot(0), analyst)  # the first: after its groups (no analysis seen yet), then again
    assert len(writes) == 2 and "errors" in read_payload(sink.path)["epochs"][0]["analysis"]
    log_snapshot(sink, token_snapshot(1), None)  # the caller now sends its analysis last: nothing written yet
    assert len(writes) == 2
    sink.log_analysis(token_snapshot(1), analyst.analyse(token_snapshot(1)))
    assert len(writes) == 3 and len(writes[-1]) == 2
    assert all("clusters" in e["analysis"] for e in read_payload(sink.path)["epochs"])
    log_snapshot(sink, token_snapshot(2), None)  # no analysis came for epoch 1's successor: written as it comes
    log_snapshot(sink, token_snapshot(3), None)
    assert len(writes) == 4 and len(writes[-1]) == 4
    data = read_payload(sink.path)
    assert "errors" not in data["epochs"][3]["analysis"] and data["epochs"][3]["analysis"]["confusion"] is not None


def test_thinning_and_resuming_keep_each_kept_snapshots_analysis(tmp_path):
    path = tmp_path / "thin.html"
    first, analyst = HtmlSink(path, max_epochs_inline=2), EpochAnalyst()
    for epoch in range(3):
        log_snapshot(first, token_snapshot(epoch), analyst)
    data = read_payload(path)
    assert [e["epoch"] for e in data["epochs"]] == [0, 2]
    kept = [token_snapshot(k).confusion.tolist() for k in (0, 2)]
    assert [e["analysis"]["confusion"] for e in data["epochs"]] == kept
    assert all(len(e["analysis"]["clusters"]["cid"]) == len(e["idx"]) for e in data["epochs"])
    assert [len(g["analysis"]["clusters"]["cid"]) for g in data["groups"]["entities"]["epochs"]] == [80, 80]

    second = HtmlSink(path, max_epochs_inline=2)
    second.load_state_dict(first.state_dict())
    log_snapshot(second, token_snapshot(3), analyst)
    resumed = read_payload(path)
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 3]
    assert resumed["epochs"][0]["analysis"] == data["epochs"][0]["analysis"]  # read back from the file
    assert resumed["groups"]["entities"]["epochs"][0]["analysis"] == data["groups"]["entities"]["epochs"][0]["analysis"]
    assert resumed["epochs"][1]["analysis"]["confusion"] == token_snapshot(3).confusion.tolist()


def test_with_the_callback_each_snapshot_has_the_whole_sets_confusion(tmp_path, fit_with_callback, datamodule):
    fit_with_callback(sinks=[HtmlSink("report.html")], max_tokens=200, tokenizer=datamodule.tokenizer,
                      background=False)
    data = read_payload(tmp_path / "ner_viz" / "report.html")
    labelled = sum(int((batch["labels"] != -100).sum()) for batch in datamodule.val_dataloader())
    assert [e["epoch"] for e in data["epochs"]] == [0, 1]
    for e in data["epochs"]:
        confusion = np.asarray(e["analysis"]["confusion"])
        assert confusion.shape == (len(data["labels"]),) * 2 and confusion.sum() == labelled
        assert e["analysis"]["spans"]["types"] and "hidden" in e["analysis"]["errors"]
        assert len(e["analysis"]["clusters"]["cid"]) == len(e["idx"])


@needs_chromium
def test_in_chromium_modes_slider_and_errors_table_drive_the_analysis(report, tmp_path):
    data = read_payload(report)
    with chromium_page(tmp_path / "profile", 1400, 1800) as (page, errors):
        page.goto(report.as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        assert page.evaluate("nerViz.state().index") == 2
        shown = page.evaluate("nerViz.analysis()")
        assert shown["confusion"] == token_snapshot(2).confusion.tolist()  # the counts drawn in the cells
        total = int(token_snapshot(2).confusion.sum())
        assert f"whole validation set: {total:,} tokens" in page.inner_text("#conftitle")
        assert "BRAND" in page.inner_text("#spans") and shown["clusters"] >= 4

        page.click("#modes button[data-mode=knn]")
        page.wait_for_function("nerViz.state().mode === 'knn'")
        legend = page.inner_text("#legend")
        assert "→ I-BRAND" in legend and "not misclassified" in legend
        knn = {t["name"]: len(t["x"]) for t in page.evaluate("nerViz.plotted('hidden')")}
        assert knn["→ I-BRAND"] == PLANTED

        page.evaluate("nerViz.setColor('cluster')")
        page.wait_for_function("nerViz.state().mode === 'cluster'")
        plotted = page.evaluate("nerViz.plotted('hidden')")
        brand = {t["name"]: len(t["x"]) for t in plotted if t["name"].startswith("B-BRAND #")}
        assert sorted(brand.values()) == [30, 30]
        chips = page.inner_text("#legend")
        assert "(n=30): valio" in chips and "(n=30): danone" in chips

        page.focus("#slider")  # the slider moves the heatmaps with it
        page.keyboard.press("Home")
        page.wait_for_function("nerViz.state().index === 0")
        first = page.evaluate("nerViz.analysis()")
        assert first["confusion"] == token_snapshot(0).confusion.tolist() != shown["confusion"]
        assert page.evaluate("nerViz.analysis()")["similarity"] is not None

        click = "document.getElementById('confusion').emit('plotly_click', {points: [{x: 'O', y: 'B-TYPE'}]})"
        page.evaluate(click)  # a confusion cell lists only its tokens
        assert len(page.evaluate("nerViz.analysis()")["errors"]) == PLANTED and "only gold" in page.inner_text("#errnote")
        page.evaluate(click)  # the same cell again: every error
        rows = page.evaluate("nerViz.analysis()")["errors"]
        assert rows == first["errors"]  # token ids of the errors table, most attracted first
        errors_0 = data["epochs"][0]["analysis"]["errors"]["hidden"]
        assert len(rows) == len(errors_0["row"])
        page.locator("#errtable tbody tr").nth(1).click()
        page.wait_for_function("nerViz.highlighted('hidden') !== null")
        assert page.evaluate("nerViz.analysis().selected") == rows[1]
        ring = page.evaluate("nerViz.highlighted('hidden')")
        row = errors_0["row"][1]
        fit = data["rescale"].get("hidden", [[1.0, 0.0, 0.0, 0.0]] * 3)[0]
        xyz = data["epochs"][0]["coords"]["hidden"][3 * row:3 * row + 3]
        assert ring["x"] == [pytest.approx(fit[0] * xyz[0] + fit[1], abs=1e-6)] and ring["text"] == ["yogurt"]
        assert page.locator("#errtable tbody tr.sel").count() == 1
        assert "ringed: yogurt" in page.inner_text("#selnote")  # said in the sticky bar; the page does not scroll
        assert "selected" not in [t["name"] for t in page.evaluate("nerViz.plotted('hidden')")]
        page.focus("#slider")
        page.keyboard.press("End")  # the ring follows the token to another snapshot
        page.wait_for_function("nerViz.state().index === 2")
        assert page.evaluate("nerViz.highlighted('emissions')")["text"] == ["yogurt"]
        assert not errors, errors

"""The HTML report's search, filter and selection (#18), in a real headless Chromium over pages a real HtmlSink wrote:
a search highlights exactly the tokens whose text matches in every snapshot, a filter keeps exactly the rows that pass
it per snapshot (a token's prediction and confidence change by epoch), a box selection (plotly's event or
``nerViz.selectBox``) picks exactly the points inside and exports exactly those rows, a large report opens cleanly, and
hostile text stays text through all of them."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium

from lightning_ner_viz import Snapshot
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.snapshot import make_token_id

pytestmark = needs_chromium

LABELS = ["O", "B-BRAND", "I-BRAND", "B-TYPE", "I-TYPE"]
EPOCHS, SENTENCES, WIDTH = 4, 45, 6  # 270 tokens, each snapshot missing a few (so the rows differ per snapshot)
BRANDS = ["valio", "Valio", "VALIOLA", "danone", "arla"]
CSV_HEAD = ["token_id", "token", "word", "sentence", "gold", "predicted", "correct", "confidence", "snapshot"]


def _words(n_sentences: int) -> tuple[list[str], list[int]]:
    words, gold = [], []
    for s in range(n_sentences):
        brand, kind = BRANDS[s % len(BRANDS)], ["milk", "yogurt", "kefir"][s % 3]
        words += [brand, kind, "drink" if s % 4 == 0 else "fresh", "1l", "pack", f"w{s}"]
        gold += [1, 3, 4, 0, 0, 0] if s % 4 == 0 else [1, 3, 0, 0, 0, 0]
    return words, gold


PER_ROW = ("token_id", "sentence_id", "position", "token", "word", "gold", "pred")


def explore_snapshot(epoch: int, n_sentences: int = SENTENCES, seed: int | None = None, **overrides: Any) -> Snapshot:
    """Planted labels with vectors around each label's centre; predictions, confidences and 2-D coordinates that
    change by epoch; a few rows missing from each snapshot (``overrides``: other fields, per-row ones at full
    length)."""
    rng = np.random.default_rng(epoch if seed is None else seed)
    words, planted = _words(n_sentences)
    gold = np.asarray(overrides.get("gold", planted))
    n = len(gold)
    hidden = 8.0 * np.eye(16)[gold % 16] + np.random.default_rng(1).normal(0, 1, (n, 16)) + rng.normal(0, 0.3, (n, 16))
    pred = gold.copy()
    flip = rng.random(n) < 0.35 - 0.08 * epoch
    pred[flip] = rng.integers(0, len(LABELS), int(flip.sum()))
    emissions = np.eye(len(LABELS))[pred] * rng.uniform(0.2, 5.0, (n, 1)) + rng.normal(0, 0.3, (n, len(LABELS)))
    sentence_id, position = np.arange(n) // WIDTH, np.arange(n) % WIDTH
    tokens = [w[:3] + "##" if w in BRANDS[:3] and i % 2 else w for i, w in enumerate(words)]
    fields = dict(
        epoch=epoch, step=10 * (epoch + 1), token_id=make_token_id(sentence_id, position), sentence_id=sentence_id,
        position=position, token=tokens, word=words, gold=gold, pred=emissions.argmax(1), label_names=LABELS,
        sentences={s: " ".join(words[s * WIDTH:(s + 1) * WIDTH]) for s in range(n // WIDTH)})
    fields.update(overrides)
    keep = np.flatnonzero((np.arange(n) + epoch) % 23 != 0)
    for f in PER_ROW:
        fields[f] = [fields[f][i] for i in keep] if isinstance(fields[f], list) else np.asarray(fields[f])[keep]
    fields["views"] = {"hidden": hidden[keep].astype(np.float32), "emissions": emissions[keep].astype(np.float32)}
    return Snapshot(**fields)


def coords_2d(snapshot: Snapshot, epoch: int) -> dict[str, np.ndarray]:
    """2-D coordinates that move by epoch."""
    return {v: x[:, :2] + 0.5 * epoch * np.array([1.0, -0.5]) + x[:, 2:4] * 0.3 for v, x in snapshot.views.items()}


def write(path: Path, snaps: list[Snapshot], analyse: bool) -> Path:
    sink = HtmlSink(path)
    analyst = None
    if analyse:
        from lightning_ner_viz.analysis.epoch_analysis import EpochAnalyst

        analyst = EpochAnalyst()
    for snapshot in snaps:
        sink.log_epoch(snapshot, coords_2d(snapshot, snapshot.epoch), {"entity_f1": 0.5})
        if analyst is not None:
            sink.log_analysis(snapshot, analyst.analyse(snapshot))
    sink.close()
    return sink.path


# ---- the payload, read back the way the page reads it ------------------------------------------------------


def raw_rows(data: dict[str, Any]) -> dict[str, list[str]]:
    """The row table's text as the user wrote it: the payload keeps it escaped for plotly, the sentence marked."""
    tok = data["tokens"]
    text, word = [html.unescape(t) for t in tok["text"]], [html.unescape(w) for w in tok["word"]]
    marked = [html.unescape(re.sub(r"</?b>", "", s)) for s in tok["sent"]]
    sent = [s.replace(f"«{w}»", w, 1) for s, w in zip(marked, word)]
    return {"text": text, "word": word, "sent": sent}


def rows_where(data: dict[str, Any], k: int, keep) -> set[int]:
    """Token ids of snapshot k's rows j for which keep(t, j, epoch) holds (t: the row of the table)."""
    e, ids = data["epochs"][k], data["tokens"]["id"]
    return {ids[t] for j, t in enumerate(e["idx"]) if keep(t, j, e)}


def open_report(page, path: Path, errors: list[str], hash_: str = "", width: int = 1400) -> None:
    errors.clear()
    page.set_viewport_size({"width": width, "height": 1300})
    page.goto("about:blank")
    page.goto(path.as_uri() + hash_)
    page.wait_for_function("window.nerViz !== undefined", timeout=30_000)
    page.evaluate("nerViz.ready")


def go_to(page, k: int) -> None:
    page.evaluate("k => nerViz.setSnapshot(nerViz.names[k])", k)
    page.wait_for_function("k => nerViz.state().index === k", arg=k)


DRAWN_MATCHES = """([v, ids]) => {  // panel v draws exactly these ids as search matches
  const m = nerViz.overlays(v).matches;
  return !!m && m.ids.length === ids.length && ids.every(i => m.ids.includes(i));
}"""


def drawn_ids(page, view: str) -> set[int]:
    return {i for t in page.evaluate("v => nerViz.plotted(v)", view) for i in t["ids"]}


# ---- fixtures: each report built once --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium_page(tmp_path_factory.mktemp("profile"), 1400, 1300) as (page, errors):
        yield page, errors


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    pytest.importorskip("sklearn", reason="sub-clusters need scikit-learn (the analysis extra)")
    path = write(tmp_path_factory.mktemp("explore") / "report.html", [explore_snapshot(e) for e in range(EPOCHS)], True)
    return path, read_payload(path)


def test_search_highlights_exactly_the_matching_tokens_in_every_snapshot(planted, browser):
    path, data = planted
    page, errors = browser
    raw = raw_rows(data)
    open_report(page, path, errors)
    last = len(data["epochs"]) - 1
    word_has = lambda q: lambda t, j, e: q in raw["word"][t].lower()  # noqa: E731
    found = page.evaluate("nerViz.search('valio', {in: 'word'})")
    assert set(found) == rows_where(data, last, word_has("valio")) and len(found) > 20
    assert {raw["word"][data["tokens"]["id"].index(i)] for i in found} == {"valio", "Valio", "VALIOLA"}  # any case
    page.focus("#slider")
    page.keyboard.press("Home")
    for k in range(len(data["epochs"])):  # the search holds as the slider moves: the rows differ per snapshot
        if k:
            page.keyboard.press("ArrowRight")
        page.wait_for_function("k => nerViz.state().index === k", arg=k)
        expected = rows_where(data, k, word_has("valio"))
        assert set(page.evaluate("nerViz.matches()")) == expected
        for view in ("hidden", "emissions"):  # drawn highlighted in every cloud, the rest dimmed
            page.wait_for_function(DRAWN_MATCHES, arg=[view, sorted(expected)])
        assert set(page.evaluate("nerViz.explore().listed")) == expected  # the list under the clouds
        assert f"{len(expected)} of {len(data['epochs'][k]['idx'])} tokens match" in page.inner_text("#xnote")
    assert rows_where(data, 0, word_has("valio")) != rows_where(data, last, word_has("valio"))
    assert "&q=valio&in=word" in page.evaluate("location.hash")

    def either(pattern: str, flags: int = re.I):  # in the token or its word
        rx = re.compile(pattern, flags)
        return rows_where(data, last, lambda t, j, e: bool(rx.search(raw["text"][t]) or rx.search(raw["word"][t])))

    assert set(page.evaluate("nerViz.search('VAL', {in: 'tw'})")) == either("val")
    pattern = "^val(io)?##$|^arla$"
    assert set(page.evaluate("q => nerViz.search(q, {regex: true})", pattern)) == either(pattern)
    assert set(page.evaluate("nerViz.search('/^Valio$/')")) == either("^Valio$", 0)  # /.../: case as written
    in_sentence = rows_where(data, last, lambda t, j, e: "danone kefir" in raw["sent"][t].lower())
    assert set(page.evaluate("nerViz.search('danone kefir', {in: 'sent'})")) == in_sentence and in_sentence

    assert page.evaluate("nerViz.search('(unclosed', {regex: true})") == []  # an invalid regex: a short note, no throw
    state = page.evaluate("nerViz.explore()")
    assert state["error"].startswith("invalid regex") and "invalid regex" in page.inner_text("#xnote")
    assert page.evaluate("document.getElementById('q').classList.contains('bad')")

    page.click("#qre")  # regex off: the same text is plain text, and no error
    page.wait_for_function("nerViz.explore().regex === false")
    assert page.evaluate("nerViz.explore().error") is None and page.evaluate("nerViz.matches()") == []
    page.fill("#q", "arla")  # typed in the box
    page.wait_for_function("nerViz.explore().query === 'arla' && nerViz.explore().listed.length > 0")
    assert set(page.evaluate("nerViz.explore().listed")) == either("arla")
    assert not page.evaluate("nerViz.explore().regex")
    page.locator("#matchtable tbody tr").nth(2).click()  # a row rings its token, as the errors table does
    page.wait_for_function("nerViz.highlighted('hidden') !== null")
    assert page.evaluate("nerViz.highlighted('hidden').text") == ["arla"]

    open_report(page, path, errors, "#q=VALIO&in=word")  # the link holds the search
    assert set(page.evaluate("nerViz.matches()")) == rows_where(data, last, word_has("valio"))
    assert page.input_value("#q") == "VALIO" and page.input_value("#qin") == "word"
    assert not errors, errors


def test_a_filter_keeps_exactly_the_rows_that_pass_it_at_each_snapshot(planted, browser):
    path, data = planted
    page, errors = browser
    gold = data["tokens"]["gold"]
    open_report(page, path, errors)
    n = len(data["epochs"])
    brand_wrong = lambda t, j, e: gold[t] in (1, 2) and e["pred"][j] != gold[t]  # noqa: E731
    page.evaluate("nerViz.filter({gold: ['B-BRAND', 'I-BRAND'], correct: false})")
    for k in range(n - 1, -1, -1):  # the filter holds as the slider moves; each snapshot's own predictions
        go_to(page, k)
        expected = rows_where(data, k, brand_wrong)
        assert set(page.evaluate("nerViz.explore().kept")) == expected and drawn_ids(page, "hidden") == expected
        rest = set(page.evaluate("nerViz.overlays('hidden').filtered.ids"))
        assert rest == {data["tokens"]["id"][t] for t in data["epochs"][k]["idx"]} - expected  # the rest: grey dots
    assert len({frozenset(rows_where(data, k, brand_wrong)) for k in range(n)}) == n  # they do change by snapshot

    conf = lambda t, j, e: e["pred"][j] == 0 and 0.4 <= e["conf"][j] <= 0.8  # noqa: E731
    kept = page.evaluate("nerViz.filter({pred: ['O'], conf: [0.4, 0.8]})")
    assert set(kept) == rows_where(data, 0, conf) and kept
    go_to(page, 2)
    assert drawn_ids(page, "emissions") == rows_where(data, 2, conf)

    cid = data["epochs"][-1]["analysis"]["clusters"]["cid"]
    some = max(set(cid) - {-1}, key=cid.count)
    in_cluster = lambda t, j, e: e["analysis"]["clusters"]["cid"][j] == some  # noqa: E731
    page.evaluate("c => nerViz.filter({cluster: [c]})", some)
    for k in range(n):
        go_to(page, k)
        assert set(page.evaluate("nerViz.explore().kept")) == rows_where(data, k, in_cluster)

    page.evaluate("nerViz.filter(null)")  # and with the controls
    page.click("#fbtn")
    page.click("#fpanel .fchip[data-k=gold][data-v='1']")
    page.click("#fok button[data-ok='1']")
    page.wait_for_function("nerViz.explore().filter.correct === true")
    go_to(page, n - 1)
    right_brand = lambda t, j, e: gold[t] == 1 and e["pred"][j] == gold[t]  # noqa: E731
    assert set(page.evaluate("nerViz.explore().kept")) == rows_where(data, n - 1, right_brand)
    assert page.evaluate("nerViz.explore().filter") == {
        "gold": ["B-BRAND"], "pred": [], "correct": True, "conf": None, "cluster": []}
    assert "Filter (2)" in page.inner_text("#fbtn") and "&gold=B-BRAND&ok=1" in page.evaluate("location.hash")
    page.fill("#q", "valio")  # search and filter together: the list holds both
    page.keyboard.press("Enter")
    page.wait_for_function("nerViz.explore().query === 'valio'")
    raw = raw_rows(data)
    both = rows_where(data, n - 1, lambda t, j, e: right_brand(t, j, e) and (
        "valio" in raw["word"][t].lower() or "valio" in raw["text"][t].lower()))
    assert set(page.evaluate("nerViz.matches()")) == both == set(page.evaluate("nerViz.overlays('hidden').matches.ids"))
    assert both and both < rows_where(data, n - 1, right_brand)
    page.click("#fclear")
    page.wait_for_function("nerViz.explore().filter.gold.length === 0")
    assert set(page.evaluate("nerViz.explore().kept")) == {data["tokens"]["id"][t] for t in data["epochs"][-1]["idx"]}
    assert not errors, errors


def parse_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEAD
    return [dict(zip(CSV_HEAD, r)) for r in rows[1:]]


def inside(page, view: str, box: tuple[float, float, float, float]) -> set[int]:
    x0, x1, y0, y1 = box
    return {i for t in page.evaluate("v => nerViz.plotted(v)", view)
            for x, y, i in zip(t["x"], t["y"], t["ids"]) if x0 <= x <= x1 and y0 <= y <= y1}


def test_a_box_selection_picks_the_points_inside_follows_them_and_exports_them(planted, browser, tmp_path):
    path, data = planted
    page, errors = browser
    raw, ids, n = raw_rows(data), data["tokens"]["id"], len(data["epochs"])
    open_report(page, path, errors)
    xs = np.concatenate([t["x"] for t in page.evaluate("nerViz.plotted('hidden')")])
    ys = np.concatenate([t["y"] for t in page.evaluate("nerViz.plotted('hidden')")])
    box = (*np.percentile(xs, [20, 60]), *np.percentile(ys, [30, 75]))
    expected = inside(page, "hidden", box)
    assert 15 < len(expected) < len(xs) / 2
    assert set(page.evaluate("b => nerViz.selectBox('hidden', ...b)", list(box))) == expected
    e = data["epochs"][-1]
    at = {ids[t]: (t, j) for j, t in enumerate(e["idx"])}
    rows = parse_csv(page.evaluate("nerViz.csv()"))
    assert {int(r["token_id"]) for r in rows} == expected == set(page.evaluate("nerViz.explore().table"))
    for r in rows:  # exactly those rows, at the snapshot shown
        t, j = at[int(r["token_id"])]
        assert (r["token"], r["word"], r["sentence"]) == (raw["text"][t], raw["word"][t], raw["sent"][t])
        assert (r["gold"], r["predicted"]) == (LABELS[data["tokens"]["gold"][t]], LABELS[e["pred"][j]])
        assert r["correct"] == ("yes" if e["pred"][j] == data["tokens"]["gold"][t] else "no")
        assert float(r["confidence"]) == e["conf"][j] and r["snapshot"] == e["name"]
    with page.expect_download() as download:  # the button downloads the same text
        page.click("#pickcsv")
    saved = tmp_path / "selection.csv"
    download.value.save_as(saved)
    assert saved.read_bytes().decode("utf-8-sig") == page.evaluate("nerViz.csv()")
    assert download.value.suggested_filename.endswith(".csv")

    picked = page.evaluate("nerViz.selected()")
    for k in range(n):  # the same tokens stay selected, drawn in every panel, each with its path over the snapshots
        go_to(page, k)
        assert page.evaluate("nerViz.selected()") == picked
        here = {ids[t] for t in data["epochs"][k]["idx"]}
        for view in ("hidden", "emissions"):
            over = page.evaluate("v => nerViz.overlays(v)", view)
            assert set(over["picked"]["ids"]) == expected & here
        drawn = {i: (x, y) for t in page.evaluate("nerViz.plotted('emissions')")
                 for x, y, i in zip(t["x"], t["y"], t["ids"])}
        paths = page.evaluate("nerViz.overlays('emissions').paths")
        starts = [0] + [m + 1 for m, x in enumerate(paths["x"]) if x is None][:-1]
        for token, s0 in zip(picked, starts):  # the path of each token passes through where it is drawn now
            if token in drawn:
                before = sum(1 for q in range(k) if token in {ids[t] for t in data["epochs"][q]["idx"]})
                assert (paths["x"][s0 + before], paths["y"][s0 + before]) == pytest.approx(drawn[token])
    assert paths["x"].count(None) == len(picked)

    page.evaluate("nerViz.select([])")
    go_to(page, n - 1)
    div = page.locator("#view-hidden .nsewdrag").first.bounding_box()  # plotly's own box select, with the mouse
    a = (div["x"] + div["width"] * 0.3, div["y"] + div["height"] * 0.3)
    b = (div["x"] + div["width"] * 0.65, div["y"] + div["height"] * 0.7)
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
    page.mouse.move(*b, steps=4)
    page.mouse.up()
    page.wait_for_function("nerViz.selected().length > 0")
    got = set(page.evaluate("nerViz.selected()"))
    to_data = """([ax, ay, bx, by]) => {
      const d = document.getElementById('view-hidden'), r = d.querySelector('.nsewdrag').getBoundingClientRect();
      const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
      return [xa.p2l(ax - r.left), xa.p2l(bx - r.left), ya.p2l(by - r.top), ya.p2l(ay - r.top),
              xa.p2l(1) - xa.p2l(0), ya.p2l(0) - ya.p2l(1)];
    }"""
    x0, x1, y0, y1, px, py = page.evaluate(to_data, [*a, *b])
    surely_in = inside(page, "hidden", (x0 + 2 * px, x1 - 2 * px, y0 + 2 * py, y1 - 2 * py))
    maybe_in = inside(page, "hidden", (x0 - 2 * px, x1 + 2 * px, y0 - 2 * py, y1 + 2 * py))
    assert surely_in <= got <= maybe_in and got
    page.wait_for_function("!(document.getElementById('view-hidden').layout.selections || []).length")  # box gone

    one = next(iter(sorted(set(drawn_ids(page, "hidden")) - got)))  # shift-click adds a point, and again takes it out
    pos = page.evaluate("""id => {
      const d = document.getElementById('view-hidden'), r = d.querySelector('.nsewdrag').getBoundingClientRect();
      const t = nerViz.plotted('hidden').find(t => t.ids.includes(id)), i = t.ids.indexOf(id);
      return [r.left + d._fullLayout.xaxis.l2p(t.x[i]), r.top + d._fullLayout.yaxis.l2p(t.y[i])];
    }""", one)
    page.keyboard.down("Shift")
    page.mouse.click(*pos)
    page.keyboard.up("Shift")
    page.wait_for_function("id => nerViz.selected().includes(id)", arg=one)
    assert set(page.evaluate("nerViz.selected()")) == got | {one}
    page.click("#picknote button:has-text('×')")
    page.wait_for_function("nerViz.selected().length === 0")
    assert page.evaluate("nerViz.overlays('hidden')") == {} and not page.locator("#picktable").count()
    assert not errors, errors


def test_a_report_of_2000_tokens_by_20_snapshots_opens_cleanly(browser, tmp_path_factory):
    page, errors = browser
    snaps = [explore_snapshot(e, n_sentences=334, seed=e % 4) for e in range(20)]
    assert len(snaps[0]) >= 1900
    path = write(tmp_path_factory.mktemp("big") / "big.html", snaps, False)
    errors.clear()
    page.goto("about:blank")
    start = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_function("window.nerViz !== undefined", timeout=60_000)
    page.evaluate("nerViz.ready")
    ready = time.perf_counter() - start
    print(f"\n2,000 tokens x 20 snapshots ({path.stat().st_size / 2**20:.1f} MiB): ready in {ready:.1f} s")
    start = time.perf_counter()
    found = page.evaluate("nerViz.search('valio', {in: 'word'})")
    kept = page.evaluate("nerViz.filter({correct: false})")
    page.evaluate("nerViz.selectBox('hidden', -100, 100, -100, 100)")
    print(f"search + filter + selection of everything, redrawn: {time.perf_counter() - start:.1f} s")
    assert found and kept and len(page.evaluate("nerViz.selected()")) == len(kept)
    page.focus("#slider")
    page.keyboard.press("Home")
    page.wait_for_function("nerViz.state().index === 0")
    assert ready < 45
    assert not errors, errors


HOSTILE = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "</script><script>window.__pwned=1</script>"
FORMULAS = ["=1+2", "+SUM(A1)", "-3", "@cmd", 'say "hi", then']
HOSTILE_LABELS = ["O", f"B-{HOSTILE}", f"I-{SCRIPT}", 'B-x" onmouseover="window.__pwned=3', "=HYPERLINK(1)"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    words = [HOSTILE, SCRIPT, *FORMULAS, "plain"] * 6
    n = len(words)
    sentence_id, position = np.arange(n) // 8, np.arange(n) % 8
    gold = np.arange(n) % len(HOSTILE_LABELS)
    snaps = [explore_snapshot(
        e, n_sentences=n // WIDTH, token=[w[:12] for w in words], word=words, sentence_id=sentence_id,
        position=position, token_id=make_token_id(sentence_id, position), gold=gold, label_names=HOSTILE_LABELS,
        sentences={s: " ".join(words[s * 8:(s + 1) * 8]) for s in range(n // 8)}) for e in range(2)]
    path = write(tmp_path_factory.mktemp("hostile") / "hostile.html", snaps, True)
    return path, read_payload(path)


def test_hostile_text_stays_text_through_search_filter_hover_selection_export_and_link(hostile, browser, tmp_path):
    path, data = hostile
    page, errors = browser
    raw = raw_rows(data)
    clean = """() => ({pwned: window.__pwned, imgs: document.querySelectorAll('img').length,
      scripts: document.scripts.length, onattrs: document.querySelectorAll('[onerror],[onmouseover]').length})"""
    safe = {"pwned": None, "imgs": 0, "scripts": 3, "onattrs": 0}
    link = "#q=" + quote(HOSTILE, safe="") + "&gold=" + quote(HOSTILE_LABELS[1], safe="")
    open_report(page, path, errors, link)  # the link's search and label: text too
    assert page.input_value("#q") == HOSTILE and page.evaluate("nerViz.explore().filter.gold") == [HOSTILE_LABELS[1]]
    assert page.evaluate(clean) == safe

    for query, opts in ((HOSTILE, {}), ("</script>", {"regex": True}), ("onerror", {"in": "any"})):
        found = page.evaluate("([q, o]) => nerViz.search(q, o)", [query, opts])
        assert found and page.evaluate(clean) == safe
    page.evaluate("nerViz.filter(null)")
    found = page.evaluate("q => nerViz.search(q)", HOSTILE)
    hostile_ids = {i for i, w in zip(data["tokens"]["id"], raw["word"]) if w == HOSTILE}
    assert set(found) == hostile_ids & set(page.evaluate("nerViz.explore().kept"))
    assert HOSTILE in page.inner_text("#matchtable") and page.evaluate(clean) == safe

    page.click("#fbtn")  # the hostile labels as filter chips, clicked
    for q in range(1, len(HOSTILE_LABELS)):
        page.click(f"#fpanel .fchip[data-k=pred][data-v='{q}']")
    page.wait_for_function("nerViz.explore().filter.pred.length === 4")
    assert HOSTILE_LABELS[3] in page.inner_text("#fpanel") and page.evaluate(clean) == safe
    page.evaluate("nerViz.setColor('pred')")
    assert HOSTILE_LABELS[2] in page.inner_text("#legend")

    hovered = page.evaluate("""() => {  // hover each highlighted point: plotly's label shows the text
      const d = document.getElementById('view-hidden'), out = [];
      const n = d.data.findIndex(t => t.name === 'search matches');
      for (let i = 0; i < d.data[n].x.length; i++) {
        Plotly.Fx.hover(d, [{curveNumber: n, pointNumber: i}]);
        out.push(d.querySelector('.hoverlayer').textContent);
      }
      return out;
    }""")
    assert hovered and all(HOSTILE in h for h in hovered) and page.evaluate(clean) == safe

    ids = page.evaluate("nerViz.select(nerViz.data.tokens.id)")
    assert len(ids) == len(data["tokens"]["id"])
    table = page.inner_text("#picktable")
    assert HOSTILE in table and SCRIPT in table and page.evaluate(clean) == safe
    rows = parse_csv(page.evaluate("nerViz.csv()"))
    at = {i: t for t, i in enumerate(data["tokens"]["id"])}
    prefixed = lambda x: "'" + x if x[:1] in ("=", "+", "-", "@") else x  # noqa: E731
    for r in rows:  # the text verbatim; a ' before a cell only where it starts with = + - @
        t = at[int(r["token_id"])]
        assert r["token"] == prefixed(raw["text"][t]) and r["word"] == prefixed(raw["word"][t])
        assert r["sentence"] == prefixed(raw["sent"][t])
        assert r["gold"] == prefixed(HOSTILE_LABELS[data["tokens"]["gold"][t]])
    words = {r["word"] for r in rows}
    assert {HOSTILE, SCRIPT, "'=1+2", "'+SUM(A1)", "'-3", "'@cmd", 'say "hi", then', "plain"} == words
    assert {r["gold"] for r in rows} == {"O", HOSTILE_LABELS[1], HOSTILE_LABELS[2], HOSTILE_LABELS[3], "'=HYPERLINK(1)"}
    with page.expect_download() as download:
        page.click("#pickcsv")
    saved = tmp_path / "hostile.csv"
    download.value.save_as(saved)
    assert saved.read_bytes().decode("utf-8-sig") == page.evaluate("nerViz.csv()")
    page.locator("#picktable tbody tr").first.click()  # ring one: its word as plotly text
    page.wait_for_function("nerViz.highlighted('hidden') !== null")
    page.focus("#slider")
    page.keyboard.press("Home")
    page.wait_for_function("nerViz.state().index === 0")
    assert page.evaluate(clean) == safe
    assert not errors, errors

"""HtmlSink layout: axes that fit every epoch, quiet but visible ``O`` points, and the group clouds
(``entities``, ``cls``) as panels of their own, read back from the written file and checked in Chromium."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium

from lightning_ner_viz import Snapshot
from lightning_ner_viz.sinks.html import HtmlSink, read_payload
from lightning_ner_viz.sinks.html_payload import MARGIN
from lightning_ner_viz.snapshot import make_token_id

LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y", "B-Z", "I-Z"]
TYPES = ["O", "X", "Y", "Z"]
CENTRES = np.array([[0, 0, 0], [3, 0, 0], [-3, 0, 0], [0, 3, 0], [0, -3, 0], [0, 0, 3], [0, 0, -3]], dtype=float)
SCALES = [4.0, 1.5, 1.0]  # the cloud shrinks and moves between epochs, as a Procrustes frame can make it
N_TOKENS, N_ENTITIES, N_CLS = 350, [30, 34, 37], 20


def cloud(gold: np.ndarray, epoch: int, scale: float, centres: np.ndarray = CENTRES) -> np.ndarray:
    """Label clusters around ``centres``, shrunk by ``scale`` and shifted with the epoch."""
    rng = np.random.default_rng(epoch)
    points = centres[gold] + rng.normal(0, 0.4, (len(gold), 3))
    return (scale * points + np.array([2.0 * epoch, 0.0, -epoch])).astype(np.float32)


def group(name: str, epoch: int, n: int, words: list[str]) -> Snapshot:
    """A group snapshot (one row per entity span or sentence) with entity types as classes."""
    gold = np.arange(n) % (len(TYPES) - 1) + 1
    sentence_id = np.arange(n) % 10
    return Snapshot(epoch=epoch, step=10 * epoch, token_id=np.arange(n), sentence_id=sentence_id,
                    position=np.zeros(n, dtype=int), token=[words[i % len(words)] for i in range(n)],
                    word=[words[i % len(words)] for i in range(n)], gold=gold, pred=gold,
                    views={name: np.zeros((n, 8), np.float32)}, label_names=TYPES, sentences={s: "low fat free milk" for s in range(10)})


def token_snapshot(epoch: int, with_groups: bool = True) -> Snapshot:
    base = np.random.default_rng(7)
    gold = base.integers(0, len(LABELS), N_TOKENS)
    sentence_id, position = np.arange(N_TOKENS) // 5, np.arange(N_TOKENS) % 5
    words = [f"w{i}" for i in range(N_TOKENS)]
    groups = {"entities": group("entities", epoch, N_ENTITIES[epoch], ["fat free", "milk"]),
              "cls": group("cls", epoch, N_CLS, ["[CLS]"])} if with_groups else {}
    return Snapshot(epoch=epoch, step=10 * epoch, token_id=make_token_id(sentence_id, position),
                    sentence_id=sentence_id, position=position, token=words, word=words, gold=gold, pred=gold,
                    views={"hidden": np.zeros((N_TOKENS, 8), np.float32)}, label_names=LABELS,
                    sentences={s: " ".join(words[5 * s:5 * s + 5]) for s in range(N_TOKENS // 5)}, groups=groups)


def log_epochs(sink: HtmlSink, scales: list[float] = SCALES, with_groups: bool = True) -> None:
    for epoch, scale in enumerate(scales):
        snapshot = token_snapshot(epoch, with_groups)
        sink.log_epoch(snapshot, {"hidden": cloud(snapshot.gold, epoch, scale)}, {"entities/knn_purity": 0.9})
        for name, rows in snapshot.groups.items():
            sink.log_group(name, rows, cloud(rows.gold, epoch, scale, CENTRES[[0, 1, 3, 5]]))


def shown(part: dict[str, Any], view: str) -> list[np.ndarray]:
    """Each epoch's points as the page draws them: ``factor * x + shift`` when the view is rescaled."""
    k = len(part["ranges"][view])
    fits = part["rescale"].get(view)
    out = []
    for i, e in enumerate(part["epochs"]):
        x = np.asarray(e["coords"][view], dtype=float).reshape(-1, k)
        out.append(x if fits is None else fits[i][0] * x + np.asarray(fits[i][1:]))
    return out


def assert_fits(part: dict[str, Any], view: str) -> None:
    """The ranges hold every epoch's points with a small margin, and every epoch spans half of each range."""
    ranges = np.asarray(part["ranges"][view])
    points = shown(part, view)
    stack = np.concatenate(points)
    lo, hi, width = stack.min(0), stack.max(0), ranges[:, 1] - ranges[:, 0]
    assert (ranges[:, 0] < lo).all() and (hi < ranges[:, 1]).all(), (view, ranges, lo, hi)
    assert ((lo - ranges[:, 0]) <= 1.5 * MARGIN * width).all() and ((ranges[:, 1] - hi) <= 1.5 * MARGIN * width).all()
    for epoch, p in zip(part["epochs"], points):
        span = (p.max(0) - p.min(0)) / width
        assert (span >= 0.5).all(), (view, epoch["epoch"], span)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sink = HtmlSink(tmp_path_factory.mktemp("layout") / "report.html")
    log_epochs(sink)
    sink.close()
    return sink.path


def test_axes_fit_every_epoch_of_a_shrinking_cloud(report):
    data = read_payload(report)
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    assert len(data["rescale"]["hidden"]) == 3 and data["rescale"]["hidden"][-1][0] == pytest.approx(1, abs=1e-6)
    assert_fits(data, "hidden")
    for name in ("entities", "cls"):
        assert_fits(data["groups"][name], name)


def test_a_steady_cloud_is_drawn_as_given(tmp_path):
    sink = HtmlSink(tmp_path / "steady.html")
    log_epochs(sink, scales=[1.0, 1.0, 1.0], with_groups=False)
    data = read_payload(sink.path)
    assert data["rescale"] == {} and data["groups"] == {}
    assert_fits(data, "hidden")
    given = cloud(token_snapshot(2).gold, 2, 1.0)
    assert np.allclose(shown(data, "hidden")[2], given, atol=1e-3)


def test_group_panels_hold_every_row_of_each_epoch_coloured_by_type(report):
    data = read_payload(report)
    assert list(data["groups"]) == ["entities", "cls"]
    for name, counts in (("entities", N_ENTITIES), ("cls", [N_CLS] * 3)):
        part = data["groups"][name]
        assert part["labels"] == TYPES and part["views"] == [name]
        assert [e["epoch"] for e in part["epochs"]] == [0, 1, 2]
        assert [len(e["idx"]) for e in part["epochs"]] == counts
        assert [len(e["coords"][name]) for e in part["epochs"]] == [3 * n for n in counts]
    colors = dict(zip(data["labels"], data["colors"]))
    part = data["groups"]["entities"]
    assert dict(zip(part["labels"], part["colors"])) == {"O": colors["O"], "X": colors["B-X"], "Y": colors["B-Y"],
                                                         "Z": colors["B-Z"]}
    assert "<b>«fat free»</b> milk" in part["tokens"]["sent"][0]  # hover marks a several-word entity
    assert any(line["key"] == "entities/knn_purity" for chart in data["charts"] for line in chart["lines"])


def test_outside_points_are_quiet_but_visible(report):
    data = read_payload(report)
    o, label, background = data["markers"]["O"], data["markers"]["label"], _rgb(data["background"])
    seen = o["opacity"] * _rgb(data["colors"][0]) + (1 - o["opacity"]) * background  # one O point on the scene
    assert np.abs(seen - background).max() >= 60
    assert 0.3 <= o["opacity"] < label["opacity"] and o["size3"] < label["size3"] and o["size2"] < label["size2"]


def test_groups_follow_thinning_and_resume(tmp_path):
    path = tmp_path / "thin.html"
    first = HtmlSink(path, max_epochs_inline=2)
    log_epochs(first, scales=SCALES[:2])
    second = HtmlSink(path, max_epochs_inline=2)
    second.load_state_dict(first.state_dict())
    snapshot = token_snapshot(2)
    second.log_epoch(snapshot, {"hidden": cloud(snapshot.gold, 2, 1.0)}, {})
    assert [e["epoch"] for e in read_payload(path)["groups"]["entities"]["epochs"]] == [0, 1]  # waits for groups
    for name, rows in snapshot.groups.items():
        second.log_group(name, rows, cloud(rows.gold, 2, 1.0, CENTRES[[0, 1, 3, 5]]))
    data = read_payload(path)
    assert [e["epoch"] for e in data["epochs"]] == [0, 2]
    assert [[e["epoch"] for e in g["epochs"]] for g in data["groups"].values()] == [[0, 2], [0, 2]]
    assert [len(e["idx"]) for e in data["groups"]["entities"]["epochs"]] == [N_ENTITIES[0], N_ENTITIES[2]]


def test_with_the_callback_entities_and_cls_get_panels(tmp_path, fit_with_callback, datamodule):
    from lightning_ner_viz import load_snapshots

    fit_with_callback(sinks=[HtmlSink("report.html")], max_tokens=300, tokenizer=datamodule.tokenizer,
                      background=False, cls_view=True)
    data = read_payload(tmp_path / "ner_viz" / "report.html")
    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert set(data["groups"]) == {"entities", "cls"}
    for name, part in data["groups"].items():
        assert [len(e["idx"]) for e in part["epochs"]] == [len(s.groups[name]) for s in snapshots]
        assert part["labels"][0] == "O" and len(part["labels"]) > 1
    for view in data["views"]:
        assert_fits(data, view)


def _rgb(color: str) -> np.ndarray:
    """``#rrggbb`` as three floats."""
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _cloud_extent(png: bytes) -> tuple[float, float]:
    """The share of the panel's width and height that its coloured points span (title and legend rows left out)."""
    image = pytest.importorskip("PIL.Image", reason="Pillow (installed with rerun-sdk) reads the screenshots")
    pixels = np.asarray(image.open(io.BytesIO(png)).convert("RGB")).astype(int)[40:-30]
    ys, xs = np.nonzero(pixels.max(2) - pixels.min(2) > 45)
    if len(xs) < 20:
        return 0.0, 0.0
    (x0, x1), (y0, y1) = np.percentile(xs, [0.5, 99.5]), np.percentile(ys, [0.5, 99.5])
    return (x1 - x0) / pixels.shape[1], (y1 - y0) / pixels.shape[0]


@needs_chromium
def test_in_chromium_the_cloud_fills_each_panel_at_every_epoch_and_the_axes_stay(report, tmp_path):
    data = read_payload(report)
    panels = {"view-hidden": "hidden", "group-entities": "entities", "group-cls": "cls"}
    with chromium_page(tmp_path / "profile", 1400, 1800) as (page, errors):
        page.goto(report.as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        assert page.evaluate("nerViz.state().webgl")
        for k, epoch in enumerate([0, 1, 2]):
            page.evaluate(f"nerViz.setEpoch({epoch})")
            page.wait_for_timeout(300)
            for panel, name in panels.items():
                part = data if name == "hidden" else data["groups"][name]
                axes = page.evaluate(f"['xaxis', 'yaxis', 'zaxis'].map(a => Array.from("
                                     f"document.getElementById('{panel}')._fullLayout.scene[a].range))")
                assert np.allclose(axes, part["ranges"][name], rtol=1e-9)  # fixed: the same at every epoch
                plotted = page.evaluate(f"nerViz.plotted('{name}')")
                assert sum(len(t["x"]) for t in plotted) == len(part["epochs"][k]["idx"])
                width, height = _cloud_extent(page.locator("#" + panel).screenshot())
                assert width >= 0.5 and height >= 0.5, (panel, epoch, width, height)
        assert not errors, errors

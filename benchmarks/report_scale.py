"""How large the HTML report grows and how long it takes to open (issue #18, part 4).

Synthetic snapshots (tokens in 6 labelled crowds, predictions and coordinates that move by epoch) are logged to a
real ``HtmlSink``; with ``neighbours`` each snapshot also carries its tokens' 10 nearest neighbours (the
projector's :class:`~lightning_ner_viz.analysis.neighbours.NeighbourFinder`), the largest per-token analysis. The
file is opened in headless Chromium (``/usr/bin/chromium``, software WebGL) and timed from navigation to
``nerViz.ready`` (every panel drawn at the last snapshot), the time to first paint a user waits for.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis  # noqa: E402
from lightning_ner_viz.analysis.neighbours import NeighbourFinder  # noqa: E402
from lightning_ner_viz.sinks import HtmlSink  # noqa: E402
from lightning_ner_viz.snapshot import Snapshot, make_token_id  # noqa: E402

LABELS = ["O", "B-BRAND", "I-BRAND", "B-TYPE", "I-TYPE", "B-VOLUME"]
WORDS = ["valio", "milk", "fresh", "1l", "pack", "kefir", "danone", "yogurt"]


def snapshot(n: int, epoch: int, dims: int) -> tuple[Snapshot, dict[str, np.ndarray]]:
    rng = np.random.default_rng(epoch)
    gold = np.arange(n) % len(LABELS)
    hidden = (6.0 * np.eye(32)[gold] + np.random.default_rng(1).normal(0, 1, (n, 32))
              + rng.normal(0, 0.3, (n, 32))).astype(np.float32)
    pred = np.where(rng.random(n) < 0.2, rng.integers(0, len(LABELS), n), gold)
    emissions = (np.eye(len(LABELS))[pred] * 3 + rng.normal(0, 0.3, (n, len(LABELS)))).astype(np.float32)
    sid, pos = np.arange(n) // 8, np.arange(n) % 8
    words = [WORDS[i % len(WORDS)] for i in range(n)]
    snap = Snapshot(epoch=epoch, step=10 * (epoch + 1), token_id=make_token_id(sid, pos), sentence_id=sid, position=pos,
                    token=words, word=words, gold=gold, pred=emissions.argmax(1),
                    views={"hidden": hidden, "emissions": emissions}, label_names=LABELS,
                    sentences={s: " ".join(words[s * 8:(s + 1) * 8]) for s in range(int(sid.max()) + 1)})
    coords = {v: (x[:, :dims] + 0.3 * epoch).astype(np.float32) for v, x in snap.views.items()}
    return snap, coords


def write(path: Path, n: int, epochs: int, dims: int, neighbours: bool) -> float:
    """Log ``epochs`` snapshots to an HtmlSink at ``path``; the seconds the sink took (the neighbours are found
    first, as the projector does, and not counted)."""
    sink, finder, took = HtmlSink(path), NeighbourFinder(), 0.0
    for e in range(epochs):
        snap, coords = snapshot(n, e, dims)
        analysis = EpochAnalysis(neighbours=finder.find(snap) if neighbours else None)
        start = time.perf_counter()
        sink.log_epoch(snap, coords, {"entity_f1": 0.5})
        sink.log_analysis(snap, analysis)
        took += time.perf_counter() - start
    start = time.perf_counter()
    sink.close()
    return took + time.perf_counter() - start


def open_time(page: object, path: Path) -> float:
    page.goto("about:blank")  # type: ignore[attr-defined]
    start = time.perf_counter()
    page.goto(path.as_uri())  # type: ignore[attr-defined]
    page.wait_for_function("window.nerViz !== undefined", timeout=180_000)  # type: ignore[attr-defined]
    page.evaluate("nerViz.ready")  # type: ignore[attr-defined]
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the 2,000 x 20 cases")
    parser.add_argument("--threads", type=int, default=None, help="ignored")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    cases = [(2000, 20, 2, False), (2000, 20, 2, True), (2000, 20, 3, True)]
    if not args.quick:
        cases += [(10000, 30, 2, False), (10000, 30, 3, True), (20000, 10, 3, True)]  # the last: issue #16's clouds
    rows, work = [], Path(tempfile.mkdtemp(prefix="ner-viz-report-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for n, epochs, dims, near in cases:
            path = work / f"r{n}-{epochs}-{dims}-{int(near)}.html"
            wrote = write(path, n, epochs, dims, near)
            opened = [open_time(page, path) for _ in range(2)]
            rows.append([f"{n:,} x {epochs}", f"{dims}-D", "yes" if near else "no",
                         f"{path.stat().st_size / 2**20:.1f} MiB", C.fmt_s(wrote), C.fmt_s(min(opened))])
            print(f"  report_scale: {rows[-1]}", file=sys.stderr)
        browser.close()
    command = "python benchmarks/report_scale.py" + (" --quick" if args.quick else "")
    return [C.emit("report-scale", C.table(
        ["tokens x snapshots", "clouds", "neighbours", "file", "written in (all snapshots)", "open to drawn (best of 2)"],
        rows), command, [f"Headless Chromium {C.machine_info()['cpu']}, software WebGL; two token views (hidden, "
                         "emissions); `written in` is every snapshot's rewrite of the file summed."])]


if __name__ == "__main__":
    main()

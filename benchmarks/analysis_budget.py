"""Budget of the per-epoch analyses of one snapshot view, on one core.

Times :func:`~lightning_ner_viz.analysis.errors.error_geometry`,
:func:`~lightning_ner_viz.analysis.class_similarity.class_similarity` and
:func:`~lightning_ner_viz.analysis.clusters.cluster_report` (HDBSCAN per class, then tracking
against the previous epoch and summaries) on synthetic 256-d tokens of 9 labels (1 to 3 modes
each, a shared offset as hidden states have, 10% misclassified tokens drawn toward their
predicted class). One thread everywhere: ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` before numpy is
imported, ``torch.set_num_threads(1)``. Reported: the median of ``--repeats`` runs, and for
the clusters the median of its stages. Budget: all three under 2 s for 2,000 tokens.

    python benchmarks/analysis_budget.py                # 2,000 and 20,000 tokens, 5 runs each
    python benchmarks/analysis_budget.py --sizes 2000 --repeats 3
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lightning_ner_viz.analysis import clusters  # noqa: E402
from lightning_ner_viz.analysis.class_similarity import class_similarity  # noqa: E402
from lightning_ner_viz.analysis.errors import error_geometry  # noqa: E402

LABELS = ["O", "B-BRAND", "I-BRAND", "B-PROD", "I-PROD", "B-SIZE", "I-SIZE", "B-COLOR", "I-COLOR"]
D = 256


def synthetic(n: int, epoch: int = 0) -> dict[str, np.ndarray | list[str]]:
    """``n`` tokens: O is 30% of them, the other 8 labels 8.75% each; vectors jittered per ``epoch``."""
    rng = np.random.default_rng(0)
    n_labels = len(LABELS)
    centers, modes = rng.normal(size=(n_labels, D)) * 1.5, rng.normal(size=(n_labels, 3, D))
    n_modes = rng.integers(1, 4, n_labels)
    gold = rng.choice(n_labels, size=n, p=[0.3] + [0.7 / 8] * 8)
    mode = rng.integers(0, 3, n) % n_modes[gold]
    X = 10.0 + centers[gold] + modes[gold, mode] + rng.normal(size=(n, D)) * 0.5
    wrong = rng.random(n) < 0.1
    pred = np.where(wrong, (gold + rng.integers(1, n_labels, n)) % n_labels, gold)
    X[wrong] = 0.5 * X[wrong] + 0.5 * (10.0 + centers[pred[wrong]])  # drawn toward the predicted class
    X += np.random.default_rng(1 + epoch).normal(size=X.shape) * 0.05
    words = [f"w{i % 97}" for i in range(n)]
    return {"X": X.astype(np.float32), "gold": gold, "pred": pred, "words": words,
            "token_id": np.arange(n, dtype=np.int64) * 3, "sentence_id": np.arange(n) // 12}


def cluster_stages(d: dict, tracker_state: dict) -> dict[str, float]:
    """Seconds of each stage of :func:`clusters.cluster_report`, timed by wrapping the module's helpers."""
    spent = dict.fromkeys(("PCA", "HDBSCAN", "nearest fitted row"), 0.0)

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[name] += time.perf_counter() - start
            return out
        return wrapper

    saved = clusters._pca, clusters._hdbscan, clusters._nearest
    hdbscan = clusters._hdbscan()

    def make(**kwargs):
        model = hdbscan(**kwargs)
        model.fit_predict = timed("HDBSCAN", model.fit_predict)
        return model

    clusters._pca, clusters._nearest = timed("PCA", saved[0]), timed("nearest fitted row", saved[2])
    clusters._hdbscan = lambda: make
    try:
        start = time.perf_counter()
        found = clusters.cluster_classes(d["X"], d["gold"], LABELS)
        spent["cluster_classes, total"] = time.perf_counter() - start
    finally:
        clusters._pca, clusters._hdbscan, clusters._nearest = saved
    tracker = clusters.ClusterTracker()
    tracker.load_state_dict(tracker_state)
    start = time.perf_counter()
    stable = tracker.update(d["token_id"], found.class_id, found.cluster)
    spent["ClusterTracker.update"] = time.perf_counter() - start
    start = time.perf_counter()
    clusters.summarize_clusters(d["X"], d["gold"], LABELS, stable, d["words"], d["gold"] == d["pred"], d["sentence_id"])
    spent["summarize_clusters"] = time.perf_counter() - start
    return spent


def bench(n: int, repeats: int) -> tuple[list[list[str]], dict[str, float], dict[str, float]]:
    d, previous = synthetic(n, epoch=1), synthetic(n, epoch=0)
    tracker = clusters.ClusterTracker()  # the previous epoch's clusters, as in training
    tracker.update(previous["token_id"], previous["gold"],
                   clusters.cluster_classes(previous["X"], previous["gold"], LABELS).cluster)
    state = tracker.state_dict()

    def report() -> None:
        t = clusters.ClusterTracker()
        t.load_state_dict(state)
        clusters.cluster_report(d["X"], d["gold"], LABELS, d["token_id"], d["words"], d["gold"] == d["pred"],
                                d["sentence_id"], tracker=t)

    runs = {
        "error geometry": lambda: error_geometry(d["X"], d["gold"], d["pred"], LABELS),
        "class similarity": lambda: class_similarity(d["X"], d["gold"], LABELS),
        "clusters (cluster_report)": report,
    }
    times = {name: C.median([C.timed(fn) for _ in range(repeats)]) for name, fn in runs.items()}
    stages_runs = [cluster_stages(d, state) for _ in range(repeats)]
    stages = {k: C.median([s[k] for s in stages_runs]) for k in stages_runs[0]}
    found = clusters.cluster_classes(d["X"], d["gold"], LABELS)
    info = {"clusters found": float(found.n_clusters.sum()), "errors": float((d["gold"] != d["pred"]).sum())}
    rows = [[name, f"{n:,}", f"{t:.3f}"] for name, t in times.items()]
    rows.append(["**all three**", f"{n:,}", f"**{sum(times.values()):.3f}**"])
    return rows, stages, info


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,20000", help="comma-separated token counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 tokens, 2 runs (run_all.py --quick)")
    parser.add_argument("--threads", type=int, default=None, help="ignored: the analyses run on one thread")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "2000", 2
    torch.set_num_threads(1)
    rows, stage_rows, notes = [], [], []
    for n in [int(s) for s in args.sizes.split(",")]:
        print(f"  analysis_budget: {n} tokens", file=sys.stderr, flush=True)
        found, stages, info = bench(n, args.repeats)
        rows += found
        stage_rows += [[stage, f"{n:,}", f"{t:.3f}"] for stage, t in stages.items()]
        notes.append(f"{n:,} tokens: {info['errors']:.0f} errors, {info['clusters found']:.0f} clusters found.")
        if n == 2000:
            total = sum(float(r[2].strip("*")) for r in found[:-1])
            notes.append(f"Budget at 2,000 tokens: all three <= 2 s: {total:.3f} s ({'met' if total <= 2 else 'MISSED'}).")
    cmd = f"python benchmarks/analysis_budget.py --sizes {args.sizes} --repeats {args.repeats}"
    notes.append(f"256-d float32 synthetic tokens, 9 labels, one thread, median of {args.repeats} runs; load {C.loadavg()}.")
    blocks = [C.emit("analysis-budget", C.table(["analysis", "tokens", "median s"], rows), cmd, notes)]
    blocks.append(C.emit("analysis-budget-clusters", C.table(["clusters stage", "tokens", "median s"], stage_rows), cmd,
                         ["PCA (exact, per class), HDBSCAN and the nearest-fitted-row assignment (classes above "
                          "`max_rows=2000` rows) summed over the 9 classes; tracking is one `ClusterTracker.update` "
                          "against the previous epoch."]))
    return blocks


if __name__ == "__main__":
    main()

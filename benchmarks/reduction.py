"""Q2: how long do the reducers take, cold and warm-started, with and without PCA-50 first?

Data: Gaussian blobs shaped like token hidden states: 11 balanced classes in 384
dimensions, each point = class centre + a 16-dimensional Gaussian latent mapped through one
random linear map + small isotropic noise (low intrinsic dimension, as real hidden states
have; 10-NN label purity about 0.9). "Epoch 2" is the same tokens slightly moved (centres
drift 5 %, every point gets noise of 5 % of the data's standard deviation).

Reducers are the package's own (``lightning_ner_viz.reducers``): ``PCAReducer`` (torch),
``UMAPReducer`` and ``TSNEReducer`` (openTSNE), 3 components (the callback's default),
``random_state=0``. ``pre``: ``PCA-50`` is the reducers' default ``pca_dims=50``; ``none``
is ``pca_dims=None`` (the neighbour search runs on all 384 dimensions).

  * cold: ``fit_transform`` of epoch 1 from the default start (spectral for UMAP, PCA for t-SNE);
  * cold refit: a cold ``fit_transform`` of epoch 2, Procrustes-aligned to epoch 1 for "moved"
    (what ``frame="procrustes"``, the default, does; same cost as cold, so shown up to 5,000 tokens
    for UMAP and 1,000 for t-SNE);
  * warm: ``fit_transform`` of epoch 2 with ``init=`` epoch 1's layout (what ``frame="warm"`` does),
    with the reducers' short warm-start optimisation (UMAP ``warm_n_epochs=50``, t-SNE ``warm_n_iter=100``);
  * warm, long: the same with the cold fit's optimisation length (umap-learn's default ``n_epochs``,
    t-SNE ``n_iter=500``). "moved" = mean displacement of a token between epoch 1
    and epoch 2 after Procrustes alignment, as a fraction of the cloud's extent (lower = more
    stable); "kNN purity" = share of each point's 10 nearest neighbours in the layout with
    its class (quality of the layout).

The first UMAP fit in a fresh process pays numba's JIT compilation: measured in a
subprocess, reported separately, and excluded from the table (the table's process warms
UMAP up first). A size is skipped ("> cap") when the previous size's time, scaled
linearly, would exceed ``--cap`` seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

DIM, CLASSES, LATENT = 384, 11, 16


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epoch-1 features, epoch-2 features, labels): shape (n, 384) float32 twice and (n,).

    Class centres are close enough that classes overlap a little (10-NN label purity about
    0.9 in the 384-D space), like a half-trained model's hidden states.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, DIM)) * 0.55
    mixing = rng.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)
    labels = np.arange(n) % CLASSES
    x0 = centres[labels] + rng.normal(size=(n, LATENT)) @ mixing + 0.1 * rng.normal(size=(n, DIM))
    drift = 0.05 * np.linalg.norm(centres, axis=1, keepdims=True) / np.sqrt(DIM) * rng.normal(size=centres.shape)
    x1 = x0 + drift[labels] + 0.05 * x0.std() * rng.normal(size=x0.shape)
    return x0.astype(np.float32), x1.astype(np.float32), labels


def knn_purity(coords: np.ndarray, labels: np.ndarray, k: int = 10, max_points: int = 5000) -> float:
    from sklearn.neighbors import NearestNeighbors

    idx = np.random.default_rng(0).choice(len(coords), size=min(max_points, len(coords)), replace=False)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(coords)
    _, neigh = nn.kneighbors(coords[idx])
    return float((labels[neigh[:, 1:]] == labels[idx, None]).mean())


def moved(before: np.ndarray, after: np.ndarray) -> float:
    """Mean displacement after Procrustes alignment, as a fraction of the cloud's extent."""
    from lightning_ner_viz.projection.frames import align_procrustes, extent

    aligned = align_procrustes(np.asarray(after, np.float64), np.asarray(before, np.float64))
    return float(np.linalg.norm(aligned - before, axis=1).mean() / (extent(before) or 1.0))


def make(method: str, pre: str, **kw: Any) -> Any:
    from lightning_ner_viz.reducers import PCAReducer, TSNEReducer, UMAPReducer

    pca_dims = 50 if pre == "PCA-50" else None
    if method == "pca":
        return PCAReducer(n_components=3)
    if method == "umap":
        return UMAPReducer(n_components=3, pca_dims=pca_dims, random_state=0, **kw)
    return TSNEReducer(n_components=3, pca_dims=pca_dims, random_state=0, **kw)


LONG = {"umap": {"warm_n_epochs": None}, "tsne": {"warm_n_iter": 500}}  # the cold fits' lengths
STABILITY_MAX = 5000
REPEAT_UNDER = 2.0  # seconds: cells faster than this are timed 3 times


# --------------------------------------------------------------------------- JIT probe (fresh process)

def jit_probe(sizes: list[int]) -> dict[str, float]:
    """Run in a fresh process: import, then first and second fits at each size."""
    out: dict[str, float] = {}
    t = time.perf_counter()
    import umap  # noqa: F401

    out["import umap"] = time.perf_counter() - t
    for n in sizes:
        x0, _, _ = blobs(n)
        for attempt in ("first", "second"):
            t = time.perf_counter()
            make("umap", "PCA-50").fit_transform(x0)
            out[f"UMAP {attempt} fit, {n:,} tokens"] = time.perf_counter() - t
    t = time.perf_counter()
    import openTSNE  # noqa: F401

    out["import openTSNE"] = time.perf_counter() - t
    x0, _, _ = blobs(sizes[0])
    for attempt in ("first", "second"):
        t = time.perf_counter()
        make("tsne", "PCA-50").fit_transform(x0)
        out[f"t-SNE {attempt} fit, {sizes[0]:,} tokens"] = time.perf_counter() - t
    return out


def run_jit_probe(sizes: list[int]) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--jit-probe", ",".join(map(str, sizes))]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["whole fresh process (python start to exit)"] = time.perf_counter() - t
    return data


# --------------------------------------------------------------------------- table

def bench(sizes: list[int], cap: float, methods: list[str], pres: list[str]) -> tuple[list[list[str]], dict[str, float]]:
    rows: list[list[str]] = []
    found: dict[str, float] = {}
    data = {n: blobs(n) for n in sizes}
    # warm up numba (both the exact and the NN-descent paths) and openTSNE outside the timed cells
    make("pca", "-").fit_transform(blobs(1000)[0])  # torch's first SVD call initialises LAPACK
    if "umap" in methods:
        for n in sorted({min(sizes), 5000 if max(sizes) >= 5000 else min(sizes)}):
            for pre in pres:
                make("umap", pre, n_epochs=10).fit_transform(blobs(n)[0])
    if "tsne" in methods:
        make("tsne", pres[0], n_iter=10).fit_transform(blobs(1000)[0])
    series: dict[tuple[str, str, str], tuple[int, float]] = {}  # last measured (tokens, seconds)
    skipped: set[tuple[str, str, str]] = set()
    for method in methods:
        for pre in (["-"] if method == "pca" else pres):
            for n in sizes:
                x0, x1, labels = data[n]
                modes = ["cold", "cold refit"] if method == "pca" else ["cold", "cold refit", "warm", "warm, long"]
                first_coords: np.ndarray | None = None
                for mode in modes:
                    if mode == "cold refit" and method != "pca" and n > (1000 if method == "tsne" else STABILITY_MAX):
                        continue  # the same cost as "cold"; the stability comparison is shown on smaller sizes
                    key = (method, pre, mode)
                    last = series.get(key)
                    if key in skipped or (last is not None and last[1] * n / last[0] > cap):
                        skipped.add(key)
                        rows.append([method, pre, f"{n:,}", mode, f"> {cap:.0f} s (skipped: {last[0]:,} tokens took "
                                     f"{C.fmt_s(last[1])})", "", ""])
                        continue
                    if mode != "cold" and first_coords is None:
                        rows.append([method, pre, f"{n:,}", mode, "skipped (cold fit skipped)", "", ""])
                        continue
                    kw: dict[str, Any] = {}
                    if mode.startswith("warm"):
                        kw["init"] = first_coords
                    if mode == "warm, long":
                        kw.update(LONG[method])
                    X = x0 if mode == "cold" else x1
                    times = []
                    for _ in range(3):  # short cells: median of 3 (the machine may be shared)
                        reducer = make(method, pre, **kw)
                        t = time.perf_counter()
                        coords = np.asarray(reducer.fit_transform(X))
                        times.append(time.perf_counter() - t)
                        if times[-1] > REPEAT_UNDER:
                            break
                    dt = C.median(times)
                    series[key] = (n, dt)
                    found[f"{method}|{pre}|{n}|{mode}"] = dt
                    if mode == "cold":
                        first_coords = coords
                    stab = "-" if mode == "cold" else f"{moved(first_coords, coords):.3f}"
                    rows.append([method, pre, f"{n:,}", mode, C.fmt_s(dt), stab, f"{knn_purity(coords, labels):.2f}"])
                    print(f"  {method} {pre} {n} {mode}: {dt:.2f}s  load {C.loadavg()}", file=sys.stderr, flush=True)
    return rows, found


def small_umap(n: int = 2000, repeats: int = 3) -> str:
    """Below 4,096 points umap-learn computes all pairwise distances through sklearn with a numba
    callable (a Python loop over pairs, holding the GIL); ``force_approximation_algorithm=True``
    uses NN-descent instead; the package's ``UMAPReducer`` hands umap-learn an exact kNN found by one
    matrix product in torch. 2,000 tokens is the callback's default ``max_tokens``."""
    import warnings

    import umap

    from lightning_ner_viz.reducers.base import PCAPrereduction
    from lightning_ner_viz.reducers.umap import exact_knn

    x0, _, labels = blobs(n)
    pre = PCAPrereduction()
    pre.pca_dims = 50
    X = pre._prereduce(x0, fit=True)
    rows = []
    searches = {"exact (umap-learn's default below 4,096)": "sklearn", "NN-descent (forced)": "nndescent",
                "exact kNN in torch (UMAPReducer's default)": "torch"}
    for search, how in searches.items():
        for n_epochs in (None, 50):
            times = []
            for _ in range(repeats):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    knn = exact_knn(X, 15) if how == "torch" else (None, None, None)
                    coords = umap.UMAP(n_components=3, random_state=0, n_epochs=n_epochs, precomputed_knn=knn,
                                       force_approximation_algorithm=how != "sklearn").fit_transform(X)
                    times.append(time.perf_counter() - t)
            rows.append([f"{n:,} x 50", search, "default (500)" if n_epochs is None else str(n_epochs),
                         C.fmt_s(C.median(times)), f"{knn_purity(coords, labels):.2f}"])
            print(f"  small umap {how} n_epochs={n_epochs}: {C.median(times):.2f}s", file=sys.stderr, flush=True)
    return C.table(["tokens x dims", "neighbour search", "n_epochs", f"time (median of {repeats})", "kNN purity"], rows)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 tokens, PCA-50 only, 10 s cap")
    parser.add_argument("--sizes", default=None, help="comma-separated token counts (default 1000,5000,20000,50000)")
    parser.add_argument("--cap", type=float, default=None, help="seconds per cell before larger sizes are skipped")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--jit-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jit_probe:
        C.set_threads(args.threads)
        print(json.dumps(jit_probe([int(s) for s in args.jit_probe.split(",")])))
        return []
    C.set_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([1000] if args.quick else [1000, 5000, 20000, 50000])
    cap = args.cap or (10.0 if args.quick else 60.0)
    cmd = "python benchmarks/reduction.py" + (" --quick" if args.quick else "") + (f" --threads {args.threads}" if args.threads else "")
    print(f"reduction: load {C.loadavg()}", file=sys.stderr, flush=True)
    jit = run_jit_probe([1000] if args.quick else [1000, 5000])
    blocks = [C.emit(
        "reduction-jit",
        C.table(["first call in a fresh process", "time"], [[k, C.fmt_s(v)] for k, v in jit.items()]),
        cmd,
        ["UMAP's numba code compiles on the first fit in each process, and again the first time there "
         "are 4,096 points or more (nearest-neighbour descent). Since the package caches umap-learn's code on "
         "disk (docs/performance.md, section 5), a new process loads it instead, except the two NN-descent "
         "functions numba cannot cache; the projector child loads it at setup, while the model trains."],
    )]
    pres = ["PCA-50"] if args.quick else ["PCA-50", "none"]
    rows, found = bench(sizes, cap, ["pca", "umap", "tsne"], pres)
    md = C.table(["method", "pre", "tokens", "fit", "time", "moved", "kNN purity"], rows)
    target = found.get("umap|PCA-50|5000|warm")
    long_ = found.get("umap|PCA-50|5000|warm, long")
    notes = [f"384-dim blobs, 11 classes, 3 components, torch threads {C.set_threads(args.threads)}."]
    if target is not None:
        notes.append(
            f"Target: warm-started UMAP refit of 5,000 tokens <= 1 s: {C.fmt_s(target)} "
            f"({'met' if target <= 1 else 'MISSED'}); with umap-learn's default n_epochs: "
            f"{C.fmt_s(long_) if long_ else 'n/a'}."
        )
    blocks.append(C.emit("reduction", md, cmd, notes))
    blocks.append(C.emit(
        "reduction-small-umap", small_umap(repeats=1 if args.quick else 3), cmd,
        ["`umap.UMAP(n_components=3, random_state=0, ...)` called directly on the PCA-50 features of 2,000 blob "
         "tokens; the time includes the neighbour search."],
    ))
    return blocks


if __name__ == "__main__":
    main()

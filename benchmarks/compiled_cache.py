"""The first UMAP layout in a new process, with and without numba's disk cache for umap-learn's code.

Each row is a fresh Python process (``--child``) with its own ``NUMBA_CACHE_DIR``, so "empty" is a machine's
first run and "filled" every later one. ``LIGHTNING_NER_VIZ_NUMBA_CACHE=0`` turns the package's caching off
(umap-learn as shipped: pynndescent caches its own code, umap-learn one function). Timed in the child:
``import umap``; the first ``UMAPReducer`` fit (2,000 tokens x 256 features, spectral start, 200 optimisation
epochs: the callback's first epoch); a warm refit from that layout (50 epochs: every later epoch); and
:func:`~lightning_ner_viz.projection.warm_up.warm_up` of a UMAP projector, which the projector child runs at
``setup`` (measured in another fresh process after the fits, so its own cost shows).

    python benchmarks/compiled_cache.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

HERE = Path(__file__).resolve()


def child(what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    import numpy as np
    import umap  # noqa: F401

    out["import umap"] = time.perf_counter() - t
    if what == "warm_up":
        from lightning_ner_viz.projection.projector import Projector
        from lightning_ner_viz.projection.warm_up import warm_up

        out["warm_up"] = warm_up(Projector("umap", 3, 0, "warm"), set())
        return out
    from lightning_ner_viz.reducers.umap import UMAPReducer

    X = np.random.default_rng(0).normal(size=(2000, 256)).astype(np.float32)
    t = time.perf_counter()
    first = UMAPReducer(n_components=3).fit(X)
    out["first fit"] = time.perf_counter() - t
    t = time.perf_counter()
    UMAPReducer(n_components=3, init=first.embedding_).fit(X + np.float32(0.01))
    out["warm refit"] = time.perf_counter() - t
    return out


def run(cache_dir: str, enabled: bool, what: str) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "LIGHTNING_NER_VIZ_NUMBA_CACHE": "1" if enabled else "0"}
    t = time.perf_counter()
    res = subprocess.run([sys.executable, str(HERE), "--child", what], capture_output=True, text=True, env=env,
                         cwd=C.REPO, check=True)
    found = json.loads(res.stdout.strip().splitlines()[-1])
    found["process"] = time.perf_counter() - t
    return found


def main() -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the same four runs (they take about a minute)")
    parser.add_argument("--threads", type=int, default=None, help="ignored: each run is one thread, as the child")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return []
    rows = []
    for enabled in (False, True):
        with tempfile.TemporaryDirectory(prefix="ner-viz-numba-") as cache_dir:
            for state in ("empty", "filled"):
                got = run(cache_dir, enabled, "fits")
                warm = run(cache_dir, enabled, "warm_up")
                size = sum(f.stat().st_size for f in Path(cache_dir).rglob("*") if f.is_file())
                rows.append(["on (this package)" if enabled else "off (umap-learn as shipped)", state,
                             C.fmt_s(got["import umap"]), C.fmt_s(got["first fit"]), C.fmt_s(got["warm refit"]),
                             C.fmt_s(warm["warm_up"]), C.fmt_s(got["process"]), f"{size / 2**20:.1f} MiB"])
                print(f"  compiled_cache: {rows[-1]}", file=sys.stderr, flush=True)
    header = ["disk cache of umap's code", "cache before the run", "import umap", "first fit (2,000 tokens)",
              "warm refit", "projector warm-up (next process)", "whole process", "cache size after"]
    notes = ["Fresh processes, one thread each as the projector child uses; 2,000 random 256-wide vectors, "
             "3 components. The first fit is 200 optimisation epochs from the spectral start (about 0.7 s of real work "
             "here) plus what numba compiles or loads; the warm refit is 50 epochs. \"empty\" is a machine's first "
             "run, \"filled\" every later one. The warm-up column is a second fresh process started after the fits' "
             f"process, so it finds the cache that process left (filled, with the package's cache on); load "
             f"{C.loadavg()}."]
    return [C.emit("compiled-cache", C.table(header, rows), "python benchmarks/compiled_cache.py", notes)]


if __name__ == "__main__":
    main()

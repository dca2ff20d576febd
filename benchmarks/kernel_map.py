"""The ``fixed`` frame's kernel map (``KernelExtension``) at 2,000 and 20,000 tokens: time and peak memory.

UMAP and t-SNE draw every snapshot after the first through this map by default. Each size and
implementation runs in a fresh process with one torch thread, as the projector child does, on
clustered 256-d features (PCA to 50 first, as the map does) and a random 3-D layout: ``fit`` on the
reference snapshot, then ``transform`` of a perturbed copy (a later snapshot). Implementations:

* **float32, by blocks**: the package's (squared distances by one matrix product per block of rows);
* **float64 cdist (before 2026-12-01)**: the previous code, kept here to compare: one n x n
  ``torch.cdist`` in ``fit`` and float64 ``cdist`` blocks in ``transform``.

    python benchmarks/kernel_map.py            # 2,000 and 20,000 tokens
    python benchmarks/kernel_map.py --quick    # 2,000 and 5,000
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

HERE = Path(__file__).resolve()
IMPLEMENTATIONS = ("float32, by blocks", "float64 cdist (before 2026-12-01)")


def _before() -> Any:
    """The previous KernelExtension, as it was: float64, one n x n ``cdist`` for the bandwidth."""
    import numpy as np
    import torch

    from lightning_ner_viz.reducers._linalg import pca_basis

    class Float64Cdist:
        def __init__(self, n_neighbors: int = 15, pca_dims: int | None = 50) -> None:
            self.n_neighbors, self.pca_dims = n_neighbors, pca_dims

        def _reduce(self, X: Any) -> Any:
            data = torch.as_tensor(np.asarray(X, dtype=np.float32), dtype=torch.float64)
            if self.mean_ is not None:
                data = (data - torch.as_tensor(self.mean_, dtype=torch.float64)) @ torch.as_tensor(
                    self.components_, dtype=torch.float64).T
            return data

        def fit(self, X: Any, layout: Any) -> Any:
            X = np.asarray(X, dtype=np.float32)
            self.mean_ = self.components_ = None
            if self.pca_dims is not None and X.shape[1] > self.pca_dims:
                self.mean_, self.components_, _ = pca_basis(X, self.pca_dims)
            reference = self._reduce(X)
            k = min(self.n_neighbors, len(reference) - 1)
            self.bandwidth_ = float(torch.cdist(reference, reference).topk(k + 1, largest=False).values[:, -1].median())
            self.reference_, self.layout_ = reference, torch.as_tensor(np.asarray(layout), dtype=torch.float64)
            return self

        def transform(self, X: Any, chunk: int = 1024) -> Any:
            data, out = self._reduce(X), []
            for start in range(0, len(data), chunk):
                d2 = torch.cdist(data[start : start + chunk], self.reference_).square()
                out.append(torch.softmax(-(d2 - d2.min(1, keepdim=True).values) / (2 * self.bandwidth_**2), 1)
                           @ self.layout_)
            return torch.cat(out).float().numpy()

    return Float64Cdist


def one(n: int, implementation: str) -> dict[str, float]:
    """Fit and transform once in this process; seconds and peak RSS in MiB."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from lightning_ner_viz.reducers.extension import KernelExtension

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(20, 256))
    X = (centres[rng.integers(0, 20, n)] + rng.normal(size=(n, 256))).astype(np.float32)
    layout = rng.normal(scale=5.0, size=(n, 3))
    later = (X + rng.normal(scale=0.2, size=X.shape)).astype(np.float32)
    cls = KernelExtension if implementation == IMPLEMENTATIONS[0] else _before()
    start = time.perf_counter()
    ext = cls().fit(X, layout)
    fitted = time.perf_counter()
    ext.transform(later)
    done = time.perf_counter()
    return {"fit": fitted - start, "transform": done - fitted,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 tokens")
    parser.add_argument("--threads", type=int, default=None, help="ignored: one thread, as the projector child")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one(int(args.child[0]), IMPLEMENTATIONS[int(args.child[1])])))
        return []
    sizes = (2000, 5000) if args.quick else (2000, 20000)
    rows = []
    for n in sizes:
        for i, name in enumerate(IMPLEMENTATIONS):
            got = C.run_json_child([sys.executable, str(HERE), "--child", str(n), str(i)])
            rows.append([f"{n:,}", name, C.fmt_s(got["fit"]), C.fmt_s(got["transform"]), f"{got['peak_mib']:.0f} MiB"])
            print(f"  kernel_map: {n} {name}: fit {got['fit']:.2f} s, transform {got['transform']:.2f} s",
                  file=sys.stderr, flush=True)
    notes = ["Clustered 256-d features (20 centres), PCA to 50 inside the map, a random 3-D layout; one torch thread; "
             f"each row a fresh process (peak RSS of that process, Python and torch included). Load {C.loadavg()}."]
    table = C.table(["tokens", "implementation", "fit", "transform (a later snapshot)", "peak RSS"], rows)
    return [C.emit("kernel-map", table, "python benchmarks/kernel_map.py" + (" --quick" if args.quick else ""), notes)]


if __name__ == "__main__":
    main()

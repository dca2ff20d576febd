"""Supplement to Q1: why the projection runs in a child process at nice 19, not in a thread.

The training thread runs a fixed workload (forward + backward + AdamW step of tiny BERT
over a fixed number of batches). Meanwhile a UMAP fit of 2,000 x 64 tokens (what one
view of one epoch costs the worker) runs, in a loop until the workload ends:

  * ``alone``: nothing else runs;
  * ``thread``: the UMAP fits run in a ``threading.Thread`` of the same process (as the callback's worker);
  * ``process``: they run in a separate process (``multiprocessing``, spawn), so they share
    the CPU cores but not the GIL;
  * ``process at nice 19``: the same at the lowest CPU priority, as the callback's projector
    child process runs;
  * ``..., 1 torch thread``: the training process uses one torch thread, leaving a core to UMAP.

Reported: the workload's time and its slowdown against ``alone``, median of the repeats.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402


def _umap_data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)


def _umap_loop(stop: object, ready: object, threads: int, nice: int = 0) -> None:
    import os

    import torch

    if nice:
        os.nice(nice)
    torch.set_num_threads(threads)
    from lightning_ner_viz.reducers import make_reducer

    X = _umap_data()
    make_reducer("umap", 3, 0).fit_transform(X[:300])  # compile before the clock starts
    ready.set()
    while not stop.is_set():
        make_reducer("umap", 3, 0).fit_transform(X)


def _workload(model: object, batches: list, opt: object) -> float:
    t = time.perf_counter()
    for batch in batches:
        loss = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    C.quiet()
    import torch

    threads = C.set_threads(args.threads)
    n_batches, repeats = (20, 1) if args.quick else (60, 3)
    model = C.build_model("tiny-bert")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = list(C.loader(32 * n_batches, seed=2))
    _workload(model, batches[:5], opt)
    from lightning_ner_viz.reducers import make_reducer

    make_reducer("umap", 3, 0).fit_transform(_umap_data()[:300])
    extra = threads > 1 and not args.quick  # also show the training process with one torch thread, leaving a core to UMAP
    times: dict[str, list[float]] = {"alone": [], "thread": [], "process": [], "process at nice 19": []}
    if extra:
        times.update({"alone, 1 torch thread": [], "process, 1 torch thread": []})
    ctx = mp.get_context("spawn")
    for _ in range(repeats):
        torch.set_num_threads(threads)
        times["alone"].append(_workload(model, batches, opt))
        stop, ready = threading.Event(), threading.Event()
        worker = threading.Thread(target=_umap_loop, args=(stop, ready, threads), daemon=True)
        worker.start()
        ready.wait()
        times["thread"].append(_workload(model, batches, opt))
        stop.set()
        worker.join()
        stop_p, ready_p = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_umap_loop, args=(stop_p, ready_p, 1))
        proc.start()
        ready_p.wait()
        times["process"].append(_workload(model, batches, opt))
        if extra:
            torch.set_num_threads(1)
            times["process, 1 torch thread"].append(_workload(model, batches, opt))
        stop_p.set()
        proc.join()
        stop_p, ready_p = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=_umap_loop, args=(stop_p, ready_p, 1, 19))
        proc.start()
        ready_p.wait()
        times["process at nice 19"].append(_workload(model, batches, opt))
        stop_p.set()
        proc.join()
        if extra:
            times["alone, 1 torch thread"].append(_workload(model, batches, opt))
        print("  contention: " + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in times.items()) + f" load {C.loadavg()}",
              file=sys.stderr, flush=True)
    rows = []
    for k in times:
        base = C.median(times["alone, 1 torch thread" if "1 torch" in k else "alone"])
        rows.append([k, C.fmt_s(C.median(times[k])), "-" if k.startswith("alone") else C.fmt_pct(C.median(times[k]) / base - 1)])
    md = C.table(["UMAP fits running", f"{n_batches} training steps of tiny BERT", "slowdown"], rows)
    notes = [f"torch threads {threads} in the training process; the UMAP process uses 1 torch thread. "
             f"Median of {repeats} repeats."]
    return [C.emit("contention", md, "python benchmarks/contention.py" + (" --quick" if args.quick else "")
                   + (f" --threads {args.threads}" if args.threads else ""), notes)]


if __name__ == "__main__":
    main()

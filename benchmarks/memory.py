"""Q3: is the callback's memory bounded by ``max_tokens``, not by the validation set size?

Each cell runs in a fresh subprocess: build the model and the validation data, record
the RSS, then run two validation epochs (``trainer.validate`` twice: the first epoch
fixes the tracked tokens, the second follows them) while a thread samples the RSS every
5 ms. Reported: the peak RSS of the process (``ru_maxrss``), and the rise of the RSS
during validation over the RSS just before it ("validation rise"), for:

  * ``plain``: no callback;
  * ``callback``: ``EmbeddingDriftCallback(sinks=[], reducer="pca", max_tokens=2000)``
    (the defaults: projection and metrics in the pooled child process, waited for in
    ``validate``); the child's own peak (``VmHWM``) is reported in its own column;
  * ``callback, one process``: the same with ``background="thread"``, so everything the
    callback allocates is in the measured process;
  * ``callback, metrics off``: a diagnostic, the one-process variant with the per-epoch
    metrics patched out (they compute 2,000 x 2,000 distance matrices per view);
  * ``naive loop``: the seed note's loop, which keeps every token's vector.

The callback's own increment is its validation rise minus the plain one at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MiB = 2**20


THREADS: int | None = None
NO_METRICS = "callback, one process, metrics off*"
ONE_PROCESS = "callback, one process"
VARIANTS = ("plain", "callback", ONE_PROCESS, NO_METRICS, "naive loop")


def child(model_name: str, n: int, variant: str) -> dict[str, float]:
    import psutil

    C.quiet()
    C.set_threads(THREADS)
    from overhead import MAX_TOKENS, NaiveSeedLoop, our_callback

    import gc

    proc = psutil.Process()
    model, dl = C.build_model(model_name), C.loader(n)
    workdir = tempfile.mkdtemp(prefix="ner-viz-mem-")
    if variant == NO_METRICS:  # diagnostic: the per-epoch metrics switched off
        import lightning_ner_viz.projection.projector as projector

        projector.epoch_metrics = lambda *a, **k: {}
    cbs = {"plain": [], "callback": [our_callback("pca", os.path.join(workdir, "snap"))],
           ONE_PROCESS: [our_callback("pca", os.path.join(workdir, "snap"), background="thread")],
           NO_METRICS: [our_callback("pca", os.path.join(workdir, "snap"), background="thread")],
           "naive loop": [NaiveSeedLoop(MAX_TOKENS)]}[variant]
    trainer = C.trainer(cbs, root=workdir)
    gc.collect()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    for _ in range(2):
        trainer.validate(model, dataloaders=dl, verbose=False)
    elapsed = time.perf_counter() - t
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return {
        "before": before / MiB,
        "peak_sampled": peak[0] / MiB,
        "rise": (peak[0] - before) / MiB,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "child_peak": C.child_peak_mib(proc),
        "seconds": elapsed,
    }


def run_child(model_name: str, n: int, variant: str) -> dict[str, float]:
    return C.run_json_child([sys.executable, __file__, "--child", model_name, str(n), variant], THREADS)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny BERT, 300 vs 3,000 sentences, no diagnostic row")
    parser.add_argument("--model", default=None, choices=sorted(C.MODELS))
    parser.add_argument("--sizes", default=None, help="comma-separated sentence counts (default 500,5000; --quick 300,3000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each child")
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global THREADS
    THREADS = args.threads
    if args.child:
        model_name, n, variant = args.child
        print(json.dumps(child(model_name, int(n), variant)))
        return []
    model_name = args.model or ("tiny-bert" if args.quick else "minilm")
    sizes = [int(s) for s in (args.sizes or ("300,3000" if args.quick else "500,5000")).split(",")]
    variants = tuple(v for v in VARIANTS if not (args.quick and v in (NO_METRICS, ONE_PROCESS)))
    cmd = "python benchmarks/memory.py" + (" --quick" if args.quick else "") + (f" --threads {args.threads}" if args.threads else "")
    print(f"memory: {model_name}, load {C.loadavg()}", file=sys.stderr, flush=True)
    results: dict[tuple[str, int], dict[str, float]] = {}
    for variant in variants:
        for n in sizes:
            results[(variant, n)] = run_child(model_name, n, variant)
            r = results[(variant, n)]
            print(f"  {variant} {n}: peak {r['ru_maxrss']:.0f} MiB, rise {r['rise']:.1f} MiB ({r['seconds']:.1f} s)",
                  file=sys.stderr, flush=True)
    rows = []
    small, big = sizes[0], sizes[-1]
    for variant in variants:
        for n in sizes:
            r = results[(variant, n)]
            inc = "-" if variant == "plain" else f"{r['rise'] - results[('plain', n)]['rise']:+.1f} MiB"
            rows.append([variant, f"{n:,}", f"{r['before']:.0f} MiB", f"{r['ru_maxrss']:.0f} MiB",
                         f"{r['rise']:.1f} MiB", inc, f"{r['child_peak']:.0f} MiB" if r.get("child_peak") else "-"])
    growth = {v: results[(v, big)]["ru_maxrss"] / results[(v, small)]["ru_maxrss"] - 1
              for v in variants}
    inc_small = results[("callback", small)]["rise"] - results[("plain", small)]["rise"]
    inc_big = results[("callback", big)]["rise"] - results[("plain", big)]["rise"]
    md = C.table(["variant", "val sentences", "RSS before validation", "peak RSS (ru_maxrss)",
                  "validation rise", "increment vs plain", "projector process peak"], rows)
    notes = [
        f"{model_name} (hidden {C.MODELS[model_name][0]}), batch 32, `max_tokens=2000`, 2 validation epochs per process.",
        f"Peak RSS growth {small:,} -> {big:,} sentences: plain {C.fmt_pct(growth['plain'])}, "
        f"callback {C.fmt_pct(growth['callback'])} (its projector process "
        f"{C.fmt_pct(results[('callback', big)]['child_peak'] / max(results[('callback', small)]['child_peak'], 1) - 1)}), "
        + (f"callback in one process {C.fmt_pct(growth[ONE_PROCESS])}, " if ONE_PROCESS in growth else "")
        + f"naive loop {C.fmt_pct(growth['naive loop'])}. "
        f"Target (callback) < 10%: {'met' if growth['callback'] < 0.10 else 'MISSED'}. "
        f"The callback's own increment: {inc_small:+.1f} MiB at {small:,}, {inc_big:+.1f} MiB at {big:,} sentences.",
        *([] if args.quick else ["\\* diagnostic only: the one-process callback with `lightning_ner_viz.projection.projector.epoch_metrics` "
        "replaced by a no-op, to show how much of the increment the metrics take."]),
    ]
    return [C.emit("memory", md, cmd, notes)]


if __name__ == "__main__":
    main()

"""Time to picture: how long after a validation its picture is logged, and what the callback adds to ``fit``.

The workload: a 4-layer, 256-wide BERT tagger (``BertConfig`` hidden 256, 4 layers, 4 heads,
intermediate 1024, random weights), ``trainer.fit`` for 2 epochs of 2 training batches (32 generated
titles each) with 1,200 validation sentences, ``EmbeddingDriftCallback(max_tokens=2000)`` with its
defaults (``background=True``: the projection runs in the pooled low-priority child process, the sinks
log from a render thread of the training process). Sinks: a Rerun file and an HTML report (what
``sinks=None`` gives without a logger; ``--sinks recorder``: none) and, last, a recorder.

Every fit runs in a fresh Python process (``--child``), as a user's first fit does: it starts its own
projector child, so its one-off costs (a Python with torch, numba's compilation for UMAP) are in the
numbers. Per repeat the variants run in rotated order (without the callback, then each reducer), and
each number is the median over ``--repeats``. All clocks are ``time.monotonic()`` in the training process:

* **fit without / fit with**: wall time of ``trainer.fit`` (model, data and tokenizer built before),
  end to end, so *with* includes any wait at the end of fit (by default ``fit`` returns when training is
  done and the last pictures are drawn afterwards; ``--wait-at-fit-end`` makes it wait for them).
  **ratio** = with / without, paired per repeat.
* **end-of-fit wait**: from the last validation's end (``on_validation_epoch_end`` of a probe callback
  placed after ours) until ``trainer.fit`` returns; in brackets the same span without the callback.
* **last picture**: from ``fit`` start until ``callback.wait()`` returns (every picture written, the sinks
  closed), called right after ``fit``; in brackets its ratio to the fit without the callback.
* **lag per epoch**: for epoch n, from that validation's end (the probe, as above) to the moment the
  recorder sink's ``log_epoch`` is called for the epoch's snapshot. The recorder is the last sink, so
  the Rerun and HTML sinks have logged the epoch (points, groups, analyses) by then. **max lag**: the
  largest single lag seen over every repeat and epoch.
* **first picture**: from ``fit`` start to epoch 0's picture.
* **child boot**: from the creation of the projector child (``ProjectorProcess.__init__``, at the first
  rendered epoch) until its ``start`` returns (it imported torch and unpickled the projector), and when
  that creation happened (seconds after fit start). **projection per epoch**: the parent's wall time of
  ``ProjectorProcess.project`` (pickling both ways and the child's projection and analyses). These three
  ``ProjectorProcess`` methods are wrapped with a timer in the benchmark process; nothing else changes.

    python benchmarks/time_to_picture.py                   # the issue's workload, 3 repeats
    python benchmarks/time_to_picture.py --quick           # 200 validation sentences, 1 repeat (1-2 min)
    python benchmarks/time_to_picture.py --reducers umap --repeats 5 --val-sentences 5000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.quiet()

HERE = Path(__file__).resolve()
MODEL = "bert-4x256"
C.MODELS.setdefault(MODEL, (256, 4, 4, 1024))  # hidden, layers, heads, intermediate
BATCH = 32
PLAIN = "without"


# --------------------------------------------------------------------------- one fit, in a fresh process

def one_fit(variant: str, epochs: int, train_batches: int, val_sentences: int, sinks: str, model_name: str = MODEL,
            child_threads: int | None = None, wait_at_fit_end: bool = False) -> dict[str, Any]:
    """Fit once (``variant``: ``without`` or a reducer name); every time in seconds after fit start."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.projection import process
    from lightning_ner_viz.sinks.base import Sink
    from lightning_ner_viz.sinks.registry import sink_class

    marks: dict[str, Any] = {"val_end": {}, "logged": {}, "project": {}}

    class Probe(Callback):
        """Placed first (``on_fit_end`` start) and last (validation end, after our callback's hook)."""

        def __init__(self, last: bool) -> None:
            self.last = last

        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.last and not trainer.sanity_checking:
                marks["val_end"][str(trainer.current_epoch)] = time.monotonic()

        def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if not self.last:
                marks["fit_end_hook"] = time.monotonic()

    class Recorder(Sink):
        """Notes when the sinks get each snapshot (it is the last sink: the others logged it already)."""

        def log_epoch(self, snapshot: Any, coords: dict[str, Any], metrics: dict[str, float]) -> None:
            marks["logged"].setdefault(str(snapshot.key.epoch), time.monotonic())

    if child_threads:  # the projector child's threads (default: a quarter of the cores, at least 1)
        process.default_threads = lambda: child_threads  # type: ignore[assignment]
    cls = process.ProjectorProcess
    init, start, project = cls.__init__, cls.start, cls.project

    def timed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        marks.setdefault("spawn", time.monotonic())
        init(self, *args, **kwargs)

    def timed_start(self: Any, projector: Any) -> None:
        start(self, projector)
        marks.setdefault("ready", time.monotonic())

    def timed_project(self: Any, snapshot: Any) -> Any:
        t = time.monotonic()
        out = project(self, snapshot)
        marks["project"][str(snapshot.key.epoch)] = [t, time.monotonic()]
        return out

    cls.__init__, cls.start, cls.project = timed_init, timed_start, timed_project  # type: ignore[method-assign]

    pl.seed_everything(0, verbose=False)
    model = C.build_model(model_name)
    train_dl, val_dl = C.loader(train_batches * BATCH, seed=2), C.loader(val_sentences)
    workdir = tempfile.mkdtemp(prefix="ner-viz-ttp-")
    cbs: list[Any] = []
    if variant != PLAIN:
        chosen = [] if sinks == "recorder" else [sink_class("rerun")(), sink_class("html")()]
        cbs = [EmbeddingDriftCallback(sinks=[*chosen, Recorder()], reducer=variant, max_tokens=2000,
                                      tokenizer=C.tokenizer(), save_dir=os.path.join(workdir, "ner_viz"),
                                      wait_at_fit_end=wait_at_fit_end)]
    trainer = C.trainer([Probe(last=False), *cbs, Probe(last=True)], root=workdir, max_epochs=epochs,
                        limit_train_batches=train_batches)
    t0 = time.monotonic()
    trainer.fit(model, train_dl, val_dl)
    t1 = time.monotonic()
    for cb in cbs:
        cb.wait(progress=False)
    t2 = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)

    def rel(d: dict[str, Any]) -> dict[str, Any]:
        return {k: [x - t0 for x in v] if isinstance(v, list) else v - t0 for k, v in d.items()}

    return {"fit": t1 - t0, "done": t2 - t0, "val_end": rel(marks["val_end"]), "logged": rel(marks["logged"]),
            "project": rel(marks["project"]), "fit_end_hook": marks.get("fit_end_hook", float("nan")) - t0,
            "spawn": marks.get("spawn", float("nan")) - t0, "ready": marks.get("ready", float("nan")) - t0,
            "threads": torch.get_num_threads(),
            "child_threads": process.default_threads()}


def run_child(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--child", variant, "--epochs", str(args.epochs), "--train-batches",
           str(args.train_batches), "--val-sentences", str(args.val_sentences), "--sinks", args.sinks, "--model", args.model]
    if args.child_threads:
        cmd += ["--child-threads", str(args.child_threads)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.wait_at_fit_end:
        cmd += ["--wait-at-fit-end"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=C.REPO)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    for line in res.stderr.splitlines():  # the library's own warnings (e.g. training waited for the backlog)
        if "NerVizWarning" in line:
            print(f"    [{variant}] {line.strip()}", file=sys.stderr, flush=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the table

def span(run: dict[str, Any], what: str) -> list[float]:
    """Per epoch, seconds from the validation's end to ``what``: ``logged``, ``project_start`` or ``project_end``."""
    out = []
    for e, end in sorted((int(k), v) for k, v in run["val_end"].items()):
        if what == "logged":
            t = run["logged"].get(str(e), float("nan"))
        else:
            t = run["project"].get(str(e), [float("nan")] * 2)[what == "project_end"]
        out.append(t - end)
    return out


def seconds(xs: list[float]) -> str:
    return " / ".join(f"{x:.1f}" if x == x else "n/a" for x in xs) + " s"


def row(reducer: str, runs: list[dict[str, Any]], plain: list[dict[str, Any]], epochs: int) -> tuple[list[str], str]:
    def last_val(r: dict[str, Any]) -> float:
        return r["val_end"][str(epochs - 1)]

    lags = [span(r, "logged") for r in runs]
    per_epoch = [C.median([lag[e] for lag in lags]) for e in range(epochs)]
    worst = max((x for lag in lags for x in lag if x == x), default=float("nan"))
    starts, ends = [span(r, "project_start") for r in runs], [span(r, "project_end") for r in runs]
    queued = [C.median([s[e] for s in starts]) for e in range(epochs)]
    projected = [C.median([b[e] - a[e] for a, b in zip(starts, ends)]) for e in range(epochs)]
    to_sinks = [C.median([lag[e] - b[e] for lag, b in zip(lags, ends)]) for e in range(epochs)]
    missing = sum(len(r["val_end"]) - len(r["logged"]) for r in runs)
    cells = [
        f"**{reducer.upper()}**", C.fmt_s(C.median([p["fit"] for p in plain])), C.fmt_s(C.median([r["fit"] for r in runs])),
        f"{C.median([r['fit'] / p['fit'] for r, p in zip(runs, plain)]):.2f}x",
        f"{C.fmt_s(C.median([r['fit'] - last_val(r) for r in runs]))} ({C.fmt_s(C.median([p['fit'] - last_val(p) for p in plain]))})",
        f"{C.fmt_s(C.median([r['done'] for r in runs]))} "
        f"({C.median([r['done'] / p['fit'] for r, p in zip(runs, plain)]):.2f}x)",
        seconds(per_epoch) + (f" ({missing} never logged)" if missing else ""), f"**{C.fmt_s(worst)}**",
        C.fmt_s(C.median([r["logged"].get("0", float("nan")) for r in runs])),
        f"{C.fmt_s(C.median([r['ready'] - r['spawn'] for r in runs]))} (at {C.median([r['spawn'] for r in runs]):.1f} s)",
        seconds(projected),
    ]
    trained = (f"{reducer.upper()}: the last validation ended {C.median([last_val(r) for r in runs]):.1f} s after fit "
               f"start (without the callback: {C.median([last_val(p) for p in plain]):.1f} s). ")
    note = trained + (f"Lag by stage, per epoch (medians): validation end -> projection starts (capture "
                      f"selection, snapshot saved, queue; epoch 0 also the child's boot) {seconds(queued)}; "
                      f"projection {seconds(projected)}; projection end -> logged (the sinks before the recorder) "
                      f"{seconds(to_sinks)}.")
    return cells, note


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-batches", type=int, default=2, help=f"training batches per epoch ({BATCH} titles each)")
    parser.add_argument("--val-sentences", type=int, default=None, help="default 1,200 (--quick: 200)")
    parser.add_argument("--repeats", type=int, default=None, help="rotated runs of every variant, medians (default 3)")
    parser.add_argument("--reducers", nargs="+", default=["pca", "umap"], choices=["pca", "umap", "tsne"])
    parser.add_argument("--sinks", default="default", choices=["default", "recorder"],
                        help="default: Rerun file + HTML report + the recorder; recorder: the recorder alone")
    parser.add_argument("--quick", action="store_true", help="200 validation sentences, 1 repeat (run_all.py --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each fit (default: every core)")
    parser.add_argument("--model", default=MODEL, choices=sorted(C.MODELS),
                        help=f"the tagger's shape (default {MODEL}; minilm: all-MiniLM-L6-v2's, random weights)")
    parser.add_argument("--child-threads", type=int, default=None,
                        help="threads of the projector child (default: the package's, a quarter of the cores)")
    parser.add_argument("--wait-at-fit-end", action="store_true",
                        help="EmbeddingDriftCallback(wait_at_fit_end=True): fit waits for its last pictures")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.val_sentences = args.val_sentences or (200 if args.quick else 1200)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.child:
        C.set_threads(args.threads)
        print(json.dumps(one_fit(args.child, args.epochs, args.train_batches, args.val_sentences, args.sinks,
                                 args.model, args.child_threads, args.wait_at_fit_end)))
        return []
    variants = [PLAIN, *args.reducers]
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    load_before = C.loadavg()
    start = time.perf_counter()
    for r in range(args.repeats):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            results[v].append(run_child(v, args))
            got = results[v][-1]
            print(f"  time_to_picture: repeat {r + 1}/{args.repeats} {v}: fit {got['fit']:.1f} s, lags "
                  f"{seconds(span(got, 'logged')) if v != PLAIN else '-'} (load {C.loadavg()})", file=sys.stderr, flush=True)
    rows, notes = [], []
    for reducer in args.reducers:
        cells, note = row(reducer, results[reducer], results[PLAIN], args.epochs)
        rows.append(cells)
        notes.append(note)
    header = ["reducer", "fit without", "fit with", "ratio", "end-of-fit wait (without)", "last picture (ratio)",
              "lag per epoch", "max lag", "first picture", "child boot (started at)", "projection per epoch"]
    first = results[args.reducers[0]][0]
    shape = C.MODELS[args.model]
    try:
        niceness = f", benchmark at nice {os.getpriority(os.PRIO_PROCESS, 0)}"
    except (AttributeError, OSError):
        niceness = ""
    sinks = "a Rerun file, an HTML report and a recorder" if args.sinks == "default" else "a recorder only"
    notes = [
        f"{args.model} (hidden {shape[0]}, {shape[1]} layers, {shape[2]} heads, intermediate {shape[3]}, random "
        f"weights), {args.epochs} epochs of "
        f"{args.train_batches} training batches ({BATCH} titles each), {args.val_sentences:,} validation sentences, "
        f"`max_tokens=2000`, default `background=True` (projector child at nice 19 + SCHED_IDLE, "
        f"{first['child_threads']} thread), sinks: {sinks}. Each fit in a fresh process (its own projector child); "
        f"median of {args.repeats} rotated repeat(s); the ratio is paired per repeat.",
        "Lag = validation end (probe after the callback) -> the last sink's `log_epoch`; end-of-fit wait = last "
        "validation end -> `fit` returns (in brackets: the same span without the callback); last picture = `fit` "
        "start -> `callback.wait()` returns, called right after `fit` (every picture written, the sinks closed); "
        "first picture and child boot are seconds after `fit` starts.",
        *notes,
        f"{os.cpu_count()} cores, {first['threads']} torch threads{niceness}; load {load_before} before, "
        f"{C.loadavg()} after ({time.perf_counter() - start:.0f} s in all).",
    ]
    cmd = "python benchmarks/time_to_picture.py" + (" --quick" if args.quick else "") + "".join(
        f" --{flag} {value}".rstrip() for flag, value, default in [
            ("epochs", args.epochs, 2), ("train-batches", args.train_batches, 2),
            ("val-sentences", args.val_sentences, 200 if args.quick else 1200),
            ("repeats", args.repeats, 1 if args.quick else 3), ("reducers", " ".join(args.reducers), "pca umap"),
            ("sinks", args.sinks, "default"), ("threads", args.threads, None), ("model", args.model, MODEL),
            ("child-threads", args.child_threads, None), ("wait-at-fit-end", "" if args.wait_at_fit_end else None, None)]
        if value != default)
    name = "time-to-picture" + ("" if args.model == MODEL else f"-{args.model}") + ("-waiting" if args.wait_at_fit_end else "")
    return [C.emit(name, C.table(header, rows), cmd, notes)]


if __name__ == "__main__":
    main()

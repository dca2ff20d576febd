"""Q1: how much does the callback slow the training thread down?

Part A (``trainer.validate``, A/B interleaved in one process): the validation-loop time
with each variant divided by the plain loop time, paired per repeat, median of the
repeats. The loop is timed from ``on_validation_start`` (first callback) to
``on_validation_epoch_end`` (last callback, after ours has handed the epoch to its capture
thread and that thread has selected the tokens and queued the rendering job: the clock
waits for the capture thread, so part A counts the capture's whole cost, wherever it runs).
In ``validate`` the callback then waits for the worker in ``on_validation_end``; that wait
(the worker's time) is not part of the overhead, because in ``fit`` nothing waits for it
there (part B measures what the worker costs, and how long the training thread is blocked).

Variants:
  * ``plain``             no callback;
  * ``capture``           ``EmbeddingDriftCallback(sinks=[], reducer=<a no-op reducer>)``;
  * ``capture+pca``       ``reducer="pca"``, ``sinks=[]``;
  * ``capture+umap``      ``reducer="umap"``, ``sinks=[]`` (the worker's UMAP is waited after the timer stops);
  * ``naive loop``        the seed note's loop (``last_hidden_state.cpu().numpy()`` and a Python
                          loop over every token) over the whole validation set, on the same forward
                          (a hook, no second pass), then sklearn PCA on the first ``max_tokens``;
  * ``seed as written``   the seed's function as written (a second forward of ``model.bert`` until
                          ``max_tokens`` tokens are collected, then PCA), timed on its own after the
                          plain loop: overhead = its time / plain loop time.

The timed epochs are steady-state epochs: the tracked tokens were fixed by an earlier epoch
(token selection depends only on token ids and gold labels, so a warm-up on the tiny model
fixes the same tokens the bigger model would).

Part B (``trainer.fit``, only in the full run or with ``--fit``): UMAP in the background
thread competes with training for the 2 cores and the GIL. We time whole epochs (train
+ validation) of a 3-epoch fit with and without the UMAP callback, and with Lightning's
default checkpointing on (whose ``state_dict`` call waits for neither thread).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.quiet()

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from lightning_ner_viz import EmbeddingDriftCallback  # noqa: E402
from lightning_ner_viz.demo.data import LABEL_NAMES  # noqa: E402

MAX_TOKENS = 2000
LOOP_SECONDS = 10.0  # short loops are repeated until each variant has about this much timed (4 s with --quick)


# --------------------------------------------------------------------------- timers

class Mark(Callback):
    """Records ``time.perf_counter()`` at validation hooks into a shared dict."""

    def __init__(self, clock: dict[str, float], role: str) -> None:
        self.clock, self.role = clock, role

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.role == "start":
            self.clock["start"] = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.role == "stop":
            for cb in trainer.callbacks:  # count the capture thread's selection, not only the hand-over
                if isinstance(cb, EmbeddingDriftCallback):
                    cb._run.capture.wait()  # private: the benchmark times the capture thread's share
            self.clock["stop"] = time.perf_counter()


class EpochClock(Callback):
    """Per training epoch: wall time from one ``on_train_epoch_start`` to the next (or ``on_train_end``)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = time.perf_counter()

    def epochs(self) -> list[float]:
        edges = [*self.starts, self.end]
        return [b - a for a, b in zip(edges, edges[1:])]


# --------------------------------------------------------------------------- the seed note's loop

class NaiveSeedLoop(Callback):
    """The seed note's per-token loop, on the validation forward's own hidden states.

    Like the note: ``last_hidden_state.cpu().numpy()``, ``labels.cpu().numpy()``, then a
    Python loop over every token appending vectors and label names; at the end
    ``np.array`` of the first ``max_samples`` and sklearn PCA. Unlike the note it does
    not stop after ``max_samples`` tokens (our callback sees the whole validation set to
    sample it) and it reuses the forward pass through a hook instead of running a second one.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.idx2label = dict(enumerate(LABEL_NAMES))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.all_embeddings: list[np.ndarray] = []
        self.all_labels: list[str] = []
        self._out: Any = None

        def hook(_m: Any, _i: Any, output: Any) -> None:
            self._out = output

        self._handle = pl_module.model.bert.register_forward_hook(hook)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001
        hidden_states = self._out.last_hidden_state.cpu().numpy()  # [batch, seq_len, hidden_size]
        labels = batch["labels"].cpu().numpy()
        for hs, lbls in zip(hidden_states, labels):
            for vec, lbl in zip(hs, lbls):
                if lbl == -100:
                    continue
                self.all_embeddings.append(vec)
                self.all_labels.append(self.idx2label[int(lbl)])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from sklearn.decomposition import PCA

        self._handle.remove()
        X = np.array(self.all_embeddings[: self.max_samples])
        PCA(n_components=2).fit_transform(X)
        self.all_embeddings, self.all_labels = [], []


def seed_as_written(model: Any, dataloader: Any, max_samples: int = MAX_TOKENS) -> None:
    """The seed note's ``visualize_embeddings`` without the plot: a second forward, stops at ``max_samples``."""
    from sklearn.decomposition import PCA

    idx2label = dict(enumerate(LABEL_NAMES))
    all_embeddings, all_labels = [], []
    bert = model.model.bert
    bert.eval()
    with torch.no_grad():
        for batch in dataloader:
            outputs = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            hidden_states = outputs.last_hidden_state.cpu().numpy()
            labels = batch["labels"].cpu().numpy()
            for hs, lbls in zip(hidden_states, labels):
                for vec, lbl in zip(hs, lbls):
                    if lbl == -100:
                        continue
                    all_embeddings.append(vec)
                    all_labels.append(idx2label[int(lbl)])
            if len(all_embeddings) > max_samples:
                break
    X = np.array(all_embeddings[:max_samples])
    PCA(n_components=2).fit_transform(X)


# --------------------------------------------------------------------------- part A

VARIANTS = ("plain", "capture", "capture+pca", "capture+umap", "naive loop")


def our_callback(reducer: Any, save_dir: str, **kwargs: Any) -> EmbeddingDriftCallback:
    return EmbeddingDriftCallback(
        sinks=[], reducer=reducer, max_tokens=MAX_TOKENS, tokenizer=C.tokenizer(), save_dir=save_dir, **kwargs
    )


def make_variant(name: str, save_dir: str) -> list[Callback]:
    if name == "plain":
        return []
    if name == "capture":
        return [our_callback(C.CheapReducer(), save_dir)]
    if name == "capture+pca":
        return [our_callback("pca", save_dir)]
    if name == "capture+umap":
        return [our_callback("umap", save_dir)]
    if name == "naive loop":
        return [NaiveSeedLoop(MAX_TOKENS)]
    raise ValueError(name)


_TRACKED: dict[int, list[int] | None] = {}


def tracked_ids(n_sentences: int, workdir: str) -> list[int] | None:
    """The token ids a first epoch fixes (they depend on ids and gold labels only): one tiny-model epoch."""
    if n_sentences not in _TRACKED:
        cb = our_callback(C.CheapReducer(), os.path.join(workdir, "tracked"))
        C.trainer([cb]).validate(C.build_model("tiny-bert"), dataloaders=C.loader(n_sentences), verbose=False)
        _TRACKED[n_sentences] = cb.tracked_ids
    return _TRACKED[n_sentences]


def run_case(model_name: str, n_sentences: int, repeats: int, variants: tuple[str, ...], workdir: str,
             log: Any = print) -> dict[str, Any]:
    """A/B/C/... interleaved, rotating the order each repeat. Returns per-variant lists of times."""
    model = C.build_model(model_name)
    dl = C.loader(n_sentences)
    tracked = tracked_ids(n_sentences, workdir)
    clock: dict[str, float] = {}
    trainers, callbacks = {}, {}
    for name in variants:
        cbs = make_variant(name, os.path.join(workdir, f"{model_name}-{n_sentences}-{name}"))
        callbacks[name] = cbs
        trainers[name] = C.trainer([Mark(clock, "start"), *cbs, Mark(clock, "stop")])
    # warm-up: a few batches per variant (allocator, UMAP/numba JIT in the worker, first-call costs)
    for name in variants:
        C.trainer(callbacks[name], limit_val_batches=3).validate(model, dataloaders=dl, verbose=False)
        for cb in callbacks[name]:
            if isinstance(cb, EmbeddingDriftCallback):
                cb.load_state_dict({"tracked_ids": tracked})  # steady state: the tokens of a full first epoch
    # short loops are noisy: repeat them until each variant has about 10 s of timed loops (at most 5x)
    first = C.timed(lambda: trainers["plain"].validate(model, dataloaders=dl, verbose=False))
    repeats = max(repeats, min(5 * repeats, round(LOOP_SECONDS / max(first, 1e-3))))
    loop = {n: [] for n in variants}
    wall = {n: [] for n in variants}
    seed = []
    for r in range(repeats):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        for name in order:
            clock.clear()
            t0 = time.perf_counter()
            trainers[name].validate(model, dataloaders=dl, verbose=False)
            t1 = time.perf_counter()
            loop[name].append(clock["stop"] - clock["start"])
            wall[name].append(t1 - t0)
            if name == "plain":
                seed.append(C.timed(lambda: seed_as_written(model, dl)))
        log(f"  [{model_name} {n_sentences}] repeat {r + 1}/{repeats}: "
            + ", ".join(f"{n}={loop[n][-1]:.2f}s" for n in variants) + f"  load {C.loadavg()}")
    return {"loop": loop, "wall": wall, "seed": seed, "repeats": repeats}


def ratios(times: dict[str, list[float]], name: str) -> float:
    """Median over repeats of (variant time / plain time in the same repeat) - 1 (nan when not run)."""
    if name not in times:
        return float("nan")
    return C.median([v / p - 1 for v, p in zip(times[name], times["plain"])])


def part_a(models: list[str], sizes: list[int], repeats: int, variants: tuple[str, ...], workdir: str) -> tuple[str, list[dict]]:
    rows, records = [], []
    for model_name in models:
        for n in sizes:
            res = run_case(model_name, n, repeats, variants, workdir, log=lambda s: print(s, file=sys.stderr, flush=True))
            plain = C.median(res["loop"]["plain"])
            ours = ratios(res["loop"], "capture")
            naive = ratios(res["loop"], "naive loop") if "naive loop" in variants else float("nan")
            seed_ratio = C.median([s / p for s, p in zip(res["seed"], res["loop"]["plain"])])
            for name in variants:
                over = 0.0 if name == "plain" else ratios(res["loop"], name)
                target = ""
                if name in ("capture", "capture+pca"):
                    target = "<= 3%: " + ("met" if over <= 0.03 else "MISSED")
                elif name == "capture+umap":
                    target = "<= 5%: " + ("met" if over <= 0.05 else "MISSED")
                elif name == "naive loop":
                    if naive <= 0:
                        target = "naive <= plain (noise): MISSED (< 10x)"
                    elif ours <= 0:
                        target = "ours within noise of plain: met (>= 10x)"
                    else:
                        factor = naive / ours
                        target = f"naive / ours = {factor:.2g}x: " + ("met (>= 10x)" if factor >= 10 else "MISSED (< 10x)")
                rows.append([model_name, f"{n:,}", name, str(res["repeats"]), C.fmt_s(C.median(res["loop"][name])),
                             "-" if name == "plain" else C.fmt_pct(over), target])
            rows.append([model_name, f"{n:,}", "seed as written", str(res["repeats"]), C.fmt_s(C.median(res["seed"])),
                         f"{seed_ratio * 100:+.1f}%", "a 2nd forward pass over the first ~2,000 tokens only"])
            records.append({"model": model_name, "n": n, "plain": plain, "capture": ours, "naive": naive,
                            "pca": ratios(res["loop"], "capture+pca"), "umap": ratios(res["loop"], "capture+umap")})
    md = C.table(["model", "val sentences", "variant", "repeats", "val loop (median)", "overhead vs plain", "target"], rows)
    return md, records


# --------------------------------------------------------------------------- part B

class TimedDrift(EmbeddingDriftCallback):
    """Our callback, timing every hook the training thread calls (the time training is blocked in it)."""

    HOOKS = ("on_validation_epoch_start", "on_validation_batch_end", "on_validation_epoch_end", "state_dict")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocked: dict[int, float] = {}
        self.val_time: dict[int, float] = {}
        self._epoch = 0
        self.inline_selection = False
        for name in self.HOOKS:
            setattr(self, name, self._timed(getattr(self, name)))

    def _timed(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.blocked[self._epoch] = self.blocked.get(self._epoch, 0.0) + time.perf_counter() - t0
        return wrapper

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.inline_selection:  # private: the capture thread's job runner runs jobs inline
            self._run.capture._jobs.enabled = False

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch = trainer.current_epoch
        self._val_start = time.perf_counter()
        super().on_validation_start(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self.val_time[trainer.current_epoch] = time.perf_counter() - self._val_start


FIT_VARIANTS: dict[str, tuple[str, Any] | None] = {  # name -> (reducer, background)
    "plain": None,
    "capture, no-op reducer": ("cheap", "thread"),
    "UMAP, child process (default)": ("umap", True),
    "UMAP, child process, selection on the training thread": ("umap", True),
    "UMAP, thread": ("umap", "thread"),
}
INLINE_SELECTION = "UMAP, child process, selection on the training thread"  # the capture thread switched off


def part_b(n_val: int, n_train: int, epochs: int, repeats: int, workdir: str) -> str:
    """Whole-epoch times of a fit with/without UMAP in the background, checkpointing off/on."""
    base = C.build_model("tiny-bert")
    init_state = copy.deepcopy(base.state_dict())
    train_dl = C.loader(n_train, seed=2, shuffle=False)
    val_dl = C.loader(n_val)

    def fit(name: str, ckpt: bool, tag: str) -> tuple[EpochClock, TimedDrift | None, float]:
        model = C.build_model("tiny-bert")
        model.load_state_dict(init_state)
        clock = EpochClock()
        variant = FIT_VARIANTS[name]
        cb = None if variant is None else TimedDrift(
            sinks=[], reducer=C.CheapReducer() if variant[0] == "cheap" else variant[0], max_tokens=MAX_TOKENS,
            tokenizer=C.tokenizer(), save_dir=os.path.join(workdir, tag), background=variant[1])
        if name == INLINE_SELECTION:  # as before the capture thread: select tokens in the hooks
            cb.inline_selection = True
        root = tempfile.mkdtemp(prefix="fit-", dir=workdir)
        t0 = time.perf_counter()
        C.trainer([clock, *([cb] if cb else [])], root=root, max_epochs=epochs,
                  enable_checkpointing=ckpt).fit(model, train_dl, val_dl)
        total = time.perf_counter() - t0
        shutil.rmtree(root, ignore_errors=True)
        return clock, cb, total

    # UMAP's numba code compiles once per process: in this one (thread) and in the pooled child (process)
    for name, variant in FIT_VARIANTS.items():
        if variant is not None and variant[0] == "umap":
            fit(name, False, f"warmup-{name[:6]}")
    configs = [(name, ckpt) for ckpt in (False, True) for name in FIT_VARIANTS]
    epochs_of: dict[tuple[str, bool], list[list[float]]] = {c: [] for c in configs}
    totals: dict[tuple[str, bool], list[float]] = {c: [] for c in configs}
    blocked: dict[tuple[str, bool], list[float]] = {c: [] for c in configs}
    for r in range(repeats):
        for name, ckpt in configs[r % len(configs):] + configs[: r % len(configs)]:
            clock, cb, total = fit(name, ckpt, f"fit-{r}-{ckpt}-{name[:6]}")
            totals[(name, ckpt)].append(total)
            epochs_of[(name, ckpt)].append(clock.epochs())
            if cb is not None:  # share of each validation epoch spent inside the callback's hooks
                blocked[(name, ckpt)].extend(cb.blocked.get(e, 0.0) / t for e, t in cb.val_time.items())
        print(f"  [fit] repeat {r + 1}/{repeats} load {C.loadavg()}", file=sys.stderr, flush=True)
    rows = []
    for name, ckpt in configs:
        runs, plain = epochs_of[(name, ckpt)], epochs_of[("plain", ckpt)]
        loop = C.median([sum(e) for e in runs])
        slowed = C.median([sum(u) / sum(p) - 1 for u, p in zip(runs, plain)])
        per_epoch = " / ".join(C.fmt_s(C.median([e[k] for e in runs])) for k in range(epochs))
        is_plain = name == "plain"
        rows.append([
            name, "on" if ckpt else "off", per_epoch, C.fmt_s(loop),
            "-" if is_plain else C.fmt_pct(C.median(blocked[(name, ckpt)])),
            "-" if is_plain else C.fmt_pct(slowed),
            "-" if is_plain else C.fmt_s(C.median(totals[(name, ckpt)]) - loop),
            "-" if is_plain else "<= 5%: " + ("met" if slowed <= 0.05 else "MISSED"),
        ])
    return C.table(["variant", "checkpointing", "epochs", "fit loop", "blocked in callback*", "training slowed",
                    "after-loop wait**", "target (training slowed)"], rows)


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny BERT, 500 sentences, 3 repeats, no fit part")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=None, help="run part B (fit)")
    parser.add_argument("--only-fit", action="store_true", help="run part B only")
    parser.add_argument("--models", nargs="+", choices=sorted(C.MODELS), help="part A models (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, help="part A validation sizes (default: 500 5000)")
    parser.add_argument("--variants", nargs="+", choices=[v for v in VARIANTS if v != "plain"],
                        help="part A variants besides plain, e.g. --variants capture 'naive loop' (default: all)")
    args = parser.parse_args(argv)
    threads = C.set_threads(args.threads)
    global LOOP_SECONDS
    LOOP_SECONDS = 4.0 if args.quick else 10.0
    repeats = args.repeats or (3 if args.quick else 5)
    models = args.models or (["tiny-bert"] if args.quick else ["tiny-bert", "minilm"])
    sizes = args.sizes or ([500] if args.quick else [500, 5000])
    variants = ("plain", *args.variants) if args.variants else VARIANTS
    do_fit = (not args.quick) if args.fit is None else args.fit
    cmd = "python benchmarks/overhead.py" + (" --quick" if args.quick else "") + (f" --threads {args.threads}" if args.threads else "")
    workdir = tempfile.mkdtemp(prefix="ner-viz-overhead-")
    blocks = []
    try:
        print(f"overhead: torch threads {threads}, load {C.loadavg()}", file=sys.stderr, flush=True)
        if args.only_fit:
            do_fit, models = True, []
        md, records = part_a(models, sizes, repeats, variants, workdir) if models else ("", [])
        notes = [
            f"Validation loop of `trainer.validate` (batch 32, `max_tokens={MAX_TOKENS}`, torch threads {threads}), "
            f"interleaved repeats (at least {repeats}; more for short loops, up to about 10 s per variant); "
            "overhead = median over repeats of (variant loop / plain loop of the same repeat) - 1. "
            "`capture`, `capture+pca` and `capture+umap` do the same work on the training thread (they differ "
            "only in the background job), so their spread shows the measurement noise.",
            "The loop's clock stops when the callback's capture thread has selected the epoch's tokens and "
            "queued the rendering job (it waits for that thread, so the capture's whole cost is counted wherever "
            "it runs); the worker's own time (reduce both views, metrics), which `validate` then waits for, is "
            "not counted: `fit` does not wait for it. The fit table below measures what it costs the training thread.",
        ]
        if models:
            blocks.append(C.emit("overhead", md, cmd, notes))
        summary = [
            f"- {r['model']} {r['n']:,}: capture {C.fmt_pct(r['capture'])}, +PCA {C.fmt_pct(r['pca'])}, "
            f"+UMAP {C.fmt_pct(r['umap'])}, naive loop {C.fmt_pct(r['naive'])}" for r in records
        ]
        print("\n".join(summary), flush=True)
        if do_fit:
            reps = max(3, repeats - 2)
            md = part_b(n_val=500, n_train=2000, epochs=3, repeats=reps, workdir=workdir)
            notes = [
                f"`trainer.fit` of tiny BERT, 3 epochs, 2,000 training and 500 validation sentences (the demo's "
                f"80/20 split), `reducer=\"umap\"`, `sinks=[]`, median of {reps} interleaved repeats. Epoch times run "
                "from one `on_train_epoch_start` to the next (training + validation + checkpoint); the fit loop "
                "ends at `on_train_end`, before the callback's final wait. Training slowed = median over repeats of "
                "(fit loop / plain fit loop of the same repeat) - 1: it includes the CPU the background work takes "
                "from training, which the callback's own hooks do not show.",
                "\\* blocked in callback: time spent inside the callback's hooks (`on_validation_epoch_start`, "
                "`on_validation_batch_end`, `on_validation_epoch_end`, `state_dict`), as a share of that validation "
                "epoch, median over epochs and repeats.",
                "\\** after-loop wait: the time `fit` spent after `on_train_end`, mostly waiting for the last "
                "epoch's rendering (shown with a progress bar).",
            ]
            blocks.append(C.emit("overhead-fit", md, "python benchmarks/overhead.py --only-fit", notes))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return blocks


if __name__ == "__main__":
    main()

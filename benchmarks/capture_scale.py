"""Capture at scale (issue #16, part 4): does the capture stay flat as the validation set grows to 100,000 sentences?

Each (validation size, variant) runs in a fresh process: a 1-epoch ``trainer.fit`` of the tiny BERT tagger
(hidden 64, 2 layers, random weights) on CPU, ``limit_train_batches=2`` (batch 32), then one validation of
``N`` sentences in batches of 64. Variants:

  * ``plain``: no callback;
  * ``callback``: ``EmbeddingDriftCallback(sinks=[], reducer="pca", max_tokens=2000)`` (the defaults otherwise:
    the label-stratified sample, the entity view, the whole-set label-issue pass, the projector child process);
  * ``no label issues``: the same with ``label_issues=False`` (a diagnostic: what the whole-set pass costs).

The validation set is synthetic and lazy: a pool of 10,000 generated titles
(``lightning_ner_viz.demo.data.generate_examples``, encoded once per process), and item ``i`` is pool title
``(i * 7919) % 10,000`` with its own ``example_id`` ``i``. So every size shares the same pool in memory (the
plain process's RSS does not grow with ``N``), sizes up to 10,000 have distinct titles, and 100,000 repeats each
title 10 times (as distinct sentences: the sentence ids differ).

Measured per process:

  * the validation loop, from ``on_validation_start`` to ``on_validation_epoch_end`` after the callback's capture
    thread finished the epoch (selection, gather, snapshot assembled and saved: the capture's whole cost); the
    projection and label-issue ranking in the projector child are not in it (they are the end-of-fit wait);
  * the process's peak RSS (``ru_maxrss``; the projector child is another process, its peak ``VmHWM`` is sampled
    every 0.2 s and reported separately);
  * what one validation keeps: the gathered sample (its arrays in memory, handed from the capture to the
    rendering; the sampled tokens; the snapshot's sample files on disk: ``arrays.npz``, ``meta.json``,
    ``entities/``) and, separately, the whole-set label-issue records (``dynamics.npz``, ``label_probs.npy``,
    ``dynamics_texts.json`` in the snapshot, and the root's ``label_issues.csv``).

    python benchmarks/capture_scale.py                  # 1,000, 10,000 and 100,000 sentences, 3 repeats
    python benchmarks/capture_scale.py --quick          # 1,000 and 10,000, 1 repeat
    python benchmarks/capture_scale.py --sizes 1000,50000 --repeats 1
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MiB = 2**20
POOL = 10_000  # distinct generated titles behind every validation set
STRIDE = 7919  # a prime, coprime with POOL: the first POOL items are a permutation of the pool
VAL_BATCH = 64
TRAIN_BATCH = 32
TRAIN_BATCHES = 2
MAX_TOKENS = 2000
VARIANTS = ("plain", "callback", "no label issues")
SAMPLE_FILES = ("arrays.npz", "meta.json", "entities", "cls", "layers.npz", "render_state.json")
WHOLE_SET_FILES = ("dynamics.npz", "label_probs.npy", "dynamics_texts.json")
THREADS: int | None = None


# --------------------------------------------------------------------------- the child process

class PooledTitles:
    """``n`` validation sentences drawn from a fixed pool of encoded titles; item ``i`` has ``example_id`` ``i``."""

    def __init__(self, pool: list[dict[str, Any]], n: int) -> None:
        self.pool, self.n = pool, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {**self.pool[(i * STRIDE) % len(self.pool)], "example_id": i}


def directory_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def nbytes(columns: dict[str, Any]) -> int:
    return sum(int(getattr(v, "nbytes", 0)) for v in columns.values())


def child(n: int, variant: str) -> dict[str, Any]:
    import psutil

    C.quiet()
    C.set_threads(THREADS)
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.datamodule import collate

    proc = psutil.Process()
    pool = C.encoded_rows(POOL)
    counts = [sum(1 for lab in r["labels"] if lab != -100) for r in pool]
    labelled = sum(counts[(i * STRIDE) % POOL] for i in range(n))
    pad = functools.partial(collate, pad_id=C.tokenizer().pad_token_id or 0)
    val_dl = DataLoader(PooledTitles(pool, n), batch_size=VAL_BATCH, shuffle=False, collate_fn=pad)
    train_dl = C.loader(TRAIN_BATCH * TRAIN_BATCHES, batch_size=TRAIN_BATCH, seed=2)
    model = C.build_model("tiny-bert")
    workdir = tempfile.mkdtemp(prefix="ner-viz-capture-scale-")
    clock: dict[str, float] = {}
    gathered_bytes: dict[str, int] = {}

    class Mark(Callback):
        def __init__(self, role: str) -> None:
            self.role = role

        def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.role == "start":
                clock["start"] = time.perf_counter()

        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.role == "stop":
                clock["hooks_done"] = time.perf_counter()
                for cb in trainer.callbacks:
                    if isinstance(cb, EmbeddingDriftCallback):
                        cb._run.capture.wait()  # private: the capture thread's finish is the capture's cost
                clock["stop"] = time.perf_counter()

    cbs: list[Any] = []
    if variant != "plain":
        cb = EmbeddingDriftCallback(sinks=[], reducer="pca", max_tokens=MAX_TOKENS, tokenizer=C.tokenizer(),
                                    label_issues=variant == "callback")
        deliver = cb._run.deliver  # private: measure what the capture hands to the rendering

        def measured(gathered: Any) -> None:
            gathered_bytes["sample"] = (nbytes(gathered.tokens) + sum(nbytes(g) for g in gathered.groups.values())
                                        + int(gathered.sentence_table.nbytes))
            dyn = gathered.dynamics
            gathered_bytes["whole_set"] = 0 if dyn is None else nbytes(dyn.rows) + nbytes(dyn.texts)
            deliver(gathered)

        cb._run.deliver = measured
        cbs = [cb]
    trainer = C.trainer([Mark("start"), *cbs, Mark("stop")], root=workdir, max_epochs=1,
                        limit_train_batches=TRAIN_BATCHES)
    child_peak = [0.0]
    stop = threading.Event()

    def sample_children() -> None:  # the projector child's peak; /proc reads only, every 0.2 s
        while not stop.wait(0.2):
            child_peak[0] = max(child_peak[0], C.child_peak_mib(proc))

    sampler = threading.Thread(target=sample_children, daemon=True)
    sampler.start()
    rss_before = proc.memory_info().rss / MiB
    start = time.perf_counter()
    trainer.fit(model, train_dl, val_dl)
    returned = time.perf_counter()
    child_peak[0] = max(child_peak[0], C.child_peak_mib(proc))
    stop.set()
    sampler.join()
    result: dict[str, Any] = {
        "n": n, "variant": variant, "labelled": labelled,
        "loop": clock["stop"] - clock["start"],
        "hooks": clock["hooks_done"] - clock["start"],  # the training thread's part (before the capture wait)
        "fit": returned - start,
        "end_wait": returned - clock["stop"],
        "rss_before": rss_before,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "child_peak": child_peak[0],
        **{f"gathered_{k}": v for k, v in gathered_bytes.items()},
    }
    root = Path(workdir) / "ner_viz"
    snaps = sorted(p for p in root.glob("epoch=*") if p.is_dir()) if root.is_dir() else []
    if snaps:
        snap = snaps[-1]
        meta = json.loads((snap / "meta.json").read_text(encoding="utf-8"))
        files = {p.name: directory_bytes(p) for p in snap.iterdir()}
        result.update({
            "snapshot": snap.name,
            "files": files,
            "sampled_tokens": len(meta["token"]),
            "sentences_kept": len(meta["sentences"]),
            "entity_rows": (len(json.loads((snap / "entities" / "meta.json").read_text(encoding="utf-8"))["token"])
                            if (snap / "entities" / "meta.json").is_file() else 0),
            "sample_bytes": sum(v for k, v in files.items() if k in SAMPLE_FILES),
            "whole_set_bytes": sum(v for k, v in files.items() if k in WHOLE_SET_FILES),
            "other_bytes": sum(v for k, v in files.items() if k not in SAMPLE_FILES + WHOLE_SET_FILES),
            "csv_bytes": directory_bytes(root / "label_issues.csv") if (root / "label_issues.csv").is_file() else 0,
            "root_files": sorted(p.name for p in root.iterdir()),
        })
        if (snap / "dynamics.npz").is_file():
            import numpy as np

            with np.load(snap / "dynamics.npz", allow_pickle=False) as npz:
                result["dynamics_rows"] = int(len(npz["token_id"]))
            texts = json.loads((snap / "dynamics_texts.json").read_text(encoding="utf-8"))
            result["dynamics_seen"] = int(texts["seen"])
            result["dynamics_sentences"] = len(texts["texts"])
        if (root / "label_issues.csv").is_file():
            with open(root / "label_issues.csv", encoding="utf-8") as f:
                result["csv_rows"] = sum(1 for _ in f) - 1
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def run_child(n: int, variant: str) -> dict[str, Any]:
    return C.run_json_child([sys.executable, __file__, "--child", str(n), variant], THREADS)


# --------------------------------------------------------------------------- the table

def mb(x: float) -> str:
    if x < 1e6:
        return f"{x / 1e3:.0f} kB"
    return f"{x / 1e6:.1f} MB" if x < 1e8 else f"{x / 1e6:.0f} MB"


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 sentences, 1 repeat")
    parser.add_argument("--sizes", default=None, help="comma-separated validation sizes (default 1000,10000,100000)")
    parser.add_argument("--repeats", type=int, default=None, help="processes per size and variant (default 3; --quick 1)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS[1:], default=None,
                        help="variants besides plain (default: callback and no label issues)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each child (default: every core)")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global THREADS
    THREADS = args.threads
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return []
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    repeats = args.repeats or (1 if args.quick else 3)
    variants = ("plain", *(args.variants or VARIANTS[1:]))
    threads = C.set_threads(args.threads)
    cmd = ("python benchmarks/capture_scale.py" + (" --quick" if args.quick else "")
           + (f" --sizes {args.sizes}" if args.sizes else "") + (f" --repeats {args.repeats}" if args.repeats else "")
           + (f" --threads {args.threads}" if args.threads else ""))
    load_before = C.loadavg()
    started = time.perf_counter()
    print(f"capture_scale: sizes {sizes}, {repeats} repeat(s), torch threads {threads}, load {load_before}",
          file=sys.stderr, flush=True)
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for n in sizes:
        for r in range(repeats):
            order = variants[r % len(variants):] + variants[: r % len(variants)]
            for variant in order:
                res = run_child(n, variant)
                results.setdefault((n, variant), []).append(res)
                print(f"  {n:,} {variant} #{r + 1}: loop {res['loop']:.2f} s (hooks {res['hooks']:.2f} s), "
                      f"fit {res['fit']:.1f} s, end wait {res['end_wait']:.1f} s, peak {res['peak']:.0f} MiB "
                      f"(before fit {res['rss_before']:.0f}), child {res['child_peak']:.0f} MiB, "
                      f"files {res.get('files')}, root {res.get('root_files')}, load {C.loadavg()}",
                      file=sys.stderr, flush=True)

    def med(n: int, variant: str, key: str) -> float:
        return C.median([r[key] for r in results.get((n, variant), []) if key in r])

    def ratio(n: int, variant: str) -> float:
        pairs = zip(results.get((n, variant), []), results[(n, "plain")])
        return C.median([v["loop"] / p["loop"] for v, p in pairs])

    has_cb, has_off = "callback" in variants, "no label issues" in variants
    rows = []
    for n in sizes:
        last = results[(n, "callback")][-1] if has_cb else results[(n, variants[-1])][-1]
        loops = [med(n, v, "loop") for v in variants]
        rows.append([
            f"{n:,}",
            f"{last['labelled']:,}",
            " / ".join(C.fmt_s(x) for x in loops),
            " / ".join(f"{n / x:,.0f}" for x in loops),
            " / ".join(f"{ratio(n, v):.2f}x" for v in variants[1:]),
            " / ".join(f"{med(n, v, 'peak'):.0f}" for v in variants) + " MiB",
            " / ".join(f"{med(n, v, 'child_peak'):.0f}" for v in variants[1:]) + " MiB",
            f"{last.get('sampled_tokens', 0):,} + {last.get('entity_rows', 0):,}; "
            f"{mb(last.get('gathered_sample', 0))} / {mb(last.get('sample_bytes', 0))}",
            (f"{last.get('dynamics_rows', 0):,} of {last.get('dynamics_seen', 0):,}; "
             f"{mb(last.get('gathered_whole_set', 0))} / {mb(last.get('whole_set_bytes', 0))} + "
             f"{mb(last.get('csv_bytes', 0))} CSV ({last.get('csv_rows', 0):,} rows)") if has_cb else "-",
        ])
    names, extra = " / ".join(variants), " / ".join(variants[1:])
    md = C.table([
        "val sentences", "labelled tokens", f"val loop ({names})", "sentences/s (same order)",
        f"loop vs plain ({extra})", f"peak RSS, training process ({names})", f"projector process peak ({extra})",
        "sample kept: tokens + entities; gathered / on disk",
        "whole-set label-issue records: rows of labelled; gathered / on disk + CSV",
    ], rows)
    info = C.machine_info()
    small, big = sizes[0], sizes[-1]
    notes = [
        f"Tiny BERT (hidden 64, 2 layers, random weights), CPU, {threads} torch threads, `trainer.fit` of 1 epoch "
        f"with `limit_train_batches={TRAIN_BATCHES}` (batch {TRAIN_BATCH}), then one validation, batch {VAL_BATCH} (the "
        "fit's first: the callback samples its tokens; later epochs would track them); callback: "
        f"`EmbeddingDriftCallback(sinks=[], reducer=\"pca\", max_tokens={MAX_TOKENS})`, `no label issues` the same "
        "with `label_issues=False`. Validation sets are drawn from a pool of 10,000 generated titles (100,000 "
        "repeats each title 10 times, each copy its own sentence id). Each size and variant in a fresh process, "
        f"median of {repeats} process(es). Machine: {info['cpu']}, {info['nproc']} cores, {info['memory']}; "
        f"torch {info['torch']}, lightning {info['lightning']}; load {load_before} before, {C.loadavg()} after "
        f"({C.fmt_s(time.perf_counter() - started)} in all).",
        "Columns: val loop = `on_validation_start` -> `on_validation_epoch_end` once the capture thread has "
        "finished the epoch (selection, gather, snapshot assembled and saved), median; sentences/s = validation "
        "sentences / that time; loop vs plain = median of (variant loop / plain loop), paired by repeat; peak RSS = "
        "`ru_maxrss` of the training process (the projector child not included); projector process peak = the "
        "child's `VmHWM` (it reduces the sample and ranks the label issues); sample kept = the sampled tokens "
        "(bounded by `max_tokens`) + entity-span rows, the bytes of their gathered arrays (vectors, ids, sentence "
        "table) and of the snapshot's sample files (`arrays.npz`, `meta.json`, `entities/`, and `render_state.json`, the "
        "frames' state after the epoch); whole-set label-issue "
        "records = the labelled tokens the whole-set pass keeps (of those seen), the bytes gathered (rows and new "
        "sentences' texts) and on disk (`dynamics.npz`, `label_probs.npy`, `dynamics_texts.json`) + the root's "
        "`label_issues.csv` (its rows: the flagged and lowest-ranked tokens). The sample is the bounded part; the whole-set records grow with the validation set "
        "(up to `label_issues`'s bound, 1,000,000 tokens by default).",
    ]
    if has_cb:
        notes.append(
            f"From {small:,} to {big:,} sentences: sentences/s with the callback "
            f"{C.fmt_pct(med(small, 'callback', 'loop') * big / (med(big, 'callback', 'loop') * small) - 1)}, without "
            f"{C.fmt_pct(med(small, 'plain', 'loop') * big / (med(big, 'plain', 'loop') * small) - 1)}; peak RSS with "
            f"the callback {C.fmt_pct(med(big, 'callback', 'peak') / med(small, 'callback', 'peak') - 1)}, without "
            f"{C.fmt_pct(med(big, 'plain', 'peak') / med(small, 'plain', 'peak') - 1)}"
            + (f", with `label_issues=False` {C.fmt_pct(med(big, 'no label issues', 'peak') / med(small, 'no label issues', 'peak') - 1)}"
               if has_off else "")
            + ". End-of-fit wait (projection, label-issue ranking) with the callback: "
            + ", ".join(f"{C.fmt_s(med(n, 'callback', 'end_wait'))} at {n:,}" for n in sizes) + "."
        )
    return [C.emit("capture-scale", md, cmd, notes)]


if __name__ == "__main__":
    main()

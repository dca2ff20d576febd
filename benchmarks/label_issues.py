"""Label issues: how well the ranking finds flipped labels, and what the whole-set pass costs.

Four parts, each printed as a markdown table (run_all.py copies them into docs/performance.md):

1. **Ranking quality** (``label-issues-quality``): the demo (``lightning-ner-viz demo --no-wandb
   --epochs 3 --label-noise RATE``) flips a share of the validation words' labels and lists the
   flipped tokens in ``flipped_labels.csv``. From the run's snapshot directories
   (``TokenDynamics.load``) we rebuild the history and the ranking exactly as the projector does
   (``rank_label_issues``; checked against ``label_issues.csv``) and measure precision at k
   (k = flipped tokens) and at k/2 of four orderings: cleanlab alone (self-confidence of the
   newest validation, the ``quality`` column), confidence (mean gold probability over the
   validations), mean margin, and the combined score (the CSV's order). Ties are broken by token
   id, as the library does. Also cleanlab's ``find_label_issues`` verdict (the ``flagged`` column):
   how many it flags and how many of those are flipped. The CLI always flips with noise seed 0 and
   seeds the run with 0; other noise seeds run the same demo with ``flip_labels(seed=...)``, other
   model seeds with ``seed_everything(seed)`` (patched in the demo's child process).
2. **Cost of the whole-set pass** (``label-issues-cost``, ``label-issues-micro``): the validation
   loop of a MiniLM-sized tagger (random weights) without the callback, with
   ``EmbeddingDriftCallback(label_issues=False)`` and with ``label_issues=True`` (PCA reducer,
   ``sinks=[]``, background child process), interleaved; the clock runs from ``on_validation_start`` to ``on_validation_epoch_end`` after the
   capture thread has finished the epoch (selection, dynamics, snapshot saved: the capture's whole
   cost). Sentences are 6 generated titles joined (about 50 tokens, 48 labelled). Then
   ``DynamicsCollector.add`` per batch (softmax and ``torchcrf.CRF`` marginals, one thread as in
   the capture thread) against the model's forward per batch, and the once-per-validation finish and save.
3. **Disk** (``label-issues-disk``): bytes per labelled token per validation of the demo run, and
   ``dynamics.npz`` written with zlib level 1 against numpy's level 6.
4. **Ranking time** (``label-issues-ranking``): ``LabelIssueFinder.update`` (history, cleanlab,
   CSV, the sinks' report) on synthetic dynamics of 10k, 100k and 1M tokens, 3 fit validations,
   in a fresh process per size (its peak RSS is reported): this is the projector child's work.

    python benchmarks/label_issues.py            # everything (about 7.5 min on 2 cores)
    python benchmarks/label_issues.py --quick    # one demo, a short cost run, 10k/100k ranking (about 75 s)
    python benchmarks/label_issues.py --parts quality disk --keep DIR   # and keep the demo runs
"""

from __future__ import annotations

import argparse
import csv
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

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve()
PARTS = ("quality", "cost", "micro", "disk", "ranking")


# --------------------------------------------------------------------------- 1. ranking quality

def demo_command(out: str, rate: float) -> list[str]:
    return ["demo", "--out", out, "--no-wandb", "--label-noise", str(rate), "--epochs", "3"]


def demo_child(out: str, rate: float, seed: int, model_seed: int) -> None:
    """The demo, with the validation labels flipped by ``flip_labels(seed=seed)`` and the run seeded with
    ``seed_everything(model_seed)`` (the CLI uses 0 for both)."""
    import lightning.pytorch as pl

    import lightning_ner_viz.demo.noise as noise
    from lightning_ner_viz.cli import main as cli

    flip, seed_everything = noise.flip_labels, pl.seed_everything

    def seeded(examples: Any, rate: float, label_names: Any, **_: Any) -> Any:
        return flip(examples, rate, label_names, seed=seed)

    noise.flip_labels = seeded  # run_demo imports it from the module when it runs
    pl.seed_everything = lambda _seed=None, **kwargs: seed_everything(model_seed, **kwargs)
    raise SystemExit(cli(demo_command(out, rate)))


def run_demo(out: Path, rate: float, seed: int, model_seed: int) -> float:
    """Run the demo in a fresh process (its output goes to ``out/demo.log``); returns its wall time."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE), "--demo-child", str(out), str(rate), str(seed), str(model_seed)]
    start = time.perf_counter()
    with (out / "demo.log").open("w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=C.REPO)
    if rc != 0:
        raise SystemExit(f"the demo failed (exit {rc}); see {out / 'demo.log'}")
    return time.perf_counter() - start


def snapshot_dirs(root: Path) -> list[Path]:
    from lightning_ner_viz.analysis.token_dynamics import TokenDynamics

    return sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("epoch=") and TokenDynamics.exists(d))


def ids_of(path: Path) -> np.ndarray:
    from lightning_ner_viz.snapshot import make_token_id

    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return make_token_id(np.array([int(r["sentence_id"]) for r in rows], np.int64),
                         np.array([int(r["position"]) for r in rows], np.int64))


def ranking_quality(out: Path) -> dict[str, Any]:
    """P@k and P@k/2 of the four orderings, and cleanlab's verdict, for one demo run in ``out``."""
    from lightning_ner_viz.analysis.label_issues import precision_at_k, rank_label_issues
    from lightning_ner_viz.analysis.token_dynamics import DynamicsHistory, TokenDynamics

    root = out / "ner_viz"
    dirs = snapshot_dirs(root)
    history = DynamicsHistory()
    for d in dirs[:-1]:
        history.add(d.name, TokenDynamics.load(d, probs=False))
    newest = TokenDynamics.load(dirs[-1])
    history.add(dirs[-1].name, newest)
    ranking = rank_label_issues(history, newest)
    wrong = ids_of(out / "flipped_labels.csv")
    k = len(wrong)
    covered = int(np.isin(wrong, ranking.token_id).sum())
    listed = ids_of(root / "label_issues.csv")  # the projector's own ranking, for a check
    csv_matches = bool(np.array_equal(listed, ranking.token_id[: len(listed)]))

    def order(key: np.ndarray) -> np.ndarray:
        return ranking.token_id[np.lexsort((ranking.token_id, key))]

    orders = {"cleanlab": order(ranking.quality), "confidence": order(ranking.confidence),
              "margin": order(ranking.margin), "combined": ranking.token_id}
    flipped = np.isin(ranking.token_id, wrong)
    flagged = ranking.flagged
    return {
        "k": k, "tokens": len(ranking), "covered": covered, "validations": len(history.names),
        "csv_rows": len(listed), "csv_matches": csv_matches, "csv_covers": int(np.isin(wrong, listed).sum()),
        "p_k": {n: precision_at_k(o, wrong) for n, o in orders.items()},
        "p_k2": {n: precision_at_k(o, wrong, k // 2) for n, o in orders.items()},
        "flagged": int(flagged.sum()), "flagged_true": int((flagged & flipped).sum()),
    }


def part_quality(runs: list[tuple[float, int, int]], workdir: Path) -> tuple[list[str], dict[tuple[float, int, int], Path]]:
    rows, verdict, outs, notes, scores = [], [], {}, [], []
    for rate, seed, model_seed in runs:
        out = workdir / f"demo-{rate}-{seed}-{model_seed}"
        print(f"  label_issues: demo, {rate:.0%} noise, noise seed {seed}, model seed {model_seed} (load {C.loadavg()})",
              file=sys.stderr, flush=True)
        seconds = run_demo(out, rate, seed, model_seed)
        q = ranking_quality(out)
        scores.append(q)
        outs[(rate, seed, model_seed)] = out
        best = max(q["p_k"].values())
        rows.append([f"{rate:.0%}", str(seed), str(model_seed), str(q["k"]), f"{q['tokens']:,}",
                     *[("**{:.3f}**" if q["p_k"][n] == best else "{:.3f}").format(q["p_k"][n])
                       for n in ("cleanlab", "confidence", "margin", "combined")],
                     *[f"{q['p_k2'][n]:.3f}" for n in ("cleanlab", "confidence", "margin", "combined")]])
        precision = q["flagged_true"] / q["flagged"] if q["flagged"] else float("nan")
        verdict.append([f"{rate:.0%}", str(seed), str(model_seed), str(q["k"]), str(q["flagged"]), str(q["flagged_true"]),
                        f"{precision:.3f}", f"{q['flagged_true'] / q['k']:.3f}"])
        q["seconds"] = seconds
        if q["covered"] != q["k"] or not q["csv_matches"] or q["csv_covers"] != q["k"] or q["validations"] != 3:
            notes.append(f"{rate:.0%} / seeds {seed}, {model_seed}: {q['covered']} of {q['k']} flipped tokens ranked, "
                         f"{q['csv_covers']} in label_issues.csv, {q['validations']} validations; the CSV "
                         f"{'matches' if q['csv_matches'] else 'DIFFERS FROM'} the recomputed order.")
    header = ["noise", "noise seed", "model seed", "flipped (k)", "tokens ranked", "P@k cleanlab", "P@k confidence",
              "P@k margin", "P@k combined", "P@k/2 cleanlab", "P@k/2 confidence", "P@k/2 margin", "P@k/2 combined"]
    cmd = "python benchmarks/label_issues.py --parts quality" + ("" if len(runs) > 1 else " --quick")
    seeds0 = "lightning-ner-viz demo --out DIR --no-wandb --label-noise RATE --epochs 3"
    blocks = [C.emit("label-issues-quality", C.table(header, rows), cmd, [
        f"The demo (`{seeds0}`: tiny BERT, 2,500 generated titles, 500 validation sentences, 3 epochs) with RATE "
        "of the validation words relabelled. Noise seed 0 and model seed 0 are the CLI's; other noise seeds flip "
        "with `flip_labels(seed=...)`, other model seeds replace the demo's `seed_everything(0)` (weights, "
        "shuffling). Only validation labels are flipped, so runs of the same model seed train the same model "
        "(identical probabilities): they differ only in which tokens are flipped. k = flipped tokens (a flipped "
        "word's subwords all count). Orderings, lowest first, ties by token id: **cleanlab** = self-confidence of the newest validation (`quality`), "
        "**confidence** = mean gold probability over the 3 validations, **margin** = mean (gold - best other "
        "probability), **combined** = `combined_score` (the CSV's order). Bold: the best P@k of the row.",
        summary(scores), *(notes or [
            f"In every run all flipped tokens were ranked (3 validations) and label_issues.csv "
            f"({min(q['csv_rows'] for q in scores):,}+ rows, every flipped token among them) lists exactly the "
            f"recomputed combined order. Each demo took {min(q['seconds'] for q in scores):.0f}-"
            f"{max(q['seconds'] for q in scores):.0f} s; load {C.loadavg()} at the end."])])]
    blocks.append(C.emit("label-issues-flagged", C.table(
        ["noise", "noise seed", "model seed", "flipped", "flagged by cleanlab", "flagged and flipped", "precision", "recall"],
        verdict), cmd, ["cleanlab's `find_label_issues` verdict on the newest validation (the CSV's `flagged` "
                        "column); precision = flagged and flipped / flagged, recall = flagged and flipped / flipped."]))
    return blocks, outs


def summary(scores: list[dict[str, Any]]) -> str:
    """Combined against cleanlab alone over the runs: wins, ties, losses, and the mean P@k of each ordering."""
    diff = [q["p_k"]["combined"] - q["p_k"]["cleanlab"] for q in scores]
    tokens = [round(d * q["k"]) for d, q in zip(diff, scores)]
    means = ", ".join(f"{n} {np.mean([q['p_k'][n] for q in scores]):.4f}"
                      for n in ("cleanlab", "confidence", "margin", "combined"))
    return (f"Combined vs cleanlab alone at k, over {len(scores)} runs: better in {sum(d > 0 for d in diff)}, equal in "
            f"{sum(d == 0 for d in diff)}, worse in {sum(d < 0 for d in diff)} (difference in true flips among the top "
            f"k: {', '.join(f'{t:+d}' for t in tokens)}). Mean P@k: {means}.")


# --------------------------------------------------------------------------- 3. disk

def part_disk(out: Path, label: str) -> list[str]:
    from lightning_ner_viz.analysis.token_dynamics import DYNAMICS_FILE, PROBS_FILE, TEXTS_FILE, TokenDynamics

    dirs = snapshot_dirs(out / "ner_viz")
    n = [len(TokenDynamics.load(d, probs=False)) for d in dirs]
    e = len(dirs)
    size = {f: [(d / f).stat().st_size if (d / f).exists() else 0 for d in dirs]
            for f in (DYNAMICS_FILE, TEXTS_FILE, PROBS_FILE)}
    snapshot_total = [sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) for d in dirs]
    tokens = int(np.mean(n))
    per_val = {f: sum(v) / e / tokens for f, v in size.items()}
    csv_size = (out / "ner_viz" / "label_issues.csv").stat().st_size
    rows = [
        [f"`{DYNAMICS_FILE}`", " / ".join(f"{s:,}" for s in size[DYNAMICS_FILE]), f"{per_val[DYNAMICS_FILE]:.1f}",
         "every validation: token id, gold, pred, gold and best-other probability (compressed)"],
        [f"`{TEXTS_FILE}`", " / ".join(f"{s:,}" for s in size[TEXTS_FILE]), f"{per_val[TEXTS_FILE]:.1f}",
         f"sentence texts, written once (the first validation) and amortised over {e}"],
        [f"`{PROBS_FILE}`", " / ".join(f"{s:,}" for s in size[PROBS_FILE]),
         f"{size[PROBS_FILE][-1] / tokens:.1f} (newest only)",
         "float16 probability rows; only the newest validation keeps them"],
        ["**all three**", " / ".join(f"{sum(size[f][i] for f in size):,}" for i in range(e)),
         f"**{per_val[DYNAMICS_FILE] + per_val[TEXTS_FILE]:.1f}** per validation + "
         f"{size[PROBS_FILE][-1] / tokens:.1f} once", ""],
        ["whole snapshot directory", " / ".join(f"{s:,}" for s in snapshot_total), "",
         "for scale: the sampled views, render state, metrics, entities"],
        ["`label_issues.csv`", f"{csv_size:,}", "", "in the snapshot root, rewritten each validation"],
    ]
    level1, level6, size1, size6 = zlib_levels(dirs[-1])
    return [C.emit("label-issues-disk", C.table(["file", "bytes per validation (epochs 0 / 1 / ... )",
                                                  "bytes per labelled token", "what"], rows),
                   "python benchmarks/label_issues.py --parts disk",
                   [f"From the demo run with {label}: {tokens:,} labelled validation tokens, {e} validations, "
                    f"11 labels.",
                    f"Writing the newest `{DYNAMICS_FILE}` again (median of 30): `np.savez_compressed` (zlib level 6) "
                    f"{level6 * 1000:.2f} ms, {size6:,} bytes; the same arrays with zlib level 1 {level1 * 1000:.2f} ms, "
                    f"{size1:,} bytes ({size1 / size6 - 1:+.0%})."])]


def zlib_levels(directory: Path) -> tuple[float, float, int, int]:
    """Seconds and bytes to write a snapshot's dynamics arrays as .npz with zlib level 1, and as numpy does (6)."""
    import io
    import zipfile

    from lightning_ner_viz.analysis.token_dynamics import DYNAMICS_FILE

    with np.load(directory / DYNAMICS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    tmp = Path(tempfile.mkdtemp(prefix="ner-viz-li-zlib-"))

    def level1() -> None:
        with zipfile.ZipFile(tmp / "level1.npz", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for name, value in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, value)
                z.writestr(name + ".npy", buf.getvalue())

    try:
        t1 = C.median([C.timed(level1) for _ in range(30)])
        t6 = C.median([C.timed(lambda: np.savez_compressed(tmp / "level6.npz", **arrays)) for _ in range(30)])
        return t1, t6, (tmp / "level1.npz").stat().st_size, (tmp / "level6.npz").stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- 2. cost of the whole-set pass

N_TITLES = 6  # generated titles joined into one validation sentence: about 50 tokens


def long_rows(n_sentences: int) -> list[dict[str, list[int]]]:
    from lightning_ner_viz.demo.data import LABEL_NAMES, Example, generate_examples
    from lightning_ner_viz.demo.datamodule import encode

    titles = generate_examples(n_sentences * N_TITLES, seed=1)
    joined = [Example(sum((t.words for t in titles[i:i + N_TITLES]), []), sum((t.labels for t in titles[i:i + N_TITLES]), []))
              for i in range(0, len(titles), N_TITLES)]
    return encode(joined, C.tokenizer(), LABEL_NAMES)  # max_length=64


def long_loader(n_sentences: int, batch_size: int = 32) -> Any:
    import functools

    from torch.utils.data import DataLoader

    from lightning_ner_viz.demo.datamodule import collate

    return DataLoader(long_rows(n_sentences), batch_size=batch_size, shuffle=False,
                      collate_fn=functools.partial(collate, pad_id=C.tokenizer().pad_token_id or 0))


def part_cost(n_sentences: int, repeats: int, workdir: Path, threads: int) -> list[str]:
    import lightning_ner_viz.analysis.token_dynamics as token_dynamics
    import lightning_ner_viz.capture.dynamics as dynamics
    from lightning_ner_viz import EmbeddingDriftCallback

    from overhead import Mark as LoopMark  # the validation-loop clock of benchmarks/overhead.py

    class Mark(LoopMark):
        """overhead.py's clock (it waits for the capture thread), plus the end of the last batch (the tail)."""

        def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
            if self.role == "stop":
                self.clock["last batch"] = time.perf_counter()

    spent: dict[str, float] = {}  # the dynamics' own work in the capture thread, per validation

    for owner, name in ((dynamics.DynamicsCollector, "add"), (dynamics.DynamicsCollector, "finish"),
                        (token_dynamics.TokenDynamics, "save")):
        setattr(owner, name, C.adding_time(spent, name, getattr(owner, name)))

    model = C.build_model("minilm")
    dl = long_loader(n_sentences)
    rows = long_rows(n_sentences)
    labelled = sum(sum(1 for lab in r["labels"] if lab != -100) for r in rows)
    lengths = [len(r["input_ids"]) for r in rows]
    variants = ("plain", "label_issues=False", "label_issues=True")
    clock: dict[str, float] = {}
    trainers = {}
    for name in variants:
        cbs = [] if name == "plain" else [EmbeddingDriftCallback(
            sinks=[], reducer="pca", max_tokens=2000, tokenizer=C.tokenizer(), save_dir=str(workdir / f"cost-{name}"),
            label_issues=name.endswith("True"))]
        trainers[name] = C.trainer([Mark(clock, "start"), *cbs, Mark(clock, "stop")], root=str(workdir / "trainer"))
    for name in variants:  # warm-up: a whole first validation fixes the tracked tokens and keeps the texts
        print(f"  label_issues: cost warm-up {name} (load {C.loadavg()})", file=sys.stderr, flush=True)
        trainers[name].validate(model, dataloaders=dl, verbose=False)
    loop: dict[str, list[float]] = {n: [] for n in variants}
    tail: dict[str, list[float]] = {n: [] for n in variants}
    wall: dict[str, list[float]] = {n: [] for n in variants}
    work: list[dict[str, float]] = []
    loads = [C.loadavg()]
    for r in range(repeats):
        for name in variants[r % 3:] + variants[: r % 3]:
            clock.clear()
            spent.clear()
            t0 = time.perf_counter()
            trainers[name].validate(model, dataloaders=dl, verbose=False)
            wall[name].append(time.perf_counter() - t0)
            loop[name].append(clock["stop"] - clock["start"])
            tail[name].append(clock["stop"] - clock["last batch"])
            if name == "label_issues=True":
                work.append(dict(spent))
        loads.append(C.loadavg())
        print(f"  label_issues: cost repeat {r + 1}/{repeats}: " + ", ".join(f"{n}={loop[n][-1]:.3f}s" for n in variants)
              + f" load {loads[-1]}", file=sys.stderr, flush=True)

    def paired(times: dict[str, list[float]], a: str, b: str) -> float:
        return C.median([x / y - 1 for x, y in zip(times[a], times[b])])

    spread = [x / y - 1 for x, y in zip(loop["label_issues=True"], loop["label_issues=False"])]
    rows_md = []
    for name in variants:
        rows_md.append([name, str(repeats), C.fmt_s(C.median(loop[name])), f"{min(loop[name]):.3f} / {max(loop[name]):.3f}",
                        C.fmt_s(C.median(tail[name])),
                        "-" if name == "plain" else C.fmt_pct(paired(loop, name, "plain")),
                        C.fmt_pct(paired(loop, name, "label_issues=False")) if name == "label_issues=True" else "-",
                        C.fmt_s(C.median(wall[name]))])
    extra = paired(loop, "label_issues=True", "label_issues=False")
    best = min(loop["label_issues=True"]) / min(loop["label_issues=False"]) - 1
    own = {k: C.median([w.get(k, 0.0) for w in work]) for k in ("add", "finish", "save")}
    base = C.median(loop["label_issues=False"])
    tail_extra = C.median([a - b for a, b in zip(tail["label_issues=True"], tail["label_issues=False"])])
    notes = [
        f"MiniLM-sized tagger (6 x 384, 12 heads, random weights), {n_sentences} validation sentences of "
        f"{N_TITLES} generated titles each ({min(lengths)}-{max(lengths)} tokens, mean {np.mean(lengths):.0f}; "
        f"{labelled:,} labelled tokens), batch 32, torch threads {threads}, "
        "`EmbeddingDriftCallback(sinks=[], reducer=\"pca\", max_tokens=2000)` in steady state (a first "
        "validation fixed the tracked tokens), variants interleaved with a rotating order. Val loop: "
        "`on_validation_start` to `on_validation_epoch_end` after the capture thread finished the epoch "
        "(selection, dynamics, snapshot saved); tail: from the last batch's `on_validation_batch_end` to that "
        "point (the capture thread's finish and the snapshot save); `validate()` wall also waits for the "
        "projector child (PCA and the analyses).",
        f"Whole-set pass = label_issues=True vs label_issues=False of the same repeat: median {C.fmt_pct(extra)} "
        f"(per repeat {', '.join(C.fmt_pct(s) for s in spread)}); target < 1%: "
        + ("met" if extra < 0.01 else "MISSED") + f"; fastest loop against fastest loop: {C.fmt_pct(best)}. "
        f"The dynamics' own work per validation (median, timed inside the capture thread): `add` "
        f"{own['add'] * 1000:.1f} ms over {len(dl)} batches, `finish` {own['finish'] * 1000:.1f} ms, "
        f"`TokenDynamics.save` {own['save'] * 1000:.1f} ms: {sum(own.values()) * 1000:.0f} ms in all, "
        f"{sum(own.values()) / base * 100:.2f}% of the label_issues=False loop; the tail grew by "
        f"{tail_extra * 1000:.0f} ms (median of paired repeats). Load average before / after: {loads[0]} / {loads[-1]}.",
    ]
    return [C.emit("label-issues-cost", C.table(
        ["variant", "repeats", "val loop (median)", "min / max s", "tail (median)", "vs plain",
         "vs label_issues=False", "validate() wall"], rows_md),
        f"python benchmarks/label_issues.py --parts cost --repeats {repeats} --sentences {n_sentences}", notes)]


def part_micro(repeats: int) -> list[str]:
    import torch
    from torchcrf import CRF

    from lightning_ner_viz.capture.batch import adapt_batch
    from lightning_ner_viz.capture.dynamics import DynamicsCollector
    from lightning_ner_viz.capture.predictions import predict_labels
    from lightning_ner_viz.demo.data import LABEL_NAMES

    n_labels = len(LABEL_NAMES)
    dl = long_loader(32 * 4)
    batches = list(dl)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    crf = CRF(n_labels, batch_first=True)
    rows: list[list[str]] = []
    forwards: dict[str, float] = {}
    for model_name in ("tiny-bert", "minilm"):
        model = C.build_model(model_name)
        emissions = []
        fwd = []
        with torch.no_grad():
            model(batches[0])
            for _ in range(repeats):
                for b in batches:
                    t0 = time.perf_counter()
                    model(b)
                    fwd.append(time.perf_counter() - t0)
            emissions = [model(b).logits for b in batches]
        forwards[model_name] = C.median(fwd)
        if model_name != "minilm":
            continue
        forward = forwards["minilm"]
        for source, module in (("softmax", None), ("CRF marginals", crf)):
            for first in (False, True):
                times = []
                torch.set_num_threads(1)  # as in the capture thread (tensor_ops.one_thread)
                try:
                    with torch.no_grad():
                        for _ in range(repeats):
                            seen: set[int] = set() if first else set(range(len(batches) * 32))
                            collector = DynamicsCollector(n_labels, module, 1_000_000, 0, seen)
                            for i, b in enumerate(batches):
                                tb = adapt_batch(b)
                                pred = predict_labels(emissions[i], tb.attention_mask, module)
                                ex = torch.arange(i * 32, i * 32 + len(b["input_ids"]))
                                t0 = time.perf_counter()
                                collector.add(tb, emissions[i], pred, tb.valid, ex)
                                times.append(time.perf_counter() - t0)
                finally:
                    torch.set_num_threads(threads)
                per = C.median(times)
                what = "first validation (keeps the texts)" if first else "later validations"
                rows.append([f"`DynamicsCollector.add`, {source}, {what}", "1", f"{per * 1000:.2f} ms",
                             f"{per / forward * 100:.2f}%", f"{per / forwards['tiny-bert'] * 100:.1f}%"])
        # the per-validation finish: merge, sort, and the three files
        from lightning_ner_viz.analysis.token_dynamics import TokenDynamics

        n_val = 320
        big = list(long_loader(n_val))
        logits = [torch.randn(len(b["input_ids"]), b["input_ids"].shape[1], n_labels) for b in big]
        fin, sav = [], []
        torch.set_num_threads(1)
        try:
            for _ in range(repeats):
                collector = DynamicsCollector(n_labels, None, 1_000_000, 0, set(range(n_val)))
                for i, b in enumerate(big):
                    tb = adapt_batch(b)
                    collector.add(tb, logits[i], logits[i].argmax(-1), tb.valid, torch.arange(i * 32, i * 32 + len(tb.labels)))
                t0 = time.perf_counter()
                got = collector.finish(torch.device("cpu"))
                fin.append(time.perf_counter() - t0)
                assert got is not None
                cols = {k: v.numpy() for k, v in got[0].items()}
                record = TokenDynamics(**cols, source="softmax", seen=got[2])
                tmp = Path(tempfile.mkdtemp(prefix="ner-viz-li-save-"))
                t0 = time.perf_counter()
                record.save(tmp)
                sav.append(time.perf_counter() - t0)
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            torch.set_num_threads(threads)
        n_tok = len(record)
        n_batches = len(big)
        for what, t in ((f"`DynamicsCollector.finish` ({n_val} sentences, {n_tok:,} tokens), once per validation", fin),
                        (f"`TokenDynamics.save` ({n_tok:,} tokens), once per validation", sav)):
            per = C.median(t)
            rows.append([what, "1", f"{per * 1000:.2f} ms", f"{per / (n_batches * forward) * 100:.2f}% of the loop*",
                         f"{per / (n_batches * forwards['tiny-bert']) * 100:.1f}% of the loop*"])
    rows = [["model forward (no grad), per batch", str(threads), f"{forwards['minilm'] * 1000:.1f} ms", "-", "-"],
            ["tiny BERT forward (no grad), per batch", str(threads), f"{forwards['tiny-bert'] * 1000:.1f} ms", "-", "-"],
            *rows]
    labelled = sum(int((b["labels"] != -100).sum()) for b in batches) / len(batches)
    seq = np.mean([b["input_ids"].shape[1] for b in batches])
    return [C.emit("label-issues-micro", C.table(["work", "torch threads", "median", "share of MiniLM-sized forward",
                                                  "share of tiny-BERT forward"], rows),
                   f"python benchmarks/label_issues.py --parts micro --repeats {repeats}",
                   [f"Batches of 32 sentences of {N_TITLES} joined titles (padded length {seq:.0f} on average, "
                    f"{labelled:.0f} labelled tokens per batch), {n_labels} labels; median over {len(batches)} batches "
                    f"x {repeats} repeats. `add` runs in the capture thread with one torch thread (as the callback "
                    "does); shares are of the forward on all threads (tiny BERT: hidden 64, 2 layers). \\* once per "
                    "validation, as a share of a 320-sentence validation loop (10 forwards). The CRF is `torchcrf.CRF` "
                    "with its random initial transitions; the prediction (Viterbi) is not counted (the capture "
                    f"computes it with or without label issues). Load {C.loadavg()}."])]


# --------------------------------------------------------------------------- 4. ranking time

RANK_LENGTH = 20  # labelled tokens per synthetic sentence
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def ranking_write(n: int, root: Path) -> None:
    """Three fit validations of ``n`` synthetic tokens (5% given labels wrong), as tests/label_issue_data.py."""
    from lightning_ner_viz.analysis.token_dynamics import SentenceText, TokenDynamics
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.snapshot import Snapshot, make_token_id
    from lightning_ner_viz.store import SnapshotStore

    k = len(LABEL_NAMES)
    rng = np.random.default_rng(0)
    sid = np.arange(n) // RANK_LENGTH
    ids = make_token_id(sid, np.arange(n) % RANK_LENGTH + 1)  # position 0 is [CLS]
    truth = rng.integers(0, k, n)
    given = truth.copy()
    wrong = rng.random(n) < 0.05
    given[wrong] = (truth[wrong] + rng.integers(1, k, int(wrong.sum()))) % k
    texts = {s: SentenceText(["[CLS]", *[f"w{(s * 7 + p) % 5003}" for p in range(RANK_LENGTH)], "[SEP]"],
                             [-1, *range(RANK_LENGTH), -2 - RANK_LENGTH]) for s in range(int(sid[-1]) + 1)}
    store = SnapshotStore(root)
    for epoch in range(3):
        logits = rng.normal(size=(n, k)).astype(np.float32)
        logits[np.arange(n), truth] += 1.5 + 2.0 * epoch
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        other = probs.copy()
        other[np.arange(n), given] = -1
        record = TokenDynamics(token_id=ids, gold=given, pred=probs.argmax(1), gold_prob=probs[np.arange(n), given],
                               other_prob=other.max(1), probs=probs.astype(np.float16), source="softmax", seen=n,
                               texts=texts if epoch == 0 else {})
        sample = ids[:: max(1, n // 2000)][:2000]
        m = len(sample)
        snap = Snapshot(epoch=epoch, step=10 * (epoch + 1), token_id=sample, sentence_id=sample >> 20,
                        position=sample & ((1 << 20) - 1), token=["t"] * m, word=["w"] * m, gold=np.zeros(m, np.int64),
                        pred=np.zeros(m, np.int64), views={"hidden": np.zeros((m, 2), np.float32)},
                        label_names=list(LABEL_NAMES))
        snap.dynamics = record
        store.save(snap)
    np.save(root / "wrong.npy", ids[wrong])


def peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss`` on Linux, it is not inherited across ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ranking_update(root: Path, repeats: int) -> dict[str, Any]:
    """Time LabelIssueFinder.update on the three saved validations; the newest one ``repeats`` times."""
    import lightning_ner_viz.analysis.label_issue_report as report_mod
    import lightning_ner_viz.analysis.label_issues as issues_mod
    from lightning_ner_viz.analysis.label_issue_report import LabelIssueFinder
    from lightning_ner_viz.analysis.label_issues import precision_at_k
    from lightning_ner_viz.analysis.token_dynamics import TokenDynamics
    from lightning_ner_viz.store import SnapshotStore

    import cleanlab.rank  # noqa: F401  (imports: not counted, the projector child has them after its first epoch)
    import cleanlab.token_classification.filter  # noqa: F401,I001

    rss_base = peak_rss_mib()
    stages: dict[str, float] = {}

    issues_mod.cleanlab_scores = C.adding_time(stages, "cleanlab", issues_mod.cleanlab_scores)
    report_mod.rank_label_issues = C.adding_time(stages, "rank (cleanlab + dynamics + sort)", report_mod.rank_label_issues)
    report_mod._rows = C.adding_time(stages, "rows with text (CSV + top 50)", report_mod._rows)
    report_mod.write_csv = C.adding_time(stages, "write CSV", report_mod.write_csv)
    report_mod.map_points = C.adding_time(stages, "data map points", report_mod.map_points)
    load = TokenDynamics.load.__func__
    TokenDynamics.load = classmethod(C.adding_time(stages, "load records", load))  # type: ignore[method-assign]

    store = SnapshotStore(root)
    keys = sorted(store.keys(), key=lambda k: k.order())
    snaps = [store.load(k.name) for k in keys]
    # as in training: one finder, one update per validation; the peak RSS is read after this pass
    finder = LabelIssueFinder(store)
    first, newest, per_stage = [], [], []
    flagged = []
    for snap in snaps:
        stages.clear()
        t0 = time.perf_counter()
        report = finder.update(snap)
        first.append(time.perf_counter() - t0)
        flagged.append(report.flagged if report is not None else -1)
    newest.append(first.pop())
    per_stage.append(dict(stages))
    rss_peak = peak_rss_mib()
    last = finder.last
    del finder
    for _ in range(repeats - 1):  # again: the earlier validations' rows are gone, so they are only folded in
        finder = LabelIssueFinder(store)
        for snap in snaps[:-1]:
            finder.update(snap)
        stages.clear()
        t0 = time.perf_counter()
        finder.update(snaps[-1])
        newest.append(time.perf_counter() - t0)
        per_stage.append(dict(stages))
        del finder
    stages.clear()
    t0 = time.perf_counter()
    LabelIssueFinder(store).update(snaps[-1])  # a resume: the history rebuilt from disk
    resumed = time.perf_counter() - t0
    wrong = np.load(root / "wrong.npy")
    assert report is not None
    return {"first": first, "newest": C.median(newest), "newest_all": newest, "resumed": resumed,
            "stages": {k: C.median([s.get(k, 0.0) for s in per_stage]) for k in per_stage[0]},
            "flagged": flagged, "tokens": report.tokens, "wrong": len(wrong),
            "p_at_k": precision_at_k(last.token_id, wrong) if last is not None else float("nan"),
            "csv_bytes": (root / "label_issues.csv").stat().st_size, "rss_base_mib": rss_base, "rss_peak_mib": rss_peak}


def part_ranking(sizes: list[int], repeats: int, workdir: Path) -> list[str]:
    rows, stage_rows, notes = [], [], []
    for n in sizes:
        root = workdir / f"ranking-{n}"
        reps = repeats if n < 1_000_000 else min(repeats, 3)
        print(f"  label_issues: ranking {n:,} tokens, writing (load {C.loadavg()})", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(HERE), "--ranking-child", "write", str(n), str(root)], check=True, cwd=C.REPO)
        written = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"  label_issues: ranking {n:,} tokens, updating (load {C.loadavg()})", file=sys.stderr, flush=True)
        env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}  # as the projector child
        out = subprocess.run([sys.executable, str(HERE), "--ranking-child", "update", str(reps), str(root)],
                             check=True, cwd=C.REPO, capture_output=True, text=True, env=env).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append([f"{n:,}", str(reps), " / ".join(C.fmt_s(x) for x in r["first"]), f"**{C.fmt_s(r['newest'])}**",
                     C.fmt_s(r["resumed"]), " / ".join(f"{x:,}" for x in r["flagged"]), f"{r['csv_bytes'] / 1e6:.1f} MB",
                     f"{r['rss_base_mib']:.0f} -> {r['rss_peak_mib']:.0f} MiB"])
        stage_rows += [[f"{n:,}", k, C.fmt_s(v)] for k, v in r["stages"].items()]
        notes.append(f"{n:,} tokens: P@k of the combined ranking {r['p_at_k']:.3f} (k = {r['wrong']:,}); "
                     f"writing the 3 snapshots took {written:.0f} s (a fresh process), {size / 1e6:.0f} MB on disk; "
                     f"newest-validation runs {', '.join(f'{x:.2f}' for x in r['newest_all'])} s.")
        shutil.rmtree(root, ignore_errors=True)
    cmd = f"python benchmarks/label_issues.py --parts ranking --sizes {','.join(map(str, sizes))} --repeats {repeats}"
    blocks = [C.emit("label-issues-ranking", C.table(
        ["tokens", "repeats", "validations 1 / 2", "validation 3 (median)", "validation 3 after a resume",
         "flagged (validations 1 / 2 / 3)", "CSV (validation 3)", "peak RSS (imports -> after the 3 updates)"], rows), cmd, [
        f"`LabelIssueFinder.update` on synthetic dynamics: sentences of {RANK_LENGTH} labelled tokens, 11 labels, "
        "5% of the given labels wrong, 3 fit validations (the model learns the truth: logit +1.5, +3.5, +5.5), "
        "text kept for every sentence. One fresh process per size, with one thread (`OMP/MKL/OPENBLAS/NUMBA_NUM_THREADS=1`, "
        "as the projector child) and cleanlab imported before the clock starts; not at nice 19, so this is "
        "the work, not how long an idle-priority child takes on a busy machine. "
        "Each update folds in the record, ranks, rewrites the CSV (the lowest 10%, at least 1,000 rows, and every "
        "flagged token: early validations, where the model is still weak, flag many) and builds the sinks' report; "
        "validation 3's is repeated (median). "
        "'After a resume' rebuilds the history of the 2 earlier validations from disk first.", *notes])]
    blocks.append(C.emit("label-issues-ranking-stages", C.table(["tokens", "stage of validation 3's update", "median"],
                                                              stage_rows), cmd,
                         ["Stages overlap: `rank` includes `cleanlab` (its `get_label_quality_scores` and "
                          "`find_label_issues`); the rows with text are built for the CSV and for the top 50."]))
    return blocks


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one demo (5%%), 128 sentences x 5 repeats, 10k and 100k ranking (< 2 min)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=None, help="repeats: cost 15 (--quick 5), micro 5 (3), ranking 5 (2; at most 3 for 1M tokens)")
    parser.add_argument("--sentences", type=int, default=None, help="cost: validation sentences (default 320)")
    parser.add_argument("--sizes", default=None, help="ranking: comma-separated token counts (default 10k,100k,1M)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    parser.add_argument("--keep", default=None, help="keep the demo runs and snapshots in this directory")
    parser.add_argument("--demo-child", nargs=4, metavar=("OUT", "RATE", "SEED", "MODEL_SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--ranking-child", nargs=3, metavar=("WHAT", "N", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.demo_child:
        out, rate, seed, model_seed = args.demo_child
        demo_child(out, float(rate), int(seed), int(model_seed))
    if args.ranking_child:
        what, n, root = args.ranking_child
        if what == "write":
            ranking_write(int(n), Path(root))
        else:
            print(json.dumps(ranking_update(Path(root), int(n))))
        return []
    threads = C.set_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 15)
    sentences = args.sentences or (128 if args.quick else 320)
    sizes = [int(float(s)) for s in (args.sizes or ("10000,100000" if args.quick else "10000,100000,1000000")).split(",")]
    runs = [(0.05, 0, 0)] if args.quick else [(0.05, 0, 0), (0.05, 1, 0), (0.05, 2, 0), (0.10, 0, 0), (0.10, 1, 0),
                                              (0.20, 0, 0), (0.05, 0, 1), (0.05, 0, 2), (0.10, 0, 1), (0.20, 0, 1)]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ner-viz-label-issues-"))
    workdir.mkdir(parents=True, exist_ok=True)
    blocks: list[str] = []
    print(f"  label_issues: torch threads {threads}, load {C.loadavg()}, parts {' '.join(args.parts)}", file=sys.stderr, flush=True)
    try:
        outs: dict[tuple[float, int, int], Path] = {}
        if "quality" in args.parts or "disk" in args.parts:
            got, outs = part_quality(runs if "quality" in args.parts else runs[:1], workdir)
            if "quality" in args.parts:
                blocks += got
        if "disk" in args.parts:
            blocks += part_disk(outs[(0.05, 0, 0)], "5% label noise (the CLI's seeds)")
        if "cost" in args.parts:
            blocks += part_cost(sentences, repeats, workdir, threads)
        if "micro" in args.parts:
            blocks += part_micro(args.repeats or (3 if args.quick else 5))
        if "ranking" in args.parts:
            blocks += part_ranking(sizes, args.repeats or (2 if args.quick else 5), workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return blocks


if __name__ == "__main__":
    main()

"""The README's numbers: how much longer the demo's ``trainer.fit`` takes with the callback, and its last picture.

The demo's own setup (``lightning-ner-viz demo`` defaults: the tiny BERT tagger, 2,500 generated titles, 80/20
split, 3 epochs, batch 32, an offline W&B logger), built by the demo's own functions, in a fresh process per fit
(``--child``), so each fit pays its own projector child, imports and warm-up. Variants: no callback (the W&B logger
stays), and the callback with the demo's sinks (Rerun file, HTML report, W&B) and ``reducer="pca"`` or
``"umap"``. The clock is ``time.monotonic()``: "fit" is ``trainer.fit`` (it returns when training is done; the
last pictures are drawn afterwards), "last picture" is until ``callback.wait()`` returns right after it (every
picture written, the sinks closed). Rotated order per repeat; medians; the ratios are paired per repeat.

    python benchmarks/demo_ratio.py                # 3 repeats (about 4 min)
    python benchmarks/demo_ratio.py --repeats 5
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

HERE = Path(__file__).resolve()
PLAIN = "without"


def one_fit(variant: str) -> dict[str, Any]:
    """One demo fit; returns its wall time in seconds."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import WandbLogger

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.cli.demo import add_demo_arguments
    from lightning_ner_viz.demo.data import iter_text
    from lightning_ner_viz.demo.datamodule import NerDataModule
    from lightning_ner_viz.demo.model import HFTokenClassifier
    from lightning_ner_viz.demo.run import _load_examples, _load_model
    from lightning_ner_viz.sinks import HtmlSink, RerunSink, WandbSink

    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    args = parser.parse_args([])
    out = Path(tempfile.mkdtemp(prefix="ner-viz-demo-ratio-"))
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        os.environ.setdefault(var, str(out / ".wandb-home"))
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    pl.seed_everything(0, verbose=False)
    examples, label_names = _load_examples(args)
    tokenizer, hf_model = _load_model(args.model, list(iter_text(examples)), label_names)
    split = max(1, int(len(examples) * 0.8))
    data = NerDataModule(examples[:split], examples[split:], tokenizer, label_names, batch_size=32)
    logger = WandbLogger(project="lightning-ner-viz-demo", save_dir=str(out), offline=True)
    callbacks = []
    if variant != PLAIN:
        sinks = [RerunSink(path=out / "embeddings.rrd"), HtmlSink(path=out / "embeddings.html"), WandbSink()]
        callbacks = [EmbeddingDriftCallback(sinks=sinks, reducer=variant, max_tokens=args.max_tokens, seed=0)]
    trainer = pl.Trainer(max_epochs=args.epochs, default_root_dir=str(out), logger=logger, callbacks=callbacks,
                         enable_checkpointing=False, accelerator="cpu", devices=1, log_every_n_steps=10,
                         enable_progress_bar=False, enable_model_summary=False)
    model = HFTokenClassifier(hf_model, lr=1e-3 if args.model == "tiny" else 5e-5)
    t0 = time.monotonic()
    trainer.fit(model, data)
    seconds = time.monotonic() - t0
    for callback in callbacks:
        callback.wait(progress=False)
    done = time.monotonic() - t0
    logger.experiment.finish()
    return {"fit": seconds, "done": done}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None, help="rotated runs of every variant (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--threads", type=int, default=None, help="ignored (each fit uses torch's default)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        C.quiet()
        print(json.dumps(one_fit(args.child)))
        return []
    repeats = args.repeats or (1 if args.quick else 3)
    variants = [PLAIN, "pca", "umap"]
    fits: dict[str, list[float]] = {v: [] for v in variants}
    done: dict[str, list[float]] = {v: [] for v in variants}
    start = time.perf_counter()
    for r in range(repeats):
        for v in variants[r % 3:] + variants[: r % 3]:
            res = subprocess.run([sys.executable, str(HERE), "--child", v], capture_output=True, text=True, cwd=C.REPO)
            if res.returncode != 0:
                raise RuntimeError(f"the {v} fit failed:\n{res.stderr[-3000:]}")
            got = json.loads(res.stdout.strip().splitlines()[-1])
            fits[v].append(got["fit"])
            done[v].append(got["done"])
            print(f"  demo_ratio: repeat {r + 1}/{repeats} {v}: fit {fits[v][-1]:.1f} s (load {C.loadavg()})",
                  file=sys.stderr, flush=True)
    def ratio(xs: list[float]) -> str:
        return f"{C.median([w / p for w, p in zip(xs, fits[PLAIN])]):.2f}x"

    rows = [[f"**{v.upper()}**", C.fmt_s(C.median(fits[PLAIN])), C.fmt_s(C.median(fits[v])), f"**{ratio(fits[v])}**",
             C.fmt_s(C.median(done[v])), f"**{ratio(done[v])}**",
             " / ".join(f"{w / p:.2f}" for w, p in zip(fits[v], fits[PLAIN]))] for v in variants[1:]]
    notes = [f"The demo's defaults (tiny BERT, 2,000 training and 500 validation titles, 3 epochs, `max_tokens=2000`, "
             f"Rerun + HTML + offline W&B), `trainer.fit` wall time (it returns when training is done), and until "
             f"`callback.wait()` returns right after it (every picture written, the sinks closed); each fit in a fresh "
             f"process; median of {repeats} rotated repeats, ratios paired per repeat. {os.cpu_count()} cores; load {C.loadavg()} after "
             f"{time.perf_counter() - start:.0f} s."]
    table = C.table(["reducer", "fit without", "fit with", "ratio", "last picture", "ratio to the last picture",
                     "fit ratio per repeat"], rows)
    return [C.emit("demo-ratio", table, "python benchmarks/demo_ratio.py", notes)]


if __name__ == "__main__":
    main()

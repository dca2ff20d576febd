"""Profile the training-thread side of the callback (evidence for docs/performance.md).

Runs ``trainer.validate`` a few times with the capture-only callback and prints a
pyinstrument profile (``pip install pyinstrument``).

    python benchmarks/profile_capture.py --model tiny-bert --sentences 5000

``--micro`` instead times the callback's training-thread work directly, without Lightning:
per batch, the model's forward (``no_grad``, hooks attached) and then what
``on_validation_batch_end`` does (``adapt_batch``, slicing, ``EpochCollector.add_batch``),
plus ``finish`` at the end of the epoch. It reports the capture's time as a fraction of the
forward time; the thread's CPU time (``time.thread_time``) is printed too, since it is less
disturbed by other processes on a shared machine than the wall clock.

    python benchmarks/profile_capture.py --micro --model minilm --sentences 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.quiet()

from overhead import MAX_TOKENS, our_callback, tracked_ids  # noqa: E402


def micro(model_name: str, sentences: int, repeats: int, tracked: bool, work: str) -> None:
    """Time the capture's per-batch work against the forward it rides on (see the module docstring)."""
    import time

    import torch

    from lightning_ner_viz.capture.batch import adapt_batch
    from lightning_ner_viz.capture.hooks import ForwardCapture
    from lightning_ner_viz.capture.collector import EpochCollector
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.labels import EntityTypes

    model, batches = C.build_model(model_name), list(C.loader(sentences))
    ids = torch.tensor(tracked_ids(sentences, work), dtype=torch.long) if tracked else None
    capture = ForwardCapture({"hidden": ("model.bert", model.model.bert),
                              "emissions": ("model.classifier", model.model.classifier)})
    capture.attach()
    types = EntityTypes.from_label_names(list(LABEL_NAMES))
    clocks = (time.perf_counter, time.thread_time)
    results = []
    for r in range(repeats + 1):  # the first is a warm-up
        fwd, cap = [0.0, 0.0], [0.0, 0.0]
        collector = EpochCollector(("hidden", "emissions"), len(LABEL_NAMES), MAX_TOKENS, 0, None, types)
        collector.track(None if ids is None else ids.tolist())  # as the callback does: a steady epoch keeps the tracked tokens
        seen = 0
        with torch.no_grad():
            for batch in batches:
                t = [c() for c in clocks]
                model(batch)
                u = [c() for c in clocks]
                captured = capture.pop()
                tokens = adapt_batch(batch)
                seq = tokens.input_ids.shape[1]
                example_ids = torch.arange(tokens.input_ids.shape[0]) + seen
                seen += tokens.input_ids.shape[0]
                collector.add_batch(tokens, {v: x[:, :seq] for v, x in captured.items()}, example_ids)
                w = [c() for c in clocks]
                for i in range(2):
                    fwd[i] += u[i] - t[i]
                    cap[i] += w[i] - u[i]
            t = [c() for c in clocks]
            collector.finish(torch.device("cpu"), epoch=r, step=0)
            u = [c() for c in clocks]
        fin = [u[i] - t[i] for i in range(2)]
        if r:
            results.append((fwd, cap, fin))
            print(f"  repeat {r}: forward {fwd[0]:.3f} s, capture {cap[0] * 1e3:.1f} ms + finish {fin[0] * 1e3:.1f} ms "
                  f"= {(cap[0] + fin[0]) / fwd[0]:+.2%} (cpu {(cap[1] + fin[1]) / fwd[1]:+.2%})  load {C.loadavg()}")
    capture.detach()
    wall = C.median([(c[0] + f[0]) / fw[0] for fw, c, f in results])
    cpu = C.median([(c[1] + f[1]) / fw[1] for fw, c, f in results])
    per_batch = C.median([c[0] / len(batches) for _, c, _ in results])
    print(f"{model_name} {sentences} ({'steady' if tracked else 'first'} epoch, {len(batches)} batches): capture "
          f"{per_batch * 1e3:.2f} ms/batch; capture+finish / forward: wall {wall:+.2%}, cpu {cpu:+.2%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-bert", choices=sorted(C.MODELS))
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reducer", default="cheap", help="cheap | pca | umap")
    parser.add_argument("--first-epoch", action="store_true", help="profile the first epoch (no tracked tokens)")
    parser.add_argument("--html", help="also write an HTML profile here")
    parser.add_argument("--micro", action="store_true", help="time the capture against the bare forward instead")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    args = parser.parse_args()
    C.set_threads(args.threads)
    work = tempfile.mkdtemp(prefix="ner-viz-prof-")
    if args.micro:
        micro(args.model, args.sentences, args.repeats, not args.first_epoch, work)
        return
    from pyinstrument import Profiler

    model, dl = C.build_model(args.model), C.loader(args.sentences)
    reducer = C.CheapReducer() if args.reducer == "cheap" else args.reducer
    cb = our_callback(reducer, os.path.join(work, "snap"))
    trainer = C.trainer([cb])
    trainer.validate(model, dataloaders=dl, verbose=False)  # warm-up
    if not args.first_epoch:
        cb.tracked_ids = tracked_ids(args.sentences, work)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.repeats):
        if args.first_epoch:
            cb.tracked_ids = None
        trainer.validate(model, dataloaders=dl, verbose=False)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()

"""Cost of ``train_dynamics=True`` on the training epoch.

Fits a MiniLM-sized tagger (6 layers, 384 wide, random weights) for one epoch of ``--batches`` training
batches of 32 generated titles, no validation, with ``EmbeddingDriftCallback(sinks=[])`` and
``train_dynamics`` off, then on (alternating, ``--repeats`` each). Reported: the median fit time, the
median time of one training batch (``on_train_batch_start`` to ``on_train_batch_end``, measured by a
callback that runs after ours, so our recording is inside it), and the extra cost.

    python benchmarks/train_dynamics.py                 # 40 batches, 5 repeats
    python benchmarks/train_dynamics.py --batches 10 --repeats 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import lightning.pytorch as pl  # noqa: E402

from lightning_ner_viz import EmbeddingDriftCallback  # noqa: E402


class StepTimer(pl.Callback):
    """Wall time of every training batch, hook to hook."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001, D102
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001, D102
        self.steps.append(time.perf_counter() - self._start)


def one_fit(train_dynamics: bool, batches: int) -> tuple[float, float]:
    """(fit seconds, median training batch seconds) of one epoch."""
    model = C.build_model("minilm")
    model.train()
    timer = StepTimer()
    callback = EmbeddingDriftCallback(sinks=[], reducer=C.CheapReducer(), train_dynamics=train_dynamics)
    trainer = C.trainer([callback, timer], max_epochs=1, limit_train_batches=batches, limit_val_batches=0)
    data = C.loader(32 * batches, shuffle=True)
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=data, val_dataloaders=C.loader(32))
    return time.perf_counter() - start, C.median(timer.steps[1:])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 batches, 2 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats = 10, 2
    C.set_threads(args.threads)
    C.quiet()
    one_fit(False, 2)  # warm up imports and the allocator
    found: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.repeats):
        for on in (False, True):
            found[on].append(one_fit(on, args.batches))
    fit = {on: C.median([f for f, _ in runs]) for on, runs in found.items()}
    step = {on: C.median([s for _, s in runs]) for on, runs in found.items()}
    rows = [["off", C.fmt_s(fit[False]), C.fmt_s(step[False]), ""],
            ["on", C.fmt_s(fit[True]), C.fmt_s(step[True]),
             f"fit {C.fmt_pct(fit[True] / fit[False] - 1)}, batch {C.fmt_pct(step[True] / step[False] - 1)}"]]
    md = C.table(["train_dynamics", f"fit, 1 epoch of {args.batches} batches", "one training batch", "extra"], rows)
    notes = [f"MiniLM-sized tagger (6 x 384, random weights), batches of 32 titles, CPU, median of {args.repeats} "
             f"alternating runs; load average before: {C.loadavg()}."]
    return C.emit("train_dynamics", md, f"python benchmarks/train_dynamics.py --batches {args.batches} "
                  f"--repeats {args.repeats}", notes)


if __name__ == "__main__":
    main()

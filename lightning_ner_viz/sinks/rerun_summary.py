"""What the Rerun recording says about each snapshot: its place on the timelines and its markdown summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz.snapshot import Snapshot


def set_snapshot_time(rec: Any, snapshot: Snapshot) -> None:
    """Put what is logged next at the snapshot's time: ``step`` (the global step) always, ``epoch`` for fit's
    validations, ``validate`` (the callback's n-th ``trainer.validate()``) for validate runs.

    A baseline (a validate run before any training step) is also at epoch ``-1`` on the ``epoch``
    timeline, so scrubbing epochs starts from the untrained model. The time is reset first, so a
    later validate run never inherits the last epoch: it is on ``step`` and ``validate`` only.
    """
    rec.reset_time()
    rec.set_time("step", sequence=int(snapshot.step))
    if snapshot.stage == "fit":
        rec.set_time("epoch", sequence=int(snapshot.epoch))
    else:
        rec.set_time("validate", sequence=int(snapshot.run))
        if snapshot.key.is_baseline:
            rec.set_time("epoch", sequence=-1)


def epoch_markdown(snapshot: Snapshot, metrics: dict[str, float]) -> str:
    """A short markdown summary of one epoch: counts per label and the metrics."""
    gold_counts = np.bincount(snapshot.gold, minlength=len(snapshot.label_names))
    correct = snapshot.correct
    label = snapshot.label
    lines = [
        f"## {label[0].upper()}{label[1:]}",
        "",
        f"{len(snapshot)} sampled tokens, {int(correct.sum())} predicted correctly "
        f"({100 * correct.mean():.1f}%).",
        "",
        "| label | tokens | correct |",
        "| --- | ---: | ---: |",
    ]
    for i, name in enumerate(snapshot.label_names):
        mine = snapshot.gold == i
        lines.append(f"| {name} | {int(gold_counts[i])} | {int(correct[mine].sum())} |")
    if metrics:
        lines += ["", "| metric | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    extra = {k: v for k, v in snapshot.stats.items() if v}
    if extra:
        lines += ["", "Counters: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))]
    return "\n".join(lines)

"""What the Rerun recording says about each snapshot: its place on the timelines, its markdown summary and the
names and colours of its labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.analysis_text import span_markdown
from lightning_ner_viz.sinks.colors import label_colors
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


def label_annotations(label_names: list[str]) -> Any:
    """An ``AnnotationContext`` naming each class id (label id) and giving it its colour (:func:`label_colors`)."""
    rr = require("rerun")
    return rr.AnnotationContext([rr.AnnotationInfo(id=i, label=name, color=color)
                                 for i, (name, color) in enumerate(zip(label_names, label_colors(label_names)))])


def epoch_markdown(snapshot: Snapshot, metrics: dict[str, float]) -> str:
    """A short markdown summary of one epoch: counts per label, the whole validation set's span errors per
    entity type (when captured) and the metrics."""
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
    spans = span_markdown(snapshot)
    if spans:
        lines += ["", "Entity spans of the whole validation set:", "", spans]
    if metrics:
        lines += ["", "| metric | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    extra = {k: v for k, v in snapshot.stats.items() if v}
    if extra:
        lines += ["", "Counters: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))]
    return "\n".join(lines)


class HeldSummary:
    """A snapshot's summary markdown, held from ``log_epoch`` so it is logged once, with the sub-clusters' events
    when the analyses come, else as it is before the next snapshot, a flush or the close; and the clouds'
    coordinates of the same snapshot, for the sub-cluster layers."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.text: str | None = None  # None: logged already
        self.coords: dict[str, np.ndarray] = {}

    def hold(self, snapshot: Snapshot, text: str, coords: dict[str, np.ndarray]) -> None:
        """Keep ``snapshot``'s summary (unlogged) and its views' coordinates."""
        self.snapshot, self.text, self.coords = snapshot, text, dict(coords)

    def holds(self, snapshot: Snapshot) -> bool:
        """Whether what is kept is ``snapshot``'s."""
        return self.snapshot is not None and self.snapshot.key.name == snapshot.key.name

    def coords_of(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        """The kept coordinates when they are ``snapshot``'s (its views and the groups added since), else none."""
        return self.coords if self.holds(snapshot) else {}

    def release(self, rec: Any, path: str, extra: str = "") -> None:
        """Log the held summary (``extra`` appended) at its snapshot's time, if it was not logged yet."""
        if self.snapshot is None or self.text is None:
            return
        rr = require("rerun")
        set_snapshot_time(rec, self.snapshot)
        rec.log(path, rr.TextDocument(f"{self.text}\n\n{extra}" if extra else self.text,
                                      media_type=rr.MediaType.MARKDOWN))
        self.text = None

"""Which snapshots an :class:`~lightning_ner_viz.sinks.html.HtmlSink` report holds, and in what order.

A report keys everything by the snapshot's name (see :mod:`lightning_ner_viz.keys`) and keeps it in
capture order (``SnapshotKey.order``). Here: how a page entry names its snapshot, short axis ticks,
thinning by position in that order, and which entries of a file a resumed run keeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from lightning_ner_viz.keys import SnapshotKey, parse_key


def entry_key(entry: Mapping[str, Any]) -> SnapshotKey:
    """The key of a record or metrics point read back from a page's payload.

    Entries carry ``name`` (its stage, step and run) and ``epoch`` (a ``validate`` name has none).
    Pages written before snapshots had keys carry only ``epoch``: they get the legacy key
    ``epoch=NNNN`` (step ``-1``), which sorts before every keyed snapshot.
    """
    key = parse_key(str(entry.get("name", "")))
    if key is None:
        return SnapshotKey("fit", int(entry["epoch"]), -1)
    return key._replace(epoch=int(entry.get("epoch", key.epoch)))


def describe(key: SnapshotKey) -> dict[str, Any]:
    """How the page names a snapshot: ``name`` (its id), ``label`` (display), ``stage``, ``run``, ``baseline``."""
    return {"name": key.name, "label": key.label, "stage": key.stage, "run": key.run, "baseline": key.is_baseline}


def ticks(keys: list[SnapshotKey]) -> list[str]:
    """Short x-axis labels, one per key: ``e2`` (``e2·s120`` when epoch 2 has several fit snapshots),
    ``base`` for a baseline (``base 1`` when there are several) and ``val 1`` for another ``validate()``."""
    per_epoch = Counter(k.epoch for k in keys if k.stage == "fit")
    baselines = sum(k.is_baseline for k in keys)
    out = []
    for k in keys:
        if k.is_baseline:
            out.append("base" if baselines == 1 else f"base {k.run}")
        elif k.stage == "validate":
            out.append(f"val {k.run}")
        else:
            out.append(f"e{k.epoch}" if per_epoch[k.epoch] == 1 or k.step < 0 else f"e{k.epoch}·s{k.step}")
    return out


def in_order(keys: Iterable[SnapshotKey]) -> list[SnapshotKey]:
    """Distinct keys (by name) in capture order."""
    return sorted({k.name: k for k in keys}.values(), key=SnapshotKey.order)


def thin(positions: list[int], limit: int | None) -> list[int]:
    """Keep at most ``limit`` of ``positions`` (sorted indices into capture order): the first, the latest
    and an even spread between (the kept one whose neighbours are closest goes first)."""
    kept = list(positions)
    while limit is not None and len(kept) > limit:
        del kept[0 if limit < 2 else min(range(1, len(kept) - 1), key=lambda i: (kept[i + 1] - kept[i - 1], i))]
    return kept


def is_before(key: SnapshotKey, resumed: SnapshotKey) -> bool:
    """Whether a resumed run keeps ``key`` from the file: it was captured before ``resumed``.

    A legacy ``epoch=NNNN`` entry (no step) sorts before everything, so it is kept only for an earlier epoch.
    """
    return key.order() < resumed.order() and (key.step >= 0 or key.epoch < resumed.epoch)

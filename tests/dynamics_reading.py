"""Read a run's token dynamics and label_issues.csv back from disk, and recompute the dynamics in plain Python."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lightning_ner_viz.analysis.token_dynamics import TokenDynamics
from lightning_ner_viz.snapshot import make_token_id
from lightning_ner_viz.store import SnapshotStore


def fit_records(root: Path) -> list[TokenDynamics]:
    """Every fit snapshot's token dynamics under the snapshot root ``root``, in order."""
    store = SnapshotStore(root)
    return [TokenDynamics.load(store.directory(k.name)) for k in store.keys() if k.stage == "fit"]


def plain_dynamics(records: list[TokenDynamics]) -> dict[int, tuple[float, float, float, int]]:
    """Token id to (confidence, variability, correctness, flips), with Python loops over the validations."""
    seen: dict[int, list[tuple[int, float, int]]] = {}
    for record in records:
        for t, g, p, pred in zip(record.token_id.tolist(), record.gold.tolist(), record.gold_prob.tolist(),
                                 record.pred.tolist()):
            seen.setdefault(t, []).append((g, float(p), pred))
    found = {}
    for t, rows in seen.items():
        probs = [p for _, p, _ in rows]
        mean = sum(probs) / len(probs)
        std = math.sqrt(sum((p - mean) ** 2 for p in probs) / len(probs))
        correct = sum(pred == g for g, _, pred in rows) / len(rows)
        flips = sum(a[2] != b[2] for a, b in zip(rows, rows[1:]))
        found[t] = (mean, std, correct, flips)
    return found


def read_issues(root: Path, name: str = "label_issues.csv") -> list[dict[str, str]]:
    """The rows of ``root/label_issues.csv`` (or ``name``), most suspect first."""
    with (root / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def token_id(row: dict[str, str]) -> int:
    """A CSV row's token id."""
    return int(make_token_id(int(row["sentence_id"]), int(row["position"])))

"""Loading the runs to compare and matching them: snapshot by snapshot (stage and epoch), token by token (stable
token ids), label by label. Every mismatch that makes a comparison meaningless is a ``ValueError`` saying what to
check; one that only narrows it (a snapshot or a token missing in some run) warns and uses what every run has."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.snapshot import Snapshot
from lightning_ner_viz.store import DEFAULT_SUBDIR, resolve_snapshot_root

MIN_SHARED_TOKENS = 4
"""The fewest tokens a matched snapshot must share across runs: enough to align a 3-D frame."""

MatchKey = tuple[str, int, int, int]
"""``(stage, epoch, validate run, n-th validation of that epoch)``: how snapshots of two runs are paired."""


@dataclass
class Run:
    """One training run's saved snapshots.

    Attributes:
        name: what the report calls it (unique among the runs compared).
        root: the snapshot directory it was loaded from.
        snapshots: its snapshots, in capture order.
    """

    name: str
    root: Path
    snapshots: list[Snapshot]


@dataclass
class MatchedSnapshot:
    """One validation that every run captured, restricted to the tokens every run sampled.

    Attributes:
        key: the reference run's key (its ``name`` and ``label`` name the snapshot).
        token_id: the shared token ids, ascending, shape (n,).
        snapshots: each run's snapshot, in run order.
        rows: per run, the rows of its snapshot holding ``token_id``, in that order, shape (n,).
        label_maps: per run, its label ids to the reference run's (the identity when the order is the same).
    """

    key: SnapshotKey
    token_id: np.ndarray
    snapshots: list[Snapshot]
    rows: list[np.ndarray]
    label_maps: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.token_id)

    @property
    def label_names(self) -> list[str]:
        """The reference run's label names (every run's gold and predictions are mapped onto them)."""
        return list(self.snapshots[0].label_names)

    def view(self, run: int, name: str) -> np.ndarray:
        """Run ``run``'s vectors of view ``name`` for the shared tokens, shape (n, n_features)."""
        return np.asarray(self.snapshots[run].views[name][self.rows[run]])

    def gold(self, run: int) -> np.ndarray:
        """Run ``run``'s gold label ids (in the reference run's label order), shape (n,)."""
        return self.label_maps[run][self.snapshots[run].gold[self.rows[run]]]

    def pred(self, run: int) -> np.ndarray:
        """Run ``run``'s predicted label ids (reference label order; -1 when unknown), shape (n,)."""
        pred = self.snapshots[run].pred[self.rows[run]]
        known = (pred >= 0) & (pred < len(self.label_maps[run]))
        return np.where(known, self.label_maps[run][np.where(known, pred, 0)], -1)


def run_names(directories: list[Path], names: list[str] | None) -> list[str]:
    """The runs' names: ``names`` when given, else each directory's name (the run directory above ``ner_viz``),
    made unique with ``-2``, ``-3``...

    Raises:
        ValueError: when ``names`` has another length than the directories, an empty name or a repeated one.
    """
    if names is not None:
        if len(names) != len(directories):
            raise ValueError(f"--names gives {len(names)} names for {len(directories)} runs; give one per directory.")
        if any(not n.strip() for n in names) or len(set(names)) != len(names):
            raise ValueError(f"--names must be distinct and non-empty; got {names}.")
        return list(names)
    found: list[str] = []
    for directory in directories:
        base = directory.parent.name if directory.name == DEFAULT_SUBDIR else directory.name
        name, n = base or "run", 1
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.append(name)
    return found


def load_runs(directories: list[str | os.PathLike[str]], names: list[str] | None = None) -> list[Run]:
    """Load every run's snapshots (a ``ner_viz`` folder or the run directory above it, as ``render`` takes).

    Raises:
        ValueError: for fewer than two directories, bad ``names``, or a directory without readable snapshots.
        FileNotFoundError: when a directory does not exist.
    """
    if len(directories) < 2:
        raise ValueError(f"compare needs at least two snapshot directories (the first is the reference); "
                         f"got {len(directories)}.")
    stores = [resolve_snapshot_root(d) for d in directories]
    labels = run_names([s.root for s in stores], names)
    return [Run(name, store.root, store.load_all()) for name, store in zip(labels, stores)]


def match_key(snapshot: Snapshot, occurrence: int) -> MatchKey:
    """The key pairing ``snapshot`` with the other runs': fit validations by epoch (and which validation of the
    epoch, with ``val_check_interval``), ``validate()`` runs by their number; the global step is left out, so runs
    with other batch sizes still pair up."""
    if snapshot.stage == "fit":
        return ("fit", int(snapshot.epoch), 0, occurrence)
    return ("validate", 0, int(snapshot.run), occurrence)


def keyed(snapshots: list[Snapshot]) -> dict[MatchKey, Snapshot]:
    """Each snapshot under its :func:`match_key`, in capture order."""
    seen: Counter[tuple[str, int, int]] = Counter()
    out: dict[MatchKey, Snapshot] = {}
    for snapshot in snapshots:
        stage, epoch, run, _ = match_key(snapshot, 0)
        out[match_key(snapshot, seen[stage, epoch, run])] = snapshot
        seen[stage, epoch, run] += 1
    return out


def common_snapshots(runs: list[Run]) -> list[list[Snapshot]]:
    """Per validation every run captured (in the reference run's order), each run's snapshot.

    Warns naming the snapshots only some runs have.

    Raises:
        ValueError: when no validation is in every run.
    """
    by_run = [keyed(run.snapshots) for run in runs]
    common = [k for k in by_run[0] if all(k in other for other in by_run[1:])]
    if not common:
        listing = "; ".join(f"{run.name!r} has {[s.key.name for s in run.snapshots]}" for run in runs)
        raise ValueError(f"The runs share no snapshot (matched by stage and epoch): {listing}. Compare runs that "
                         "validated at the same epochs.")
    left_out = {run.name: [by_run[i][k].key.name for k in by_run[i] if k not in common] for i, run in enumerate(runs)}
    left_out = {name: found for name, found in left_out.items() if found}
    if left_out:
        listing = "; ".join(f"{name!r}: {', '.join(found)}" for name, found in left_out.items())
        warn(f"Some snapshots are not in every run and are left out ({listing}); comparing the {len(common)} "
             "snapshots every run has.")
    return [[by_run[i][k] for i in range(len(runs))] for k in common]


def label_map(reference: list[str], other: list[str], run: str, reference_run: str) -> np.ndarray:
    """``other``'s label ids to ``reference``'s (the same names, maybe in another order).

    Raises:
        ValueError: naming the labels one run has and the other lacks.
    """
    only_other, only_ref = sorted(set(other) - set(reference)), sorted(set(reference) - set(other))
    if only_other or only_ref:
        raise ValueError(
            f"The runs have different label sets: {run!r} has {only_other or 'no label'} that {reference_run!r} "
            f"lacks, and lacks {only_ref or 'no label'} that {reference_run!r} has. Compare runs trained with the "
            "same labels (the same label_names, in any order).")
    position = {name: i for i, name in enumerate(reference)}
    return np.array([position[name] for name in other], dtype=np.int64)


def check_view(runs: list[Run], snapshots: list[Snapshot], view: str) -> None:
    """Raise unless every run's snapshot has ``view``.

    Raises:
        ValueError: naming the views each run has.
    """
    if all(view in s.views for s in snapshots):
        return
    listing = "; ".join(f"{run.name!r} has {sorted(s.views)}" for run, s in zip(runs, snapshots))
    raise ValueError(f"The view {view!r} is not in every run at {snapshots[0].key.name} ({listing}). "
                     "Choose a view every run has with --view.")


def shared_tokens(runs: list[Run], snapshots: list[Snapshot]) -> np.ndarray:
    """The token ids every run's snapshot holds, ascending.

    Raises:
        ValueError: when fewer than :data:`MIN_SHARED_TOKENS` are shared, saying what to check.
    """
    shared = snapshots[0].token_id
    for snapshot in snapshots[1:]:
        shared = np.intersect1d(shared, snapshot.token_id)
    if len(shared) < MIN_SHARED_TOKENS:
        counts = ", ".join(f"{run.name!r}: {len(s)}" for run, s in zip(runs, snapshots))
        what = "no token id" if len(shared) == 0 else f"only {len(shared)} token ids"
        raise ValueError(
            f"The runs share {what} at {snapshots[0].key.name} (tokens sampled: {counts}). Token ids are the "
            "sentence's index in the validation set and the token's position, so compare runs validated on the "
            "same validation data, in the same order, with the same tokenizer, and sampled with the same "
            "max_tokens and seed (EmbeddingDriftCallback(max_tokens=..., seed=...)).")
    return np.unique(shared).astype(np.int64)


def match_runs(runs: list[Run], view: str) -> list[MatchedSnapshot]:
    """Pair the runs' snapshots and tokens, and check their labels and ``view``.

    Warns when some snapshot is not in every run, or some run sampled tokens the others did not.

    Raises:
        ValueError: no snapshot or (too few) tokens in common, different label sets, or ``view`` missing.
    """
    matched: list[MatchedSnapshot] = []
    narrowed: list[str] = []
    for snapshots in common_snapshots(runs):
        check_view(runs, snapshots, view)
        reference = snapshots[0].label_names
        maps = [label_map(reference, s.label_names, run.name, runs[0].name) for run, s in zip(runs, snapshots)]
        ids = shared_tokens(runs, snapshots)
        if any(len(s) != len(ids) for s in snapshots):
            narrowed.append(f"{snapshots[0].key.name}: {len(ids)} of " + "/".join(str(len(s)) for s in snapshots))
        rows = [rows_of(s.token_id, ids) for s in snapshots]
        matched.append(MatchedSnapshot(snapshots[0].key, ids, snapshots, rows, maps))
    if narrowed:
        warn(f"The runs sampled different tokens; comparing the tokens every run has ({'; '.join(narrowed)}). "
             "Runs sample the same tokens when they validate on the same data with the same max_tokens and seed.")
    return matched


def rows_of(token_id: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rows of ``token_id`` holding ``ids`` (each present), in the order of ``ids``."""
    order = np.argsort(token_id, kind="stable")
    return order[np.searchsorted(token_id, ids, sorter=order)].astype(np.int64)

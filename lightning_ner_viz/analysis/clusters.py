"""Sub-clusters inside each class, with ids that stay stable across epochs; everything is deterministic.

:func:`cluster_classes` clusters each class's rows (a gold label of the token view, or an entity type
of the ``entities`` group) with scikit-learn's HDBSCAN in a per-class PCA space; :class:`ClusterTracker`
matches each epoch's clusters to the previous epoch's by member token ids and records splits, merges,
new and vanished clusters; :func:`summarize_clusters` describes each; :func:`cluster_report` runs all three.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from lightning_utilities.core.imports import RequirementCache

from lightning_ner_viz.analysis._checks import NAN, as_matrix
from lightning_ner_viz.analysis.errors import jsonable, unit_rows

_SKLEARN_AVAILABLE = RequirementCache("scikit-learn>=1.3", "sklearn")
_MAX_COMPONENTS = 50


def _hdbscan() -> type:
    if not _SKLEARN_AVAILABLE:
        raise ModuleNotFoundError(
            f"{_SKLEARN_AVAILABLE!s}. Install it with `pip install 'lightning-ner-viz[analysis]'`.")
    return importlib.import_module("sklearn.cluster").HDBSCAN


def min_cluster_size(n_rows: int) -> int:
    """``max(5, n_rows // 20)``: a sub-cluster worth naming holds at least 5% of its class, and at least 5 rows.

    Relative to the class, so a large class is not shattered into dozens of pockets of near-duplicates
    (a frequent word); the floor keeps a small class's densities from resting on two or three tokens.
    """
    return max(5, int(n_rows) // 20)


def _pca(x: np.ndarray, n_components: int, fit: np.ndarray) -> np.ndarray:
    """Coordinates of every row on the top principal axes of the rows ``fit`` (exact, via the smaller Gram matrix)."""
    x = x - x[fit].mean(0)
    if len(fit) >= x.shape[1]:
        _, vectors = np.linalg.eigh(x[fit].T @ x[fit])  # ascending eigenvalues
        return x @ vectors[:, ::-1][:, :n_components]
    return x @ np.linalg.svd(x[fit], full_matrices=False)[2][:n_components].T


def _nearest(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Index of each query row's nearest (Euclidean) row of ``refs``, in blocks of 1,024 queries."""
    sq = np.square(refs).sum(1)
    return np.concatenate([np.argmin(sq - 2.0 * queries[i:i + 1024] @ refs.T, 1)
                           for i in range(0, len(queries), 1024)] or [np.zeros(0, np.int64)])


class _Plain:
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists, ints, floats; NaN as None), keyed by the attribute names."""
        return jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass
class ClassClusters(_Plain):
    """Each row's cluster within its class: ``cluster`` (array of shape (n_rows,); 0, 1, ... numbered by
    first row, -1 for HDBSCAN's noise) and, arrays of shape (n_classes,), the ``min_cluster_size``
    used (0: no rows) and ``n_clusters`` found per class."""

    class_names: list[str]
    class_id: np.ndarray
    cluster: np.ndarray
    min_cluster_size: np.ndarray
    n_clusters: np.ndarray


def cluster_classes(X: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str], cosine: bool = True,
                    max_rows: int = 2000) -> ClassClusters:
    """Cluster each class's rows with HDBSCAN in a PCA space fitted to that class.

    Per class of ``n`` rows: rows are L2-normalised (with ``cosine``: the geometry of :mod:`.errors`),
    projected on ``min(50, n - 1, n_features)`` principal axes of the class, and clustered with
    ``HDBSCAN(min_cluster_size=m, min_samples=min(m, 10))``, ``m = min_cluster_size(n)``; a small
    ``min_samples`` (the density's neighbourhood) keeps cluster borders from being thrown out as noise.
    A class with fewer than ``2 * m`` rows, or in which HDBSCAN finds no cluster (one blob: all noise),
    is one cluster 0 without noise. A class of more than ``max_rows`` rows is fitted (PCA and HDBSCAN,
    ``n = max_rows``) on ``max_rows`` of them, evenly spaced in row order, and every other row takes
    the cluster of its nearest fitted row: HDBSCAN's dense distances stay near ``16 * max_rows**2``
    bytes and its time, growing faster than ``n**2`` (2,000 rows: 0.09 s; 5,800: 2.1 s), bounded.

    Args:
        X: array of shape (n_rows, n_features); ``class_ids``: array of shape (n_rows,), ids into ``class_names``.

    Raises:
        ModuleNotFoundError: without scikit-learn (the ``analysis`` extra).
    """
    names, classes = list(class_names), np.asarray(class_ids, dtype=np.int64).reshape(-1)
    x = (unit_rows if cosine else np.asarray)(as_matrix(X, "X", len(classes), np.float32))  # float64 per class
    if ((classes < 0) | (classes >= len(names))).any():
        raise ValueError(f"class ids must lie in [0, {len(names)}) (class_names).")
    cluster = np.zeros(len(classes), dtype=np.int64)
    sizes, counts = np.zeros(len(names), dtype=np.int64), np.zeros(len(names), dtype=np.int64)
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        fit = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), max_rows)).round().astype(np.int64))
        m = sizes[c] = min_cluster_size(len(fit))
        found = np.full(len(rows), -1)
        if len(fit) >= 2 * m:
            z = _pca(x[rows].astype(np.float64), min(_MAX_COMPONENTS, len(fit) - 1, x.shape[1]), fit)
            hdbscan = _hdbscan()(min_cluster_size=m, min_samples=min(m, 10), algorithm="brute", copy=True)
            found[fit] = hdbscan.fit_predict(z[fit])
            rest = np.setdiff1d(np.arange(len(rows)), fit)
            found[rest] = found[fit][_nearest(z[rest], z[fit])]
        if (found < 0).all():
            found = np.zeros(len(rows), dtype=np.int64)
        old, first = np.unique(found[found >= 0], return_index=True)
        renumber = np.full(int(old.max()) + 2, -1)
        renumber[old[np.argsort(first)]] = np.arange(len(old))
        cluster[rows], counts[c] = renumber[found], len(old)
    return ClassClusters(names, classes, cluster, sizes, counts)


@dataclass
class ClusterEvent(_Plain):
    """A change between two epochs' clusters of one class, in stable ids: ``kind`` is ``split`` (one ``before``
    → the ``after`` ones), ``merge`` (the ``before`` ones → one ``after``), ``new`` or ``vanished``."""

    kind: str
    class_id: int
    before: list[int]
    after: list[int]


class ClusterTracker:
    """Stable cluster ids across epochs, matched by shared member token ids (one tracker per view or group).

    Each update compares every class's clusters with the previous update's by the Jaccard overlap of their
    members, counting only tokens present in both updates. Pairs with overlap >= ``min_jaccard`` are matched
    greedily, best first (ties: the larger overlap, the older id, the earlier cluster), and a matched cluster
    keeps its id; the rest get new ids, in order of class and smallest member token id. A previous cluster
    ``P`` and a current ``C`` are *linked* when their shared members are >= ``min_share`` of each; a ``split``
    is a ``P`` linked to 2+ clusters holding most (>= half) of its members, a ``merge`` a ``C`` linked to 2+
    that make most of it. Ids neither kept nor in a split or merge are ``new`` or ``vanished``. The first
    update records no events.
    """

    def __init__(self, min_jaccard: float = 0.2, min_share: float = 0.2) -> None:
        self.min_jaccard, self.min_share, self.next_id, self.updates = float(min_jaccard), float(min_share), 0, 0
        self.events: list[ClusterEvent] = []
        self._clusters: dict[int, tuple[int, np.ndarray]] = {}  # stable id -> (class id, sorted member token ids)
        self._seen = np.zeros(0, dtype=np.int64)  # every token id of the last update

    def update(self, token_ids: np.ndarray, class_ids: np.ndarray, cluster_labels: np.ndarray) -> np.ndarray:
        """Stable ids, int64 array of shape (n_rows,) (-1 for noise), of this epoch's clusters; sets :attr:`events`.

        ``token_ids`` (unique, stable across epochs), ``class_ids`` and ``cluster_labels`` (clusters
        within each class, -1 for noise) are arrays of shape (n_rows,).
        """
        tokens, classes, labels = (np.asarray(a, dtype=np.int64).reshape(-1) for a in
                                   (token_ids, class_ids, cluster_labels))
        if not len(tokens) == len(classes) == len(labels):
            raise ValueError("token_ids, class_ids and cluster_labels must have the same length.")
        seen = np.unique(tokens)
        current = {key: np.sort(tokens[(classes == key[0]) & (labels == key[1])])  # (class, label) -> members
                   for key in {(int(c), int(k)) for c, k in zip(classes, labels) if k >= 0}}
        keys = sorted(current, key=lambda key: (key[0], int(current[key][0])))
        ids, pending = self._match(keys, current, seen) if self.updates else ({}, [])
        for key in keys:  # the clusters not kept get new ids, in order of class and smallest member
            if key not in ids:
                ids[key], self.next_id = self.next_id, self.next_id + 1
        events = [ClusterEvent(kind, c, old, sorted(ids[key] for key in after)) for kind, c, old, after in pending]
        explained, now = {i for e in events for i in e.before + e.after}, set(ids.values())
        if self.updates:  # ids are never reused, so one set tells kept, fresh and explained ids apart
            events += [ClusterEvent("new", key[0], [], [ids[key]]) for key in keys
                       if ids[key] not in self._clusters and ids[key] not in explained]
            events += [ClusterEvent("vanished", cls, [p], []) for p, (cls, _) in sorted(self._clusters.items())
                       if p not in now and p not in explained]
        self.events = sorted(events, key=lambda e: (e.class_id, e.kind, e.before, e.after))
        self._clusters = {ids[key]: (key[0], current[key]) for key in keys}
        self._seen, self.updates = seen, self.updates + 1
        return np.array([ids.get((int(c), int(k)), -1) for c, k in zip(classes, labels)], dtype=np.int64)

    def _match(self, keys: list[tuple[int, int]], current: dict[tuple[int, int], np.ndarray], seen: np.ndarray
               ) -> tuple[dict[tuple[int, int], int], list[tuple[str, int, list[int], list[tuple[int, int]]]]]:
        """Kept ids of the current clusters, and the splits and merges as (kind, class, previous ids, current keys)."""
        ids: dict[tuple[int, int], int] = {}
        pending: list[tuple[str, int, list[int], list[tuple[int, int]]]] = []
        for c in sorted({key[0] for key in keys} | {cls for cls, _ in self._clusters.values()}):
            prev = sorted(p for p, (cls, _) in self._clusters.items() if cls == c)
            cur = [key for key in keys if key[0] == c]
            p_sets = [np.intersect1d(self._clusters[p][1], seen, assume_unique=True) for p in prev]
            c_sets = [np.intersect1d(current[key], self._seen, assume_unique=True) for key in cur]
            flow = np.array([[len(np.intersect1d(a, b, assume_unique=True)) for b in c_sets] for a in p_sets],
                            dtype=np.float64).reshape(len(prev), len(cur))
            p_size = np.array([len(a) for a in p_sets], dtype=np.float64)[:, None]
            c_size = np.array([len(b) for b in c_sets], dtype=np.float64)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                jaccard = np.nan_to_num(flow / (p_size + c_size - flow))
            pairs = sorted((-jaccard[i, j], -flow[i, j], prev[i], j) for i, j in zip(*np.nonzero(flow))
                           if jaccard[i, j] >= self.min_jaccard)
            for _, _, p, j in pairs:  # greedy, best overlap first
                if p not in ids.values() and cur[j] not in ids:
                    ids[cur[j]] = p
            links = (flow > 0) & (flow >= self.min_share * p_size) & (flow >= self.min_share * c_size)
            for i, row in enumerate(links):
                if row.sum() >= 2 and flow[i, row].sum() >= 0.5 * p_size[i, 0]:
                    pending.append(("split", c, [prev[i]], [cur[j] for j in np.flatnonzero(row)]))
            for j, col in enumerate(links.T):
                if col.sum() >= 2 and flow[col, j].sum() >= 0.5 * c_size[0, j]:
                    pending.append(("merge", c, [prev[i] for i in np.flatnonzero(col)], [cur[j]]))
        return ids, pending

    def state_dict(self) -> dict[str, Any]:
        """Plain values (ints, floats, lists of ints), for a checkpoint or JSON; see :meth:`load_state_dict`."""
        ids = sorted(self._clusters)
        return {"min_jaccard": self.min_jaccard, "min_share": self.min_share, "next_id": self.next_id,
                "updates": self.updates, "ids": ids, "classes": [self._clusters[i][0] for i in ids],
                "members": [self._clusters[i][1].tolist() for i in ids], "seen": self._seen.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, so a resumed run keeps its ids."""
        self.min_jaccard, self.min_share = float(state["min_jaccard"]), float(state["min_share"])
        self.next_id, self.updates = int(state["next_id"]), int(state["updates"])
        self._clusters = {int(i): (int(c), np.asarray(m, dtype=np.int64))
                          for i, c, m in zip(state["ids"], state["classes"], state["members"])}
        self._seen, self.events = np.asarray(state["seen"], dtype=np.int64), []


@dataclass
class ClusterSummary(_Plain):
    """One cluster of one class (``class_id``, ``class_name``), by its ``cluster_id`` (stable, with a tracker).

    ``size`` member rows; ``top_words``, the most frequent first (ties: first seen), with ``top_counts``;
    ``error_rate``, the share of members with a known prediction that are wrong (NaN if none is known);
    ``example_row``, the member nearest the cluster's centroid, and ``example_sentence``, its sentence id (or -1).
    """

    class_id: int
    class_name: str
    cluster_id: int
    size: int
    top_words: list[str]
    top_counts: list[int]
    error_rate: float
    example_row: int
    example_sentence: int


def summarize_clusters(X: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str], cluster_ids: np.ndarray,
                       words: Sequence[str], correct: np.ndarray, sentence_ids: np.ndarray | None = None,
                       known: np.ndarray | None = None, top_n: int = 5, cosine: bool = True) -> list[ClusterSummary]:
    """A :class:`ClusterSummary` per (class, cluster id), in that order; noise (-1) is left out.

    ``X`` is an array of shape (n_rows, n_features) (rows L2-normalised first with ``cosine``, as in
    :func:`cluster_classes`); ``class_ids``, ``cluster_ids``, ``correct`` (bool: prediction equals gold),
    ``sentence_ids`` and ``known`` (bool: prediction known; default all) arrays of shape (n_rows,); ``words``
    the word of each row; ``top_n`` words per cluster.
    """
    classes, clusters = np.asarray(class_ids, dtype=np.int64), np.asarray(cluster_ids, dtype=np.int64)
    x, correct = as_matrix(X, "X", len(classes), np.float32), np.asarray(correct, dtype=bool)
    x, known = unit_rows(x) if cosine else x, np.ones(len(x), bool) if known is None else np.asarray(known, bool)
    out = []
    for c, k in sorted({(int(c), int(k)) for c, k in zip(classes, clusters) if k >= 0}):
        rows = np.flatnonzero((classes == c) & (clusters == k))
        members = x[rows].astype(np.float64)
        best = int(rows[np.argmin(np.square(members - members.mean(0)).sum(1))])
        top = Counter(words[i] for i in rows).most_common(top_n)
        out.append(ClusterSummary(
            class_id=c, class_name=class_names[c], cluster_id=k, size=len(rows),
            top_words=[w for w, _ in top], top_counts=[n for _, n in top],
            error_rate=float(1.0 - correct[rows][known[rows]].mean()) if known[rows].any() else NAN, example_row=best,
            example_sentence=-1 if sentence_ids is None else int(np.asarray(sentence_ids)[best])))
    return out


@dataclass
class ClusterReport(_Plain):
    """:func:`cluster_report`'s result: ``stable_id`` (array of shape (n_rows,), -1 for noise), summaries, events."""

    class_names: list[str]
    stable_id: np.ndarray
    summaries: list[ClusterSummary]
    events: list[ClusterEvent]


def cluster_report(X: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str], token_ids: np.ndarray,
                   words: Sequence[str], correct: np.ndarray, sentence_ids: np.ndarray | None = None,
                   known: np.ndarray | None = None, tracker: ClusterTracker | None = None,
                   cosine: bool = True, max_rows: int = 2000) -> ClusterReport:
    """:func:`cluster_classes`, then ``tracker.update`` (a fresh tracker when None), then :func:`summarize_clusters`."""
    found = cluster_classes(X, class_ids, class_names, cosine=cosine, max_rows=max_rows)
    tracker = ClusterTracker() if tracker is None else tracker
    stable = tracker.update(token_ids, found.class_id, found.cluster)
    summaries = summarize_clusters(X, found.class_id, class_names, stable, words, correct, sentence_ids, known,
                                   cosine=cosine)
    return ClusterReport(list(class_names), stable, summaries, list(tracker.events))

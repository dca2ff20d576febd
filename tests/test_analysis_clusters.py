"""lightning_ner_viz.analysis.clusters: planted sub-clusters, stable ids across epochs, events and summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lightning_utilities.core.imports import RequirementCache

from lightning_ner_viz.analysis import clusters
from lightning_ner_viz.analysis.clusters import (
    ClusterTracker,
    cluster_classes,
    cluster_report,
    min_cluster_size,
    summarize_clusters,
)

pytest.importorskip("sklearn")

D = 64
NAMES = ["O", "BRAND", "PROD", "EMPTY"]
_RNG = np.random.default_rng(0)
CLASS_CENTER = _RNG.normal(size=(4, D)) * 3
MODE_OFFSET = _RNG.normal(size=(4, 3, D))  # up to 3 modes per class


def epoch(classes: np.ndarray, modes: np.ndarray, jitter_seed: int, jitter: float = 0.05) -> np.ndarray:
    """One epoch's vectors: each token sits at its class's mode plus a fixed offset of its own, jittered per epoch."""
    own = np.random.default_rng(7).normal(size=(len(classes), D)) * 0.3
    moved = np.random.default_rng(100 + jitter_seed).normal(size=(len(classes), D)) * jitter
    return CLASS_CENTER[classes] + MODE_OFFSET[classes, modes] + own + moved


CLASSES = np.repeat([0, 1, 2], [600, 400, 150])
TWO_MODES = np.r_[np.repeat([0, 1], 300), np.zeros(550, int)]  # class 0 has two modes
ONE_MODE = np.zeros(len(CLASSES), int)
TOKENS = np.arange(len(CLASSES)) * 7 + 3  # token ids need not be row numbers


def test_min_cluster_size():
    assert [min_cluster_size(n) for n in (0, 1, 99, 100, 2000)] == [5, 5, 5, 5, 100]


def test_planted_modes_give_exactly_two_clusters():
    found = cluster_classes(epoch(CLASSES, TWO_MODES, 0), CLASSES, NAMES)
    assert found.n_clusters.tolist() == [2, 1, 1, 0]
    assert found.min_cluster_size.tolist() == [30, 20, 7, 0]
    a = found.cluster[CLASSES == 0]
    for mode in (0, 1):  # each planted mode is one cluster
        labels = a[TWO_MODES[CLASSES == 0] == mode]
        assert (labels == labels[0]).mean() >= 0.95
    assert set(a[:300]) != set(a[300:])
    assert found.cluster[:300][0] == 0  # numbered by first row
    json.dumps(found.to_dict(), allow_nan=False)


def test_stable_ids_under_jitter_and_deterministic():
    def run() -> list:
        tracker, out = ClusterTracker(), []
        for seed in range(3):
            found = cluster_classes(epoch(CLASSES, TWO_MODES, seed), CLASSES, NAMES)
            out.append((tracker.update(TOKENS, CLASSES, found.cluster), list(tracker.events)))
        return out

    first, second = run(), run()
    for (ids, events), (ids2, events2) in zip(first, second):
        np.testing.assert_array_equal(ids, ids2)
        assert events == events2
    for ids, events in first[1:]:
        np.testing.assert_array_equal(ids, first[0][0])
        assert events == []
    assert sorted(set(first[0][0].tolist())) == [0, 1, 2, 3]


def test_row_order_does_not_change_ids():
    X = epoch(CLASSES, TWO_MODES, 0)
    order = np.random.default_rng(5).permutation(len(X))
    found = cluster_classes(X, CLASSES, NAMES)
    found_perm = cluster_classes(X[order], CLASSES[order], NAMES)
    ids = ClusterTracker().update(TOKENS, CLASSES, found.cluster)
    ids_perm = ClusterTracker().update(TOKENS[order], CLASSES[order], found_perm.cluster)
    np.testing.assert_array_equal(ids[order], ids_perm)


def _track(mode_sequence: list[np.ndarray]) -> tuple[ClusterTracker, list[np.ndarray], list[list]]:
    tracker, ids, events = ClusterTracker(), [], []
    for seed, modes in enumerate(mode_sequence):
        found = cluster_classes(epoch(CLASSES, modes, seed), CLASSES, NAMES)
        ids.append(tracker.update(TOKENS, CLASSES, found.cluster))
        events.append(list(tracker.events))
    return tracker, ids, events


def test_split_is_recorded():
    _, ids, events = _track([ONE_MODE, TWO_MODES])
    assert events[0] == []  # the first update has nothing to compare with
    (split,) = events[1]
    assert split.kind == "split" and split.class_id == 0 and split.before == [0]
    assert len(split.after) == 2 and 0 in split.after  # the larger overlap keeps the id
    assert set(ids[1][CLASSES != 0]) == set(ids[0][CLASSES != 0])  # the other classes keep theirs


def test_merge_is_recorded():
    _, ids, events = _track([TWO_MODES, ONE_MODE])
    (merge,) = events[1]
    assert merge.kind == "merge" and merge.class_id == 0
    assert merge.before == sorted(set(ids[0][CLASSES == 0].tolist()))
    assert merge.after == [ids[1][0]] and ids[1][0] in merge.before
    assert merge.to_dict() == {"kind": "merge", "class_id": 0, "before": merge.before, "after": merge.after}


def test_new_and_vanished_classes():
    tracker = ClusterTracker()
    X = epoch(CLASSES, TWO_MODES, 0)
    keep = CLASSES != 2
    tracker.update(TOKENS[keep], CLASSES[keep], cluster_classes(X[keep], CLASSES[keep], NAMES).cluster)
    ids = tracker.update(TOKENS, CLASSES, cluster_classes(X, CLASSES, NAMES).cluster)
    assert [(e.kind, e.class_id, e.after) for e in tracker.events] == [("new", 2, [3])]
    assert set(ids[CLASSES == 2]) == {3}
    tracker.update(TOKENS[keep], CLASSES[keep], cluster_classes(X[keep], CLASSES[keep], NAMES).cluster)
    assert [(e.kind, e.class_id, e.before) for e in tracker.events] == [("vanished", 2, [3])]


def test_state_dict_resumes_ids():
    modes = [TWO_MODES, TWO_MODES, ONE_MODE]
    tracker, ids, events = _track(modes)
    resumed = ClusterTracker()
    sequence = [cluster_classes(epoch(CLASSES, m, s), CLASSES, NAMES).cluster for s, m in enumerate(modes)]
    for labels in sequence[:2]:
        resumed.update(TOKENS, CLASSES, labels)
    state = json.loads(json.dumps(resumed.state_dict()))  # plain values survive JSON
    assert all(isinstance(v, int) for m in state["members"] for v in m)
    fresh = ClusterTracker()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.update(TOKENS, CLASSES, sequence[2]), ids[2])
    assert fresh.events == events[2] and fresh.next_id == tracker.next_id


def test_overlap_counts_only_tokens_present_in_both_epochs():
    tracker = ClusterTracker()
    X = epoch(CLASSES, TWO_MODES, 0)
    first = tracker.update(TOKENS, CLASSES, cluster_classes(X, CLASSES, NAMES).cluster)
    half = np.arange(len(CLASSES)) % 2 == 0  # a different sample: half the tokens, plus unseen ones
    X2 = np.concatenate([X[half], epoch(CLASSES, TWO_MODES, 1)[~half]])
    tokens2, classes2 = np.r_[TOKENS[half], TOKENS[~half] + 1], np.r_[CLASSES[half], CLASSES[~half]]
    second = tracker.update(tokens2, classes2, cluster_classes(X2, classes2, NAMES).cluster)
    np.testing.assert_array_equal(second[: half.sum()], first[half])
    assert tracker.events == []


def test_summaries():
    X = epoch(CLASSES, TWO_MODES, 0)
    words = [("Nike" if i % 3 else "Adidas") if c == 1 else f"w{i % 4}" for i, c in enumerate(CLASSES)]
    correct = np.ones(len(CLASSES), bool)
    correct[CLASSES == 2] = np.arange(150) % 5 != 0  # 20% errors in class 2
    known = np.ones(len(CLASSES), bool)
    known[:300] = False  # class 0's first mode: no known prediction
    sentence = TOKENS // 10
    report = cluster_report(X, CLASSES, NAMES, TOKENS, words, correct, sentence, known)
    by = {(s.class_name, s.cluster_id): s for s in report.summaries}
    assert [(s.class_id, s.cluster_id, s.size) for s in report.summaries] == [(0, 0, 300), (0, 1, 300),
                                                                              (1, 2, 400), (2, 3, 150)]
    brand = by["BRAND", 2]
    assert brand.top_words == ["Nike", "Adidas"] and brand.top_counts == [266, 134]
    assert by["PROD", 3].error_rate == pytest.approx(0.2)
    assert np.isnan(by["O", 0].error_rate) and by["O", 1].error_rate == 0.0
    rows = np.flatnonzero(CLASSES == 2)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    nearest = rows[np.argmin(np.square(unit[rows] - unit[rows].mean(0)).sum(1))]
    assert by["PROD", 3].example_row == nearest and by["PROD", 3].example_sentence == sentence[nearest]
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["summaries"][0]["error_rate"] is None
    assert report.stable_id.shape == (len(CLASSES),) and report.events == []


def test_edge_cases():
    X = np.random.default_rng(0).normal(size=(4, 8))
    found = cluster_classes(X, np.array([0, 1, 1, 1]), ["one", "three"])  # classes of 1 and 3 tokens
    assert found.cluster.tolist() == [0, 0, 0, 0] and found.n_clusters.tolist() == [1, 1]
    empty = cluster_classes(np.zeros((0, 8)), np.zeros(0, int), ["a"])
    assert empty.cluster.shape == (0,) and empty.n_clusters.tolist() == [0]
    same = cluster_classes(np.ones((40, 8)), np.zeros(40, int), ["a"])  # identical rows
    assert same.n_clusters.tolist() == [1] and (same.cluster == 0).all()
    report = cluster_report(np.zeros((0, 8)), np.zeros(0, int), ["a"], np.zeros(0, int), [], np.zeros(0, bool))
    assert report.summaries == [] and report.events == [] and report.stable_id.shape == (0,)
    tracker = ClusterTracker()
    assert tracker.update([1, 2, 3], [0, 0, 0], [-1, -1, -1]).tolist() == [-1, -1, -1]  # all noise
    assert tracker.update([], [], []).tolist() == [] and tracker.events == []
    assert summarize_clusters(X, np.zeros(4, int), ["a"], np.full(4, -1), ["w"] * 4, np.ones(4, bool)) == []
    with pytest.raises(ValueError):
        cluster_classes(X, np.array([0, 1, 2, 0]), ["a", "b"])
    with pytest.raises(ValueError):
        tracker.update([1, 2], [0], [0, 0])


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setattr(clusters, "_SKLEARN_AVAILABLE", RequirementCache("scikit-learn-missing>=1.3", "sklearn_missing"))
    with pytest.raises(ModuleNotFoundError, match=r"lightning-ner-viz\[analysis\]"):
        cluster_classes(epoch(CLASSES, TWO_MODES, 0), CLASSES, NAMES)


def test_large_classes_are_fitted_on_a_subsample():
    classes, modes = np.zeros(3000, int), np.repeat([0, 1], 1500)
    X = epoch(classes, modes, 0)
    found = cluster_classes(X, classes, NAMES, max_rows=500)
    assert found.n_clusters.tolist() == [2, 0, 0, 0] and found.min_cluster_size[0] == 25
    for mode in (0, 1):
        labels = found.cluster[modes == mode]
        assert (labels == labels[0]).mean() >= 0.95
    full = cluster_classes(X, classes, NAMES, max_rows=3000)
    assert (full.cluster == found.cluster).mean() >= 0.95

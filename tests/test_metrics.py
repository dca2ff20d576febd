"""lightning_ner_viz.analysis (drift, quality, entity F1, epoch_metrics) against scikit-learn and seqeval."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from seqeval.metrics import f1_score
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from lightning_ner_viz.analysis.drift import (
    centroid_shift,
    cosine_displacement,
    linear_cka,
    match_tokens,
    prediction_change_rate,
)
from lightning_ner_viz.analysis.entity_f1 import entity_f1
from lightning_ner_viz.analysis.epoch_metrics import epoch_metrics
from lightning_ner_viz.analysis.quality import _CHUNK_BYTES, knn_purity, silhouette_by_label, trustworthiness
from lightning_ner_viz.snapshot import Snapshot, make_token_id

LABELS = ["O", "B-BRAND", "I-BRAND", "B-PROD", "I-PROD"]


def blobs(
    rng: np.random.Generator, n: int, d: int, n_labels: int, spread: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: X of shape (n, d) and labels of shape (n,)."""
    labels = rng.integers(0, n_labels, n)
    return rng.normal(size=(n_labels, d))[labels] * spread + rng.normal(size=(n, d)), labels


def make_snapshot(
    rng: np.random.Generator, sentence_ids: np.ndarray, views: dict[str, np.ndarray], n_sentences: int = 6
) -> Snapshot:
    n = len(sentence_ids)
    position = np.zeros(n, dtype=np.int64)  # one token per sentence id: ids are unique
    tags = {s: (rng.integers(0, len(LABELS), 9), rng.integers(0, len(LABELS), 9)) for s in range(n_sentences)}
    return Snapshot(
        epoch=0,
        step=0,
        token_id=make_token_id(sentence_ids, position),
        sentence_id=sentence_ids,
        position=position,
        token=["tok"] * n,
        word=["word"] * n,
        gold=rng.integers(0, len(LABELS), n),
        pred=rng.integers(0, len(LABELS), n),
        views=views,
        label_names=LABELS,
        sentence_tags=tags,
    )


# --- linear CKA ----------------------------------------------------------------------------------


def test_cka_is_invariant_to_rotation_and_scale() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40))
    R, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    assert linear_cka(X, X @ R) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(X, 7.5 * X) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(X, 1e-3 * X.astype(np.float32)) == pytest.approx(1.0, abs=1e-6)
    wide = rng.normal(size=(20, 500))  # fewer rows than features: the Gram-matrix route
    R, _ = np.linalg.qr(rng.normal(size=(500, 500)))
    assert linear_cka(wide, wide @ R) == pytest.approx(1.0, abs=1e-6)


def test_cka_of_independent_features_is_low_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(2000, 64)), rng.normal(size=(2000, 32))
    assert linear_cka(X, Y) < 0.2
    assert linear_cka(X, Y) == pytest.approx(linear_cka(Y, X), rel=1e-12)
    assert 0.2 < linear_cka(X, X[:, :32] + 0.5 * Y) < 1.0


def test_cka_degenerate_inputs_are_nan() -> None:
    assert math.isnan(linear_cka(np.ones((1, 3)), np.ones((1, 2))))
    assert math.isnan(linear_cka(np.ones((5, 3)), np.arange(10.0).reshape(5, 2)))
    with pytest.raises(ValueError, match="shape"):
        linear_cka(np.ones((5, 3)), np.ones((4, 3)))


# --- displacement, matching, centroids -------------------------------------------------------------


def test_cosine_displacement() -> None:
    prev = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    cur = np.array([[3.0, 0.0], [-1.0, 0.0], [-1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_displacement(prev, cur), [0, 2, 1, 0, 1, 0], atol=1e-12)
    assert cosine_displacement(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)


def test_match_tokens_pairs_shared_ids() -> None:
    rng = np.random.default_rng(2)
    views = {"hidden": rng.normal(size=(5, 3))}
    prev = make_snapshot(rng, np.array([4, 1, 2, 3, 0]), views)
    cur = make_snapshot(rng, np.array([2, 9, 4, 0]), {"hidden": rng.normal(size=(4, 3))})
    i_prev, i_cur = match_tokens(prev, cur)
    assert (prev.token_id[i_prev] == cur.token_id[i_cur]).all()
    assert sorted(prev.sentence_id[i_prev]) == [0, 2, 4]


def test_centroid_shift_is_scale_free() -> None:
    rng = np.random.default_rng(3)
    X, labels = blobs(rng, 200, 5, 3)
    moved = X + np.where(labels[:, None] == 1, 2.0, 0.0)
    spread = np.sqrt(((moved - moved.mean(0)) ** 2).sum(1).mean())
    shifts = centroid_shift(X, moved, labels, LABELS)
    assert shifts.keys() == {"O", "B-BRAND", "I-BRAND"}
    assert shifts["O"] == pytest.approx(0.0) and shifts["I-BRAND"] == pytest.approx(0.0)
    assert shifts["B-BRAND"] == pytest.approx(2.0 * np.sqrt(5) / spread)
    assert centroid_shift(10 * X, 10 * moved, labels, LABELS) == pytest.approx(shifts)
    assert centroid_shift(np.zeros((0, 5)), np.zeros((0, 5)), np.zeros(0), LABELS) == {}


# --- silhouette, kNN purity, trustworthiness against scikit-learn ----------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_silhouette_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, 150 + 40 * seed, 8, 2 + seed, spread=1.0 + seed)
    labels[0] = 99  # a singleton cluster scores 0
    expected = silhouette_score(X, labels)
    assert silhouette_by_label(X, labels) == pytest.approx(expected, abs=1e-5)
    assert silhouette_by_label(X.astype(np.float32), labels) == pytest.approx(expected, abs=1e-5)


def test_silhouette_subsample_is_deterministic_and_documented() -> None:
    rng = np.random.default_rng(4)
    X, labels = blobs(rng, 500, 6, 4)
    idx = np.sort(np.random.default_rng(7).choice(500, 120, replace=False))
    score = silhouette_by_label(X, labels, max_points=120, seed=7)
    assert score == silhouette_by_label(X, labels, max_points=120, seed=7)
    assert score == pytest.approx(silhouette_score(X[idx], labels[idx]), abs=1e-5)


def test_silhouette_needs_two_labels() -> None:
    assert math.isnan(silhouette_by_label(np.ones((10, 2)), np.zeros(10)))
    assert math.isnan(silhouette_by_label(np.eye(2), np.array([0, 1])))
    assert math.isnan(silhouette_by_label(np.zeros((0, 2)), np.zeros(0)))


def test_knn_purity_of_separated_blobs_is_one() -> None:
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(100, 16)), rng.normal(size=(100, 16)) + 50.0])
    labels = np.repeat([0, 1], 100)
    assert knn_purity(X, labels, k=10) == 1.0
    assert knn_purity(X, 1 - labels, k=99) == 1.0


def test_knn_purity_matches_brute_force_across_chunks() -> None:
    rng = np.random.default_rng(6)
    X, labels = blobs(rng, 4500, 8, 5, spread=0.6)  # more rows than one 64 MB block holds
    assert _CHUNK_BYTES // (4 * len(X)) < len(X)
    neighbours = NearestNeighbors(n_neighbors=10).fit(X).kneighbors(return_distance=False)
    expected = (labels[neighbours] == labels[:, None]).mean()
    assert knn_purity(X, labels, k=10) == pytest.approx(expected, abs=1e-3)  # float32 near-ties


def test_knn_purity_small_inputs() -> None:
    assert math.isnan(knn_purity(np.ones((1, 3)), np.zeros(1)))
    assert knn_purity(np.array([[0.0], [1.0], [5.0]]), np.array([0, 0, 1]), k=10) == pytest.approx(1 / 3)


@pytest.mark.parametrize(("seed", "k"), [(0, 5), (1, 10), (2, 12)])
def test_trustworthiness_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    X, _ = blobs(rng, 300, 20, 4)
    coords = X[:, :3] + rng.normal(scale=0.5 + seed, size=(300, 3))
    expected = sk_trustworthiness(X, coords, n_neighbors=k)
    assert trustworthiness(X, coords, k=k) == pytest.approx(expected, abs=1e-6)
    assert trustworthiness(X, coords[:, :2], k=k) == pytest.approx(
        sk_trustworthiness(X, coords[:, :2], n_neighbors=k), abs=1e-6
    )


def test_trustworthiness_subsample_and_small_inputs() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 10))
    coords = X[:, :2]
    idx = np.sort(np.random.default_rng(3).choice(400, 100, replace=False))
    got = trustworthiness(X, coords, k=5, max_points=100, seed=3)
    assert got == pytest.approx(sk_trustworthiness(X[idx], coords[idx], n_neighbors=5), abs=1e-6)
    assert math.isnan(trustworthiness(X[:20], coords[:20], k=10))  # sklearn needs k < n / 2
    assert math.isnan(trustworthiness(X[:1], coords[:1]))


# --- predictions and entity F1 ---------------------------------------------------------------------


def test_prediction_change_rate() -> None:
    assert prediction_change_rate(np.array([0, 1, 2, 3]), np.array([0, 2, 2, 1])) == 0.5
    assert prediction_change_rate(np.array([0, -1, 2]), np.array([1, 1, 2])) == 0.5
    assert math.isnan(prediction_change_rate(np.array([-1]), np.array([0])))
    assert math.isnan(prediction_change_rate(np.zeros(0), np.zeros(0)))


def test_entity_f1_matches_seqeval_on_random_tags() -> None:
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC-X", "I-MISC-X"]
    rng = np.random.default_rng(9)
    for case in range(300):
        n_sentences = int(rng.integers(1, 6))
        weights = rng.dirichlet(np.ones(len(names)) * (0.3 if case % 3 else 3.0))
        tags = {
            s: (rng.choice(len(names), size=m, p=weights), rng.choice(len(names), size=m, p=weights))
            for s, m in enumerate(rng.integers(0, 12, n_sentences))
        }
        y_true = [[names[i] for i in gold] for gold, _ in tags.values()]
        y_pred = [[names[i] for i in pred] for _, pred in tags.values()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval's UndefinedMetricWarning when nothing is an entity
            expected = f1_score(y_true, y_pred)
        assert entity_f1(tags, names) == pytest.approx(expected, abs=1e-12), (y_true, y_pred)


def test_entity_f1_chunking_and_unknowns() -> None:
    tags = {0: (np.array([1, 2, 0, 2, 2]), np.array([1, 2, 0, 4, 2])), 1: (np.array([2]), np.array([2]))}
    # gold: BRAND[0:1], BRAND[3:4] (I- starts a chunk), BRAND in sentence 1; pred: BRAND[0:1], PROD[3], BRAND[4], BRAND
    assert entity_f1(tags, LABELS) == pytest.approx(2 * 2 / (3 + 4))
    assert math.isnan(entity_f1({0: (np.array([1, 0]), np.array([1, -1]))}, LABELS))
    assert math.isnan(entity_f1({}, LABELS))
    assert entity_f1({0: (np.zeros(3), np.zeros(3))}, LABELS) == 0.0
    with pytest.raises(ValueError, match="aligned"):
        entity_f1({0: (np.zeros(3), np.zeros(2))}, LABELS)


# --- epoch_metrics ---------------------------------------------------------------------------------


def test_epoch_metrics_of_identical_snapshots() -> None:
    rng = np.random.default_rng(10)
    hidden, _ = blobs(rng, 60, 12, 3)
    snap = make_snapshot(rng, np.arange(60), {"hidden": hidden, "emissions": rng.normal(size=(60, 5))})
    coords = {"hidden": hidden[:, :3]}
    out = epoch_metrics(snap, coords, previous=snap, first=snap)
    assert all(type(v) is float for v in out.values())
    expected = {"n_tokens", "sample_accuracy", "sample_entity_f1", "prediction_change", "entity_f1", "hidden/trustworthiness"}
    for view in ("hidden", "emissions"):
        expected |= {f"{view}/{m}" for m in ("cka_prev", "cka_first", "displacement_mean", "displacement_median")}
        expected |= {f"{view}/{m}" for m in ("silhouette", "knn_purity")}
        expected |= {f"{view}/centroid_shift/{LABELS[i]}" for i in np.unique(snap.gold)}
    assert out.keys() == expected
    assert out["n_tokens"] == 60.0
    assert out["sample_accuracy"] == pytest.approx(snap.correct.mean())
    assert out["prediction_change"] == 0.0
    assert out["entity_f1"] == pytest.approx(entity_f1(snap.sentence_tags, LABELS))
    for view in ("hidden", "emissions"):
        assert out[f"{view}/cka_prev"] == pytest.approx(1.0, abs=1e-6)
        assert out[f"{view}/cka_first"] == pytest.approx(1.0, abs=1e-6)
        assert out[f"{view}/displacement_mean"] == pytest.approx(0.0, abs=1e-9)
        assert out[f"{view}/displacement_median"] == pytest.approx(0.0, abs=1e-9)
        assert all(out[k] == 0.0 for k in out if k.startswith(f"{view}/centroid_shift/"))
        assert out[f"{view}/silhouette"] == pytest.approx(silhouette_score(snap.views[view], snap.gold), abs=1e-5)
        assert out[f"{view}/knn_purity"] == pytest.approx(knn_purity(snap.views[view], snap.gold))
    expected_trust = sk_trustworthiness(hidden, hidden[:, :3], n_neighbors=10)
    assert out["hidden/trustworthiness"] == pytest.approx(expected_trust, abs=1e-6)


def test_epoch_metrics_drift_over_shared_tokens_only() -> None:
    rng = np.random.default_rng(11)
    prev = make_snapshot(rng, np.arange(40), {"hidden": rng.normal(size=(40, 6))})
    cur_ids = np.concatenate([np.arange(20, 40), np.arange(100, 110)])[::-1].copy()
    rows = np.concatenate([np.arange(20, 40), np.zeros(10, dtype=int)])[::-1]
    hidden = prev.views["hidden"][rows] * 3.0
    hidden[:10] = rng.normal(size=(10, 6))  # tokens prev never saw
    cur = make_snapshot(rng, cur_ids, {"hidden": hidden})
    cur.pred[10:] = prev.pred[rows[10:]]
    out = epoch_metrics(cur, {}, previous=prev)
    assert out["prediction_change"] == 0.0
    assert out["hidden/cka_prev"] == pytest.approx(1.0, abs=1e-6)
    assert out["hidden/displacement_mean"] == pytest.approx(0.0, abs=1e-9)
    assert "hidden/cka_first" not in out and "hidden/trustworthiness" not in out


def test_epoch_metrics_above_max_points_agrees_with_public_functions() -> None:
    rng = np.random.default_rng(14)
    hidden, _ = blobs(rng, 2100, 8, 5, spread=0.7)
    snap = make_snapshot(rng, np.arange(2100), {"hidden": hidden})
    coords = hidden[:, :2].copy()
    out = epoch_metrics(snap, {"hidden": coords})
    assert out["hidden/silhouette"] == silhouette_by_label(hidden, snap.gold)
    assert out["hidden/knn_purity"] == knn_purity(hidden, snap.gold)
    assert out["hidden/trustworthiness"] == trustworthiness(hidden, coords)


def test_epoch_metrics_without_history_omits_drift_keys() -> None:
    rng = np.random.default_rng(12)
    snap = make_snapshot(rng, np.arange(30), {"hidden": rng.normal(size=(30, 4))})
    out = epoch_metrics(snap, {"hidden": rng.normal(size=(30, 2))})
    assert out.keys() == {
        "n_tokens", "sample_accuracy", "sample_entity_f1", "entity_f1", "hidden/silhouette", "hidden/knn_purity", "hidden/trustworthiness"
    }


def test_epoch_metrics_never_raises_on_tiny_inputs() -> None:
    rng = np.random.default_rng(13)
    one = make_snapshot(rng, np.array([0]), {"hidden": rng.normal(size=(1, 4))}, n_sentences=0)
    one.pred[:] = -1
    other = make_snapshot(rng, np.array([5]), {"hidden": rng.normal(size=(1, 4))})
    out = epoch_metrics(one, {"hidden": np.zeros((1, 2))}, previous=other, first=one)
    for key in ("sample_accuracy", "entity_f1", "prediction_change", "hidden/cka_prev", "hidden/cka_first"):
        assert math.isnan(out[key]), key
    for key in ("hidden/displacement_mean", "hidden/silhouette", "hidden/knn_purity", "hidden/trustworthiness"):
        assert math.isnan(out[key]), key
    assert not any(k.startswith("hidden/centroid_shift/") for k in out)
    empty = make_snapshot(rng, np.zeros(0, dtype=int), {"hidden": np.zeros((0, 4))}, n_sentences=0)
    assert epoch_metrics(empty, {"hidden": np.zeros((0, 2))}, previous=empty, first=empty)["n_tokens"] == 0.0

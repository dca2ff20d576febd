"""lightning_ner_viz.analysis.errors: error geometry on synthetic class regions with planted errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_ner_viz.analysis import errors
from lightning_ner_viz.analysis.errors import error_geometry

LABELS = ["O", "B-BRAND", "I-BRAND", "B-PROD", "I-PROD"]


def planted(seed: int = 0, n_per: int = 150, n_err: int = 60, d: int = 64):
    """Well-separated class regions, all predicted correctly, plus ``n_err`` misclassified tokens
    whose vectors sit in another (known) class's region. Returns X, gold, pred and the planted class."""
    rng = np.random.default_rng(seed)
    n_labels = len(LABELS)
    centers = rng.normal(size=(n_labels, d)) * 3 + 5.0  # a shared offset, as hidden states have
    gold = np.repeat(np.arange(n_labels), n_per)
    X = centers[gold] + rng.normal(size=(len(gold), d))
    pred = gold.copy()
    e_gold = rng.integers(0, n_labels, n_err)
    e_region = (e_gold + rng.integers(1, n_labels, n_err)) % n_labels  # another class
    e_pred = np.where(rng.random(n_err) < 0.5, e_region, (e_gold + 1) % n_labels)
    e_pred = np.where(e_pred == e_gold, e_region, e_pred)
    X = np.concatenate([X, centers[e_region] + rng.normal(size=(n_err, d))])
    order = rng.permutation(len(X))  # interleave errors with the rest
    gold, pred = np.concatenate([gold, e_gold])[order], np.concatenate([pred, e_pred])[order]
    region = np.concatenate([np.full(len(X) - n_err, -1), e_region])[order]
    return X[order], gold, pred, region


def test_planted_errors_point_at_the_planted_class():
    X, gold, pred, region = planted()
    geo = error_geometry(X, gold, pred, LABELS)
    assert len(geo) == 60
    assert set(geo.index.tolist()) == set(np.flatnonzero(pred != gold).tolist())
    want = region[geo.index]
    assert (geo.knn_vote == want).mean() >= 0.95
    assert (geo.nearest_class == want).mean() >= 0.95
    assert (geo.margin < 0).mean() >= 0.95
    np.testing.assert_array_equal(geo.gold, gold[geo.index])
    np.testing.assert_array_equal(geo.pred, pred[geo.index])
    assert np.all(np.diff(geo.margin) >= 0)  # most attracted first
    assert np.all((geo.knn_share > 0.5) & (geo.knn_share <= 1.0))
    np.testing.assert_array_equal(geo.reference_counts, np.bincount(gold[pred == gold], minlength=len(LABELS)))
    rows = geo.attraction.sum(1)
    has_errors = np.bincount(geo.gold, minlength=len(LABELS)) > 0
    np.testing.assert_allclose(rows[has_errors], 1.0)
    np.testing.assert_array_equal(rows[~has_errors], 0.0)
    assert geo.k == 10


def test_attraction_counts_nearest_classes():
    X, gold, pred, region = planted(seed=3)
    geo = error_geometry(X, gold, pred, LABELS)
    expected = np.zeros((len(LABELS), len(LABELS)))
    np.add.at(expected, (geo.gold, geo.nearest_class), 1.0)
    expected /= np.maximum(expected.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(geo.attraction, expected)


def test_margin_is_own_minus_nearest_other_cosine_distance():
    X, gold, pred, _ = planted(seed=1, n_err=10)
    geo = error_geometry(X, gold, pred, LABELS)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    ok = pred == gold
    cent = np.stack([unit[ok & (gold == c)].mean(0) for c in range(len(LABELS))])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    dist = 1 - unit[geo.index] @ cent.T
    own = dist[np.arange(len(geo)), geo.gold]
    dist[np.arange(len(geo)), geo.gold] = np.inf
    np.testing.assert_allclose(geo.margin, dist.min(1) - own, atol=1e-6)  # < 0: nearer another class


def test_knn_vote_tie_goes_to_the_nearest_neighbour():
    # references: label 0 at angle 10 degrees, label 1 at 5 degrees from the error; k=2 -> one vote each
    angles = np.deg2rad([10.0, 5.0, 0.0])
    X = np.stack([np.cos(angles), np.sin(angles)], 1)
    gold, pred = np.array([0, 1, 2]), np.array([0, 1, 0])
    geo = error_geometry(X, gold, pred, ["a", "b", "c"], k=2)
    assert geo.knn_vote.tolist() == [1] and geo.knn_share.tolist() == [0.5]
    assert geo.nearest_class.tolist() == [1]
    assert np.isnan(geo.margin[0])  # its gold label (c) has no correctly predicted token


def test_chunked_knn_matches_one_block(monkeypatch):
    X, gold, pred, _ = planted(seed=2)
    whole = error_geometry(X, gold, pred, LABELS).to_dict()
    monkeypatch.setattr(errors, "_CHUNK_BYTES", 4 * 700 * 3)  # about 3 rows per block
    assert error_geometry(X, gold, pred, LABELS).to_dict() == whole


def test_deterministic_and_json():
    X, gold, pred, _ = planted(seed=4)
    a, b = error_geometry(X, gold, pred, LABELS), error_geometry(X.copy(), gold, pred, LABELS)
    assert a.to_dict() == b.to_dict()
    text = json.dumps(a.to_dict(), allow_nan=False)
    assert set(json.loads(text)) >= {"index", "gold", "pred", "knn_vote", "nearest_class", "margin", "attraction"}


def _empty_ok(geo, n_labels):
    assert len(geo) == 0
    for name in ("index", "gold", "pred", "knn_vote", "knn_share", "nearest_class", "margin"):
        assert getattr(geo, name).shape == (0,)
    assert geo.attraction.shape == (n_labels, n_labels) and not geo.attraction.any()
    json.dumps(geo.to_dict(), allow_nan=False)


def test_no_errors():
    X, gold, _, _ = planted(n_err=0)
    geo = error_geometry(X, gold, gold, LABELS)
    _empty_ok(geo, len(LABELS))
    assert geo.reference_counts.sum() == len(gold)


def test_all_predictions_unknown():
    X, gold, _, _ = planted(n_err=5)
    geo = error_geometry(X, gold, np.full(len(gold), -1), LABELS)
    _empty_ok(geo, len(LABELS))
    assert geo.reference_counts.sum() == 0 and geo.k == 0


def test_no_token_predicted_correctly():
    rng = np.random.default_rng(0)
    gold = np.array([0, 1, 2, 1])
    geo = error_geometry(rng.normal(size=(4, 8)), gold, (gold + 1) % 3, ["a", "b", "c"])
    assert len(geo) == 4
    assert (geo.knn_vote == -1).all() and (geo.nearest_class == -1).all() and np.isnan(geo.margin).all()
    assert not geo.attraction.any()
    json.dumps(geo.to_dict(), allow_nan=False)


def test_single_token_class_and_tiny_inputs():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    geo = error_geometry(X, np.array([0, 1, 0]), np.array([0, 1, 1]), ["a", "b"])
    assert geo.index.tolist() == [2] and geo.knn_vote.tolist() == [1] and geo.nearest_class.tolist() == [1]
    assert geo.margin[0] < 0 and geo.k == 2
    empty = error_geometry(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0, int), ["a"])
    _empty_ok(empty, 1)
    zero = error_geometry(np.zeros((3, 4)), np.array([0, 1, 0]), np.array([0, 1, 1]), ["a", "b"])
    assert len(zero) == 1 and np.isfinite(zero.margin).all()  # zero vectors: no NaN, no exception


@pytest.mark.parametrize("bad", ["shape", "gold"])
def test_bad_input_raises(bad):
    X = np.zeros((3, 2))
    with pytest.raises(ValueError):
        if bad == "shape":
            error_geometry(X, np.zeros(3, int), np.zeros(2, int), ["a"])
        else:
            error_geometry(X, np.array([0, 5, 0]), np.zeros(3, int), ["a"])

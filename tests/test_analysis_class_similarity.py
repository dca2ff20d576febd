"""lightning_ner_viz.analysis.class_similarity: centroid cosines and separation on planted classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_ner_viz.analysis.class_similarity import class_similarity


def around(center: np.ndarray, spread: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows (n even) whose mean is exactly ``center``: symmetric pairs ``center ± noise``."""
    noise = rng.normal(size=(n // 2, len(center))) * spread
    return np.concatenate([center + noise, center - noise])


def test_identical_and_orthogonal_centroids():
    rng = np.random.default_rng(0)
    e = np.eye(6)
    X = np.concatenate([around(e[0] * 4, 1.0, 40, rng), around(e[0] * 4, 0.3, 20, rng),
                        around(e[1] * 2, 0.5, 30, rng)])
    gold = np.repeat([0, 1, 2], [40, 20, 30])
    out = class_similarity(X, gold, ["a", "b", "c"])
    assert out.similarity[0, 1] == pytest.approx(1.0)
    assert out.similarity[0, 2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(np.diag(out.similarity), 1.0)
    np.testing.assert_allclose(out.similarity, out.similarity.T)
    np.testing.assert_array_equal(out.counts, [40, 20, 30])
    assert out.nearest.tolist() == [1, 0, 0]  # a and b coincide; c is as far from both (tie: lower id)
    assert not out.centered


def test_separation_tight_far_beats_wide_near():
    rng = np.random.default_rng(1)
    e = np.eye(8)
    X = np.concatenate([around(e[0] * 0, 1.0, 100, rng),   # reference class at the origin
                        around(e[1] * 10, 0.1, 100, rng),  # tight and far
                        around(e[2] * 1.5, 3.0, 100, rng)])  # wide and near
    gold = np.repeat([0, 1, 2], 100)
    out = class_similarity(X, gold, ["ref", "tight_far", "wide_near"])
    assert out.separation[1] > 10 * out.separation[2]
    spread = [np.sqrt(np.square(X[gold == c] - X[gold == c].mean(0)).sum(1).mean()) for c in range(3)]
    np.testing.assert_allclose(out.spread, spread)
    cent = np.stack([X[gold == c].mean(0) for c in range(3)])
    assert out.nearest.tolist() == [2, 0, 0]  # tight_far: the origin (10) is nearer than wide_near (10.1)
    assert out.separation[1] == pytest.approx(np.linalg.norm(cent[1] - cent[0]) / spread[1])
    assert out.separation[2] == pytest.approx(np.linalg.norm(cent[2] - cent[0]) / spread[2])


def test_labels_without_tokens_and_single_tokens():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(11, 5)) + 3
    gold = np.array([0] * 10 + [2])  # label 1 has no token, label 2 a single one
    out = class_similarity(X, gold, ["a", "b", "c"])
    assert np.isnan(out.similarity[1]).all() and np.isnan(out.similarity[:, 1]).all()
    assert np.isfinite(out.similarity[np.ix_([0, 2], [0, 2])]).all()
    assert np.isnan(out.separation[1]) and np.isnan(out.separation[2])  # no tokens; no spread
    assert np.isfinite(out.separation[0])
    assert out.nearest.tolist() == [2, -1, 0]
    assert out.counts.tolist() == [10, 0, 1]
    json.dumps(out.to_dict(), allow_nan=False)


def test_edge_cases_do_not_raise():
    one = class_similarity(np.ones((1, 3)), np.array([0]), ["a", "b"])
    assert one.similarity[0, 0] == pytest.approx(1.0) and np.isnan(one.separation).all()
    assert one.nearest.tolist() == [-1, -1]
    empty = class_similarity(np.zeros((0, 3)), np.zeros(0, int), ["a", "b"])
    assert np.isnan(empty.similarity).all() and np.isnan(empty.separation).all()
    zero = class_similarity(np.zeros((4, 3)), np.array([0, 0, 1, 1]), ["a", "b"])
    assert np.isnan(zero.similarity).all()  # a zero centroid has no direction
    assert np.isnan(zero.separation).all()  # no spread
    with pytest.raises(ValueError):
        class_similarity(np.zeros((2, 3)), np.array([0, 3]), ["a", "b"])
    with pytest.raises(ValueError):
        class_similarity(np.zeros((2, 3)), np.array([0]), ["a", "b"])


def test_centering_removes_a_shared_offset():
    rng = np.random.default_rng(3)
    e = np.eye(4)
    offset = np.full(4, 50.0)  # anisotropy: every class far along one direction
    X = np.concatenate([around(offset + e[0], 0.1, 20, rng), around(offset - e[0], 0.1, 20, rng)])
    gold = np.repeat([0, 1], 20)
    raw, centered = class_similarity(X, gold, ["a", "b"]), class_similarity(X, gold, ["a", "b"], center=True)
    assert raw.similarity[0, 1] > 0.99
    assert centered.similarity[0, 1] == pytest.approx(-1.0) and centered.centered
    np.testing.assert_allclose(raw.separation, centered.separation)
    assert json.loads(json.dumps(centered.to_dict(), allow_nan=False))["label_names"] == ["a", "b"]

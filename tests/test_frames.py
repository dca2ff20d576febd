"""Frames keep one view's per-epoch projections in one stable frame (real umap-learn and openTSNE)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_ner_viz._warnings import NerVizWarning
from lightning_ner_viz.projection.frames import (
    FRAMES,
    Frame,
    align_procrustes,
    aligned_umap,
    extent,
    make_frame,
    procrustes_apply,
    procrustes_fit,
)
from lightning_ner_viz.reducers import PCAReducer, TSNEReducer, UMAPReducer
from lightning_ner_viz.snapshot import Snapshot

N = 300


def blobs(n: int = N, d: int = 32, k: int = 5, seed: int = 0) -> np.ndarray:
    """Gaussian blobs of shape (n, d)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 4
    return (centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float32)


def reducer(name: str) -> str | object:
    """Small, fast settings for the slow reducers."""
    return {"pca": "pca", "umap": UMAPReducer(n_epochs=50), "tsne": TSNEReducer(n_iter=50, perplexity=10)}[name]


IDS = np.arange(N, dtype=np.int64) * 3 + 11
X = blobs()
NOISY = X + (1e-3 * np.abs(X).mean() * np.random.default_rng(1).normal(size=X.shape)).astype(np.float32)


def mean_shift(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).mean() / extent(a))


def test_procrustes_recovers_rotation_reflection_scale_shift() -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag([1.0, 1.0, -1.0]) if np.linalg.det(q) > 0 else q  # a reflection
    target = 2.5 * source @ q + np.array([1.0, -2.0, 3.0])
    rotation, scale, translation = procrustes_fit(source, target)
    np.testing.assert_allclose(rotation, q, atol=1e-5)
    assert abs(scale - 2.5) < 1e-5
    np.testing.assert_allclose(translation, [1.0, -2.0, 3.0], atol=1e-5)
    np.testing.assert_allclose(procrustes_apply(source, rotation, scale, translation), target, atol=1e-5)
    np.testing.assert_allclose(align_procrustes(source, target), target, atol=1e-5)


def test_make_frame_unknown_name_lists_choices() -> None:
    assert set(FRAMES) == {"independent", "procrustes", "fixed", "warm"}
    with pytest.raises(ValueError) as err:
        make_frame("spinning", "pca", 3, 0)
    assert all(name in str(err.value) for name in FRAMES)
    with pytest.raises(ValueError, match="2 or 3"):
        make_frame("procrustes", "pca", 4, 0)
    with pytest.raises(ValueError, match="is not one of"):
        make_frame("procrustes", "isomap", 3, 0)


def test_frame_is_abstract_and_validates_input() -> None:
    with pytest.raises(TypeError):
        Frame()  # type: ignore[abstract]
    frame = make_frame("procrustes")
    with pytest.raises(ValueError, match="duplicates"):
        frame.project(np.array([1, 1, 2]), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="token_id must be"):
        frame.project(np.array([1, 2]), np.zeros((3, 4)))


def test_row_order_does_not_matter() -> None:
    perm = np.random.default_rng(0).permutation(N)
    a = make_frame("independent").project(IDS, X)
    b = make_frame("independent").project(IDS[perm], X[perm])
    np.testing.assert_array_equal(a[perm], b)


@pytest.mark.parametrize("frame_name", ["procrustes", "fixed", "warm"])
@pytest.mark.parametrize("reducer_name", ["pca", "umap", "tsne"])
def test_null_drift(frame_name: str, reducer_name: str) -> None:
    """The same features three times: no point moves."""
    frame = make_frame(frame_name, reducer(reducer_name), 3, 0)
    out = [frame.project(IDS, X) for _ in range(3)]
    assert out[0].shape == (N, 3) and out[0].dtype == np.float32
    for a, b in zip(out, out[1:]):
        assert np.linalg.norm(a - b, axis=1).max() < 1e-5 * extent(a)


@pytest.mark.parametrize("frame_name", ["procrustes", "fixed", "warm"])
@pytest.mark.parametrize("reducer_name", ["pca", "umap", "tsne"])
def test_null_drift_without_reuse(frame_name: str, reducer_name: str) -> None:
    """The same holds when every epoch is really refitted / transformed, where the maths allows it."""
    exact = reducer_name == "pca" or frame_name == "procrustes" or (frame_name, reducer_name) == ("fixed", "umap")
    frame = make_frame(frame_name, reducer(reducer_name), 3, 0)
    frame.reuse_unchanged = False
    a, b = frame.project(IDS, X), frame.project(IDS, X)
    if exact:
        assert np.linalg.norm(a - b, axis=1).max() < 1e-5 * extent(a)
    else:  # warm UMAP / t-SNE re-optimise, t-SNE transform re-places: bounded, not zero
        assert mean_shift(a, b) < 0.25


@pytest.mark.parametrize(
    ("frame_name", "reducer_name"),
    [("procrustes", "pca"), ("fixed", "pca"), ("warm", "pca"), ("fixed", "umap"), ("fixed", "tsne"), ("warm", "tsne")],
)
def test_continuity_under_tiny_noise(frame_name: str, reducer_name: str) -> None:
    frame = make_frame(frame_name, reducer(reducer_name), 3, 0)
    a, b = frame.project(IDS, X), frame.project(IDS, NOISY)
    assert mean_shift(a, b) < 0.05


def rotated_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two epochs whose data differ by a 0.2 degree rotation that tips the top axis's largest loading."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(N, 3)) * np.array([5.0, 2.0, 1.0])
    noise = 0.05 * rng.normal(size=(N, 32))
    eye = np.eye(32)

    def embed(degrees: float) -> np.ndarray:
        t = np.radians(degrees)
        top = np.cos(t) * eye[0] - np.sin(t) * eye[1]  # features 0 and 1 load equally at 45 degrees
        return (latent @ np.stack([top, eye[2], eye[3]]) + noise).astype(np.float32)

    return embed(44.9), embed(45.1)


def test_independent_pca_flips_where_frames_do_not() -> None:
    """Independent PCA fixes signs by the largest loading: a 0.2 degree change flips the whole cloud."""
    before, after = rotated_pair()
    assert np.linalg.norm(before - after, axis=1).mean() < 0.01 * extent(before)  # the model barely changed
    a = make_frame("independent").project(IDS, before)
    b = make_frame("independent").project(IDS, after)
    c = make_frame("independent").project(IDS, after)
    np.testing.assert_array_equal(b, c)  # deterministic, yet...
    assert mean_shift(a, b) > 0.2  # ...the top axis flipped sign
    for name in ("procrustes", "fixed", "warm"):
        frame = make_frame(name)
        assert mean_shift(frame.project(IDS, before), frame.project(IDS, after)) < 0.05


def epochs(n: int = N) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three epochs of a drifting model whose token set (about ``n`` tokens) changes a little."""
    rng = np.random.default_rng(2)
    out, Y = [], X[:n].copy()
    for e in range(3):
        keep = np.sort(rng.choice(n, n - n // 15, replace=False))
        out.append((IDS[keep], Y[keep]))
        Y = Y + (0.05 * rng.normal(size=Y.shape)).astype(np.float32)
    return out


@pytest.mark.parametrize("frame_name", sorted(FRAMES))
@pytest.mark.parametrize("reducer_name", ["pca", "umap", "tsne"])
def test_determinism(frame_name: str, reducer_name: str) -> None:
    runs = []
    for _ in range(2):
        frame = make_frame(frame_name, reducer(reducer_name), 3, 0)
        runs.append([frame.project(ids, feats) for ids, feats in epochs(120)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("frame_name", "reducer_name"), [("procrustes", "pca"), ("fixed", "pca"), ("warm", "tsne"), ("procrustes", "umap")])
def test_state_dict_round_trip_continues_the_frame(frame_name: str, reducer_name: str) -> None:
    (ids0, x0), (ids1, x1), (ids2, x2) = epochs()
    frame = make_frame(frame_name, reducer(reducer_name), 3, 0)
    frame.project(ids0, x0)
    frame.project(ids1, x1)
    state = json.loads(json.dumps(frame.state_dict()))  # plain values only
    resumed = make_frame(frame_name, reducer(reducer_name), 3, 0)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(resumed.project(ids2, x2), frame.project(ids2, x2))
    with pytest.raises(ValueError, match="this frame is"):
        make_frame("independent").load_state_dict(state)


def test_fixed_frame_resumed_with_umap_reanchors_onto_saved_layout() -> None:
    (ids0, x0), (ids1, x1), _ = epochs()
    frame = make_frame("fixed", reducer("umap"), 3, 0)
    first = frame.project(ids0, x0)
    resumed = make_frame("fixed", reducer("umap"), 3, 0)
    resumed.load_state_dict(json.loads(json.dumps(frame.state_dict())))
    assert mean_shift(frame.project(ids1, x1), resumed.project(ids1, x1)) < 0.15
    assert resumed.fitted_ is not None and extent(first) > 0


def test_fixed_frame_needs_transform() -> None:
    class FitOnly:
        def fit_transform(self, X: np.ndarray) -> np.ndarray:
            return PCAReducer(2).fit_transform(X)

    with pytest.raises(TypeError, match="transform"):
        make_frame("fixed", FitOnly(), 2, 0).project(IDS, X)
    assert make_frame("procrustes", FitOnly(), 2, 0).project(IDS, X).shape == (N, 2)


def test_too_few_tokens_for_umap_falls_back_to_pca_with_a_warning() -> None:
    frame = make_frame("warm", "umap", 3, 0)
    with pytest.warns(NerVizWarning, match="falls back to PCA"):
        small = frame.project(IDS[:10], X[:10])
    np.testing.assert_allclose(small, PCAReducer(3).fit_transform(X[:10]), atol=1e-5)


def snapshot(epoch: int, ids: np.ndarray, feats: np.ndarray) -> Snapshot:
    n = len(ids)
    return Snapshot(
        epoch=epoch, step=epoch * 10, token_id=ids, sentence_id=ids >> 20, position=ids & 0xFFFFF,
        token=["t"] * n, word=["w"] * n, gold=np.zeros(n), pred=np.zeros(n),
        views={"hidden": feats}, label_names=["O"],
    )  # fmt: skip


def test_aligned_umap_on_three_snapshots() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(N, 72)).astype(np.float32)  # one cloud: a connected neighbour graph
    snaps = [snapshot(e, ids[:150], base[ids[:150] // 3 - 3] + 0.1 * e) for e, (ids, _) in enumerate(epochs())]
    out = aligned_umap(snaps, "hidden", n_components=2, seed=0, n_epochs=20)
    assert [o.shape for o in out] == [(150, 2)] * 3
    assert all(o.dtype == np.float32 and np.isfinite(o).all() for o in out)
    with pytest.raises(ValueError, match="no view"):
        aligned_umap(snaps, "emissions")


def test_procrustes_keeps_the_cloud_size_over_a_chain_of_noisy_epochs() -> None:
    """Each epoch aligns onto the previous one; the least-squares scale would shrink the cloud by the
    epochs' correlation every time (here by 12% after six epochs)."""
    rng = np.random.default_rng(3)
    frame = make_frame("procrustes", "pca", 2, 0)
    sizes = []
    for _ in range(6):
        epoch = X + 2.0 * rng.normal(size=X.shape).astype(np.float32)  # a different noise draw each epoch
        sizes.append(float(np.sqrt((frame.project(IDS, epoch) ** 2).sum(1).mean())))
    assert min(sizes) / sizes[0] > 0.9, sizes
    assert max(sizes) / sizes[0] < 1.1, sizes

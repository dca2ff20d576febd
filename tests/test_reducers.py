"""Reducers: scikit-learn conventions, determinism, warm starts (real umap-learn and openTSNE)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lightning_ner_viz._imports import _OPENTSNE_AVAILABLE, require
from lightning_ner_viz.reducers import REDUCERS, NotFittedError, PCAReducer, TSNEReducer, UMAPReducer, make_reducer


def blobs(n: int = 300, d: int = 32, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs of shape (n, d) and their labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centers = rng.normal(size=(k, d)) * 4
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def test_pca_fit_transform_is_deterministic() -> None:
    X, _ = blobs()
    a = PCAReducer(n_components=3).fit_transform(X)
    b = PCAReducer(n_components=3).fit_transform(X.copy())
    assert a.shape == (300, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_pca_transform_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        PCAReducer().transform(np.zeros((4, 5)))


@pytest.mark.parametrize("n_components", [1, 4])
def test_n_components_must_be_2_or_3(n_components: int) -> None:
    X, _ = blobs(50)
    for cls in (PCAReducer, UMAPReducer, TSNEReducer):
        with pytest.raises(ValueError, match="2 or 3"):
            cls(n_components=n_components).fit(X)


def test_make_reducer_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError) as err:
        make_reducer("isomap", 3, 0)
    for name in ("pca", "umap", "tsne"):
        assert name in str(err.value)


def test_make_reducer_builds_seeded_reducers() -> None:
    assert set(REDUCERS) == {"pca", "umap", "tsne"}
    tsne = make_reducer("tsne", 2, 7)
    assert isinstance(tsne, TSNEReducer) and (tsne.n_components, tsne.seed) == (2, 7)
    umap = make_reducer("umap", 3, 5)
    assert isinstance(umap, UMAPReducer) and umap.seed == 5
    with pytest.raises(TypeError):
        make_reducer(object(), 3, 0)


@pytest.mark.parametrize("cls", [UMAPReducer, TSNEReducer])
def test_random_state_is_a_deprecated_alias_of_seed(cls: type) -> None:
    with pytest.warns(DeprecationWarning, match="use seed") as caught:
        reducer = cls(random_state=4)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert reducer.seed == 4
    params = inspect.signature(cls).parameters
    assert list(params).index("seed") == {UMAPReducer: 4, TSNEReducer: 3}[cls]  # random_state's old position
    assert params["random_state"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.warns(DeprecationWarning, match="use seed"):
        assert reducer.random_state == 4
    with pytest.warns(DeprecationWarning, match="use seed"):
        reducer.random_state = 5
    assert reducer.seed == 5
    with pytest.raises(ValueError, match="only seed"), pytest.warns(DeprecationWarning):
        cls(seed=1, random_state=2)


def test_the_alias_fits_as_the_seed_does() -> None:
    X, _ = blobs(60)
    with pytest.warns(DeprecationWarning):
        old = TSNEReducer(n_components=2, n_iter=20, random_state=3).fit_transform(X)
    np.testing.assert_array_equal(old, TSNEReducer(n_components=2, n_iter=20, seed=3).fit_transform(X))


def test_constructor_only_stores_arguments() -> None:
    bad = TSNEReducer(n_components=9, init=np.zeros((1, 1)))  # nothing validated yet
    assert bad.n_components == 9 and not hasattr(bad, "embedding_")


def test_transform_before_fit_raises_for_umap_and_tsne() -> None:
    for reducer in (UMAPReducer(), TSNEReducer()):
        with pytest.raises(NotFittedError):
            reducer.transform(np.zeros((4, 5)))


def test_umap_needs_more_tokens_than_neighbours() -> None:
    X, _ = blobs(15)
    with pytest.raises(ValueError, match="more tokens than n_neighbors=15"):
        UMAPReducer(n_neighbors=15).fit(X)


@pytest.mark.parametrize("cls", [UMAPReducer, TSNEReducer])
def test_init_must_match_shape(cls: type) -> None:
    X, _ = blobs(60)
    with pytest.raises(ValueError, match="init must have shape"):
        cls(n_components=3, init=np.zeros((60, 2))).fit(X)


def test_opentsne_flag_and_require() -> None:
    assert _OPENTSNE_AVAILABLE
    assert require("openTSNE").__name__ == "openTSNE"


@pytest.mark.parametrize("n_components", [2, 3])
def test_tsne_fit_transform_and_transform(n_components: int) -> None:
    X, _ = blobs(200, d=64)  # more features than pca_dims: the pre-reduction runs
    a = TSNEReducer(n_components=n_components, n_iter=50).fit(X)
    b = TSNEReducer(n_components=n_components, n_iter=50).fit_transform(X)
    assert a.embedding_.shape == (200, n_components) and a.embedding_.dtype == np.float32
    assert a.pca_components_.shape == (50, 64)
    np.testing.assert_array_equal(a.embedding_, b)
    new = a.transform(X[:20] + 0.01)
    assert new.shape == (20, n_components) and np.isfinite(new).all()


def test_tsne_warm_start_stays_near_init() -> None:
    X, _ = blobs(200)
    cold = TSNEReducer(n_iter=100).fit_transform(X)
    warm = TSNEReducer(n_iter=100, init=cold).fit_transform(X)
    rewarm = TSNEReducer(n_iter=100, init=cold).fit_transform(X)
    np.testing.assert_array_equal(warm, rewarm)
    # no early exaggeration from a layout: it keeps its arrangement (no rotation or reflection,
    # only t-SNE's slow expansion), so a least-squares scale alone brings it back
    centred = cold - cold.mean(0)
    scale = float((warm * centred).sum() / (warm**2).sum())
    assert np.linalg.norm(scale * warm - centred, axis=1).mean() < 0.05 * np.ptp(cold, axis=0).max()


def test_umap_fit_transform_warm_start_and_transform() -> None:
    X, _ = blobs(200)
    a = UMAPReducer(n_epochs=30).fit_transform(X)
    b = UMAPReducer(n_epochs=30).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    flipped = a * np.array([-1.0, 1.0, 1.0])  # a mirror image as the start
    warm = UMAPReducer(n_epochs=30, init=flipped).fit(X)
    assert warm.embedding_.shape == (200, 3)
    # the warm start keeps its handedness: closer to the mirrored start than to the cold layout
    dist = lambda p, q: np.linalg.norm((p - p.mean(0)) / p.std() - (q - q.mean(0)) / q.std(), axis=1).mean()  # noqa: E731
    assert dist(warm.embedding_, flipped) < dist(warm.embedding_, a)
    assert warm.transform(X[:10]).shape == (10, 3)


def test_exact_knn_matches_sklearn_and_puts_each_point_first() -> None:
    from sklearn.neighbors import NearestNeighbors

    from lightning_ner_viz.reducers.umap import exact_knn

    X, _ = blobs(700, d=20)
    indices, dists = exact_knn(X, 15, chunk=256)  # several chunks
    want_dists, want_indices = NearestNeighbors(n_neighbors=15).fit(X).kneighbors(X)
    assert (indices[:, 0] == np.arange(700)).all() and (dists[:, 0] == 0).all()
    np.testing.assert_allclose(dists, want_dists, atol=1e-3)
    assert (indices == want_indices).mean() > 0.99  # ties may order differently


def test_umap_exact_and_approximate_neighbours_give_equally_good_layouts() -> None:
    X, labels = blobs(600)
    exact = UMAPReducer(n_epochs=100).fit(X)
    approx = UMAPReducer(n_epochs=100, exact_knn_max=0).fit(X)
    assert exact.umap_._knn_search_index is None  # no NN-descent index was built

    def purity(Y: np.ndarray) -> float:
        d = ((Y[:, None] - Y[None]) ** 2).sum(-1)
        nearest = np.argsort(d, axis=1)[:, 1:11]
        return float((labels[nearest] == labels[:, None]).mean())

    assert purity(exact.embedding_) > 0.95 and abs(purity(exact.embedding_) - purity(approx.embedding_)) < 0.03
    assert exact.transform(X[:10]).shape == (10, 3)  # builds the search index when first needed


def test_umap_warm_start_uses_the_short_optimisation() -> None:
    X, _ = blobs(200)
    cold = UMAPReducer().fit(X)
    warm = UMAPReducer(init=cold.embedding_).fit(X)
    assert cold.umap_.n_epochs == 200 and warm.umap_.n_epochs == 50  # 200: umap-learn's own choice above 10k tokens
    assert UMAPReducer(cold_n_epochs=120).fit(X).umap_.n_epochs == 120
    assert UMAPReducer(init=cold.embedding_, n_epochs=80).fit(X).umap_.n_epochs == 80


def test_kernel_extension_equals_a_float64_kernel_regression_and_fits_by_blocks() -> None:
    """The fixed frame's map: float32 distances by matrix products give the coordinates of a plain float64
    Gaussian kernel regression, and the bandwidth is the median distance to the 15th neighbour."""
    from lightning_ner_viz.reducers.extension import KernelExtension

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(6, 20))
    X = (centres[rng.integers(0, 6, 2500)] + rng.normal(size=(2500, 20))).astype(np.float32)  # 2,500: 3 blocks
    layout = rng.normal(scale=5.0, size=(2500, 3))
    ext = KernelExtension(n_neighbors=15, pca_dims=None).fit(X, layout)

    d2 = ((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1)
    kth = np.sort(np.sqrt(np.sort(d2, axis=1)[:, 15]))
    assert ext.bandwidth_ == pytest.approx(kth[(len(kth) - 1) // 2], rel=1e-5)  # torch's median: the lower middle
    queries = (X[:300] + rng.normal(scale=0.3, size=(300, 20))).astype(np.float64)
    q2 = ((queries[:, None, :] - X[None, :, :].astype(np.float64)) ** 2).sum(-1)
    weights = np.exp(-(q2 - q2.min(1, keepdims=True)) / (2 * ext.bandwidth_**2))
    expected = (weights / weights.sum(1, keepdims=True)) @ layout
    np.testing.assert_allclose(ext.transform(queries.astype(np.float32)), expected, atol=1e-4 * np.ptp(layout))

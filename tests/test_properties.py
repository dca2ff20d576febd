"""Stable-frame properties with real Trainers: null drift, continuity, determinism."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
from conftest import trainer_kwargs
from outside_model import UserCrfTagger

from lightning_ner_viz import EmbeddingDriftCallback
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.projection.frames import extent
from lightning_ner_viz.sinks.base import Sink


class CoordinateRecorder(Sink):
    """Keeps what the sinks receive, to measure it."""

    def __init__(self) -> None:
        self.coords: list[dict[str, np.ndarray]] = []
        self.metrics: list[dict[str, float]] = []
        self.token_ids: list[np.ndarray] = []

    def log_epoch(self, snapshot, coords, metrics) -> None:
        self.coords.append({k: v.copy() for k, v in coords.items()})
        self.metrics.append(dict(metrics))
        self.token_ids.append(snapshot.token_id.copy())


def _train(tmp_path, datamodule, bert_config, *, lr: float, reducer: str, frame: str, epochs: int = 3, seed: int = 0):
    pl.seed_everything(seed)
    recorder = CoordinateRecorder()
    callback = EmbeddingDriftCallback(sinks=[recorder], reducer=reducer, frame=frame, max_tokens=240,
                                      label_names=LABEL_NAMES, seed=seed, background=False)
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES), lr=lr)
    pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=epochs, limit_train_batches=4), callbacks=[callback]).fit(
        model, datamodule)
    return recorder


def _displacements(recorder: CoordinateRecorder, view: str) -> list[np.ndarray]:
    for ids in recorder.token_ids[1:]:
        assert np.array_equal(ids, recorder.token_ids[0])
    clouds = [c[view] for c in recorder.coords]
    return [np.linalg.norm(b - a, axis=1) / extent(a) for a, b in zip(clouds, clouds[1:])]


@pytest.mark.parametrize(("reducer", "frame"), [("pca", "procrustes"), ("pca", "fixed"), ("umap", "procrustes"),
                                                ("tsne", "warm")])
def test_null_drift_frozen_weights_do_not_move_the_cloud(tmp_path, datamodule, bert_config, reducer, frame):
    recorder = _train(tmp_path, datamodule, bert_config, lr=0.0, reducer=reducer, frame=frame)
    for view in ("hidden", "emissions"):
        for moved in _displacements(recorder, view):
            assert moved.max() < 1e-5
    for metrics in recorder.metrics[1:]:
        assert metrics["hidden/cka_prev"] == pytest.approx(1.0, abs=1e-6)
        assert metrics["hidden/displacement_mean"] == pytest.approx(0.0, abs=1e-6)
        assert metrics["prediction_change"] == 0.0


@pytest.mark.parametrize(("reducer", "frame"), [("pca", "procrustes"), ("pca", "fixed"), ("umap", "fixed"),
                                                ("tsne", "fixed")])
def test_continuity_tiny_learning_rate_moves_the_aligned_cloud_little(tmp_path, datamodule, bert_config, reducer, frame):
    recorder = _train(tmp_path, datamodule, bert_config, lr=1e-6, reducer=reducer, frame=frame)
    for view in ("hidden", "emissions"):
        for moved in _displacements(recorder, view):
            print(f"{reducer}-{frame} {view}: mean displacement {moved.mean():.2e} of the extent")
            assert 0 < moved.mean() < 0.05  # the model did change, a little; the picture follows it


def test_same_seed_same_coordinates(tmp_path, datamodule, bert_config):
    a = _train(tmp_path / "a", datamodule, bert_config, lr=1e-3, reducer="pca", frame="procrustes", epochs=2)
    b = _train(tmp_path / "b", datamodule, bert_config, lr=1e-3, reducer="pca", frame="procrustes", epochs=2)
    for ca, cb in zip(a.coords, b.coords):
        for view in ca:
            assert np.array_equal(ca[view], cb[view])

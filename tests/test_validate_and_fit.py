"""Every validation is its own snapshot: baseline `validate()` runs before `fit`, mid-epoch validation
(`val_check_interval`), several validation dataloaders; one recording for all of a callback's runs."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
from conftest import trainer_kwargs
from outside_model import TwoLoaderTagger, TwoValidationLoaders, UserCrfTagger
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.sinks import RerunSink
from lightning_ner_viz.snapshot import loader_of


def test_two_baselines_then_fit_go_to_one_recording_and_keep_fits_epochs(tmp_path, bert_config, datamodule):
    callback = EmbeddingDriftCallback(sinks=[RerunSink("emb.rrd")], max_tokens=60, label_names=LABEL_NAMES)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=3, limit_train_batches=2), callbacks=[callback])
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    for _ in range(2):
        trainer.validate(model, datamodule=datamodule, verbose=False)
    assert callback.captured_epochs == [] and len(callback.captured_snapshots) == 2

    trainer.fit(model, datamodule=datamodule)
    callback.wait()

    names = callback.captured_snapshots
    assert names[:2] == ["validate=00-step=0000000", "validate=01-step=0000000"]
    assert callback.captured_epochs == callback.logged_epochs == [0, 1, 2]  # fit's own epochs, none hidden
    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert [s.key.name for s in snapshots] == names
    baselines, fitted = snapshots[:2], snapshots[2:]
    assert all(s.stage == "validate" and s.key.is_baseline and s.label.startswith("baseline") for s in baselines)
    assert [s.epoch for s in fitted] == [0, 1, 2] and all(s.stage == "fit" for s in fitted)
    steps = [s.step for s in fitted]
    assert steps == sorted(set(steps)) and steps[0] > 0  # all trained, each at its own step
    # the baseline (untrained) and fit's first epoch differ: epoch 0 is not the untrained model
    assert not np.allclose(baselines[0].views["hidden"], fitted[0].views["hidden"])

    files = sorted(p.name for p in (tmp_path / "ner_viz").glob("*.rrd"))
    assert files == ["emb.rrd"]  # one recording for the two validate() calls and the fit
    clouds = read_rrd(tmp_path / "ner_viz" / "emb.rrd")["/embeddings/hidden"]
    assert sorted(row["step"] for row in clouds) == [0, 0, *steps]
    assert sorted(row["validate"] for row in clouds if row.get("validate") is not None) == [0, 1]
    assert sorted(row["epoch"] for row in clouds if row.get("epoch") is not None) == [-1, -1, 0, 1, 2]  # baselines


def test_mid_epoch_validation_gives_one_snapshot_per_validation(tmp_path, fit_with_callback):
    _, callback = fit_with_callback(epochs=2, max_pending=None,
                                    trainer={"limit_train_batches": 4, "val_check_interval": 0.5})
    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert [s.epoch for s in snapshots] == [0, 0, 1, 1]
    assert len({s.step for s in snapshots}) == 4 and [s.step for s in snapshots] == [2, 4, 6, 8]
    assert callback.captured_epochs == [0, 1] and len(callback.captured_snapshots) == 4


def test_every_n_val_runs_thins_mid_epoch_validations(tmp_path, fit_with_callback):
    fit_with_callback(epochs=2, every_n_val_runs=2, max_pending=None,
                      trainer={"limit_train_batches": 4, "val_check_interval": 0.5})
    assert [(s.epoch, s.step) for s in load_snapshots(tmp_path / "ner_viz")] == [(0, 2), (1, 6)]


def test_every_n_val_runs_must_be_positive():
    with pytest.raises(ValueError, match="every_n_val_runs"):
        EmbeddingDriftCallback(every_n_val_runs=0)
    with pytest.raises(ValueError, match="dataloader_idx"):
        EmbeddingDriftCallback(dataloader_idx="first")


def test_all_validation_loaders_are_captured_without_colliding_ids(tmp_path, fit_with_callback, bert_config,
                                                                    datamodule):
    model = TwoLoaderTagger(bert_config, num_tags=len(LABEL_NAMES))
    data = TwoValidationLoaders(datamodule, second_rows=40)  # 80 titles, then the first 40 of them again
    fit_with_callback(model=model, data=data, epochs=1, max_tokens=400, dataloader_idx="all")
    (snapshot,) = load_snapshots(tmp_path / "ner_viz")
    loaders = loader_of(snapshot.sentence_id)
    assert set(loaders.tolist()) == {0, 1}
    assert len(np.unique(snapshot.token_id)) == len(snapshot)  # one title in both loaders: two ids
    assert (snapshot.sentence_id[loaders == 1] & 0xFFFFFFFF).max() < 40
    assert snapshot.stats["tokens_seen"] > 0


def test_one_chosen_loader_is_captured(tmp_path, fit_with_callback, bert_config, datamodule):
    model = TwoLoaderTagger(bert_config, num_tags=len(LABEL_NAMES))
    with pytest.warns(NerVizWarning, match="Validation dataloader 0 is not captured: only dataloader_idx=1"):
        fit_with_callback(model=model, data=TwoValidationLoaders(datamodule, second_rows=40), epochs=1,
                          dataloader_idx=1)
    (snapshot,) = load_snapshots(tmp_path / "ner_viz")
    assert set(loader_of(snapshot.sentence_id).tolist()) == {1}

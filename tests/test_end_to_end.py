"""The foundation's done-when: a user's BERT+CRF LightningModule, 3 epochs, read back from disk."""

from __future__ import annotations

import json
import pickle

import lightning.pytorch as pl
import numpy as np
import pytest
from conftest import trainer_kwargs
from outside_model import UserCrfTagger
from rrd_reading import read_rrd
from wandb_reading import history, run_dir

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.capture.sampling import stratified_quotas
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.sinks import RerunSink, WandbSink

MAX_TOKENS = 800
FULL_EPOCHS = {"limit_train_batches": 1.0}  # train on every batch, as a user's run would


def test_rerun_recording_has_one_cloud_per_epoch_and_view(tmp_path, fit_with_callback, datamodule, bert_config):
    rrd = tmp_path / "out" / "emb.rrd"
    fit_with_callback(sinks=[RerunSink(path=rrd)], max_tokens=MAX_TOKENS, tokenizer=datamodule.tokenizer,
                      epochs=3, trainer=FULL_EPOCHS | {"num_sanity_val_steps": 2})

    rows = read_rrd(rrd)
    for view in ("hidden", "emissions"):
        clouds = rows[f"/embeddings/{view}"]
        assert [r["epoch"] for r in clouds] == [0, 1, 2]  # sanity-check validation was skipped
        sizes = {len(r["Points3D:positions"]) for r in clouds}
        assert len(sizes) == 1 and 0 < sizes.pop() <= MAX_TOKENS
        for cloud in clouds:
            assert len(cloud["Points3D:class_ids"]) == len(cloud["Points3D:positions"])
            assert set(cloud["Points3D:class_ids"]) <= set(range(len(LABEL_NAMES)))
            assert len(set(cloud["Points3D:class_ids"])) == len(LABEL_NAMES)  # stratified: every label shown
            assert cloud["token"][0] and cloud["gold"][0] in LABEL_NAMES
        assert clouds[0]["token_id"] == clouds[2]["token_id"]  # the same tokens every epoch
        paths = rows[f"/embeddings/{view}/trajectories"]  # one path per followed token, growing
        assert [(r["epoch"], len(r["LineStrips3D:strips"][0])) for r in paths] == [(1, 2), (2, 3)]
        assert len(paths[-1]["LineStrips3D:strips"]) == 200
        errors = rows[f"/embeddings/{view}/errors"]
        assert [r["epoch"] for r in errors] == [0, 1, 2]
        assert all(g != p for r in errors for g, p in zip(r["gold"], r["predicted"]))
    entities = [r for r in rows["/embeddings/entities"] if "epoch" in r]  # one point per gold entity span
    assert [r["epoch"] for r in entities] == [0, 1, 2]
    assert entities[0]["text"] == entities[2]["text"] and all(entities[0]["text"])
    assert set(entities[0]["gold"]) == {"BRAND", "TYPE", "FLAVOR", "PERCENT", "VOLUME"}
    entity_context = next(r for r in rows["/embeddings/entities"] if "AnnotationContext:context" in r)
    assert {c["class_description"]["info"]["label"] for c in entity_context["AnnotationContext:context"][0]} == {
        "O", "BRAND", "TYPE", "FLAVOR", "PERCENT", "VOLUME"}
    assert [r["epoch"] for r in rows["/embeddings/metrics/entities/knn_purity"]] == [0, 1, 2]
    context = rows["/"][0]["AnnotationContext:context"][0]
    names = {c["class_id"]: c["class_description"]["info"]["label"] for c in context}
    assert [names[i] for i in range(len(LABEL_NAMES))] == LABEL_NAMES
    for metric in ("hidden/cka_prev", "hidden/displacement_mean", "emissions/cka_first", "prediction_change"):
        values = rows[f"/embeddings/metrics/{metric}"]
        assert [r["epoch"] for r in values] == [1, 2]  # drift needs a previous epoch
    for metric in ("hidden/knn_purity", "hidden/silhouette", "hidden/trustworthiness", "entity_f1"):
        assert [r["epoch"] for r in rows[f"/embeddings/metrics/{metric}"]] == [0, 1, 2]
    cka = rows["/embeddings/metrics/hidden/cka_prev"][0]["Scalars:scalars"][0]
    assert 0.0 < cka <= 1.0 + 1e-6
    summaries = rows["/embeddings/summary"]
    assert len(summaries) == 3 and "sampled tokens" in summaries[0]["TextDocument:text"][0]

    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert [s.epoch for s in snapshots] == [0, 1, 2]
    crf_pred = snapshots[-1].pred
    assert crf_pred.min() >= 0  # predictions came from CRF.decode
    assert snapshots[0].views["hidden"].shape[1] == bert_config.hidden_size
    assert snapshots[0].views["emissions"].shape[1] == len(LABEL_NAMES)


def test_wandb_offline_run_has_tables_and_plots_per_epoch(tmp_path, fit_with_callback, bert_config):
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="ner-viz-test", save_dir=str(tmp_path), offline=True)
    fit_with_callback(sinks=[WandbSink()], max_tokens=MAX_TOKENS, epochs=3, trainer=FULL_EPOCHS | {"logger": logger})
    logger.experiment.finish()

    run = run_dir(tmp_path)
    rows = [r for r in history(run) if "ner_viz/epoch" in r]
    assert [r["ner_viz/epoch"] for r in rows] == [0, 1, 2]
    for row in rows:
        for view in ("hidden", "emissions"):
            table = json.loads((run / "files" / row[f"ner_viz/{view}/table"]["path"]).read_text())
            assert table["columns"][:7] == ["token_id", "token", "word", "sentence_id", "gold", "predicted", "correct"]
            assert 0 < len(table["data"]) <= MAX_TOKENS
            embedding = table["data"][0][table["columns"].index("embedding")]
            assert len(embedding) == (bert_config.hidden_size if view == "hidden" else len(LABEL_NAMES))
            plot = json.loads((run / "files" / row[f"ner_viz/{view}/scatter"]["path"]).read_text())
            names = {trace["name"] for trace in plot["data"]}
            assert names == set(LABEL_NAMES)
        assert 0.0 <= row["ner_viz/sample_accuracy"] <= 1.0
        assert 0.0 <= row["ner_viz/hidden/knn_purity"] <= 1.0
        entity_table = json.loads((run / "files" / row["ner_viz/entities/table"]["path"]).read_text())
        assert {r[entity_table["columns"].index("gold")] for r in entity_table["data"]} <= {
            "BRAND", "TYPE", "FLAVOR", "PERCENT", "VOLUME"}
    assert [("ner_viz/hidden/cka_prev" in r, "ner_viz/entity_f1" in r) for r in rows] == [(False, True), (True, True), (True, True)]


def test_callback_and_sinks_pickle_before_fit(tmp_path):
    callback = EmbeddingDriftCallback(sinks=[RerunSink(path=tmp_path / "x.rrd"), WandbSink()])
    clone = pickle.loads(pickle.dumps(callback))
    assert repr(clone.sinks[0]) == repr(callback.sinks[0])


def test_sanity_check_and_every_n_epochs(tmp_path, fit_with_callback):
    _, callback = fit_with_callback(every_n_epochs=2, max_tokens=100, epochs=4, trainer={"num_sanity_val_steps": 2})
    assert callback.captured_epochs == [0, 2]
    assert [s.epoch for s in load_snapshots(tmp_path / "ner_viz")] == [0, 2]


def test_hooks_are_removed_after_validation_and_on_exception(fit_with_callback, bert_config):
    class Boom(UserCrfTagger):
        def validation_step(self, batch, batch_idx):
            if batch_idx == 1:
                raise RuntimeError("boom")
            return super().validation_step(batch, batch_idx)

    model = Boom(bert_config, num_tags=len(LABEL_NAMES))
    with pytest.raises(RuntimeError, match="boom"):
        fit_with_callback(model=model, epochs=1, max_tokens=50)
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    assert hooks == 0


def test_same_tokens_whatever_the_batch_size(tmp_path, datamodule, bert_config, examples, tokenizer):
    from lightning_ner_viz.demo.datamodule import NerDataModule

    picked = []
    for batch_size in (4, 32):
        data = NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=batch_size)
        callback = EmbeddingDriftCallback(sinks=[], max_tokens=300, label_names=LABEL_NAMES, seed=7)
        pl.seed_everything(0)
        model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
        out = tmp_path / f"bs{batch_size}"
        pl.Trainer(**trainer_kwargs(out, max_epochs=1), callbacks=[callback]).validate(model, data)
        picked.append(load_snapshots(out / "ner_viz")[0])
    assert np.array_equal(picked[0].token_id, picked[1].token_id)
    assert len(picked[0]) == 300
    # stratified: every label gets an equal share of the 300, and what a rare label cannot fill goes to the others
    available = np.bincount([label for row in datamodule.val_rows for label in row["labels"] if label >= 0],
                            minlength=len(LABEL_NAMES))
    counts = np.bincount(picked[0].gold, minlength=len(LABEL_NAMES))
    assert counts.min() > 0 and counts.tolist() == stratified_quotas(available, 300).tolist()

"""Bad input: each case raises or warns saying what was wrong and what to do."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from outside_model import TwoLoaderTagger, TwoValidationLoaders, UserCrfTagger
from torch.utils.data import DataLoader

from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.demo.datamodule import collate


@pytest.fixture()
def model(bert_config):
    return UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))


class Rows(pl.LightningDataModule):
    def __init__(self, train_rows, val_rows, transform=None) -> None:
        super().__init__()
        self.train_rows, self.val_rows, self.transform = train_rows, val_rows, transform

    def train_dataloader(self):
        return DataLoader(self.train_rows, batch_size=8, collate_fn=collate)

    def val_dataloader(self):
        rows = self.transform(self.trainer, self.val_rows) if self.transform else self.val_rows
        return DataLoader(rows, batch_size=8, collate_fn=collate)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_components": 4}, "n_components must be 2 or 3"),
    ({"max_tokens": 0}, "max_tokens must be a positive int"),
    ({"reducer": "umapp"}, r"not one of \['pca', 'tsne', 'umap'\]"),
    ({"every_n_epochs": 0}, "every_n_epochs"),
])
def test_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmbeddingDriftCallback(**kwargs)


def test_unknown_module_suggests_the_closest(fit_with_callback):
    with pytest.raises(ValueError, match=r"hidden_module='backbone.encodr'.*Did you mean.*'backbone.encoder'"):
        fit_with_callback(epochs=1, hidden_module="backbone.encodr")


def test_module_without_per_token_output_says_which(fit_with_callback, model):
    model.backbone.pool = torch.nn.Identity()
    original = model.forward

    def forward(input_ids, attention_mask):
        model.backbone.pool(torch.zeros(input_ids.shape[0], 4))  # (batch, dim): no token axis
        return original(input_ids, attention_mask)

    model.forward = forward
    with pytest.raises(ValueError, match=r"'backbone.pool' has no per-token tensor"):
        fit_with_callback(model=model, epochs=1, hidden_module="backbone.pool")


def test_batches_without_labels_explain_batch_adapter(fit_with_callback, bert_config, datamodule):
    class NoLabels(Rows):
        def val_dataloader(self):
            return DataLoader(self.val_rows, batch_size=8,
                              collate_fn=lambda b: {k: v for k, v in collate(b).items() if k != "labels"})

    class Tagger(UserCrfTagger):
        def validation_step(self, batch, batch_idx):
            self(batch["input_ids"], batch["attention_mask"])

    tagger = Tagger(bert_config, num_tags=len(LABEL_NAMES))
    with pytest.raises(ValueError, match="batch_adapter"):
        fit_with_callback(model=tagger, data=NoLabels(datamodule.train_rows, datamodule.val_rows), epochs=1)


def test_label_names_that_do_not_match_emissions(fit_with_callback):
    with pytest.raises(ValueError, match=r"label_names has 3 names but 'head.1' outputs 11 columns"):
        fit_with_callback(epochs=1, label_names=["O", "B-X", "I-X"])


def test_all_tokens_ignored_warns_and_logs_nothing(tmp_path, fit_with_callback, datamodule):
    ignored = [dict(r, labels=[-100] * len(r["labels"])) for r in datamodule.val_rows]
    with pytest.warns(NerVizWarning, match="no valid validation token"):
        _, callback = fit_with_callback(data=Rows(datamodule.train_rows, ignored), epochs=1)
    assert callback.logged_epochs == []
    assert not (tmp_path / "ner_viz").exists()


def test_empty_validation_set_warns(fit_with_callback, datamodule):
    with pytest.warns(NerVizWarning, match="No validation epoch was captured"):
        fit_with_callback(data=Rows(datamodule.train_rows, []), epochs=1)


def test_nan_hidden_states_are_filtered_counted_and_reported(tmp_path, fit_with_callback, model):
    def poison(module, _inputs, output):
        if not module.training:  # validation only: NaN in training would poison the weights
            output.last_hidden_state[0, 1:3] = float("nan")  # two tokens of each batch's first row
        return output

    model.backbone.register_forward_hook(poison)
    with pytest.warns(NerVizWarning, match="NaN or Inf"):
        fit_with_callback(model=model, epochs=1, max_tokens=2000)
    snap = load_snapshots(tmp_path / "ner_viz")[0]
    assert snap.stats["nonfinite_filtered"] > 0
    assert np.isfinite(snap.views["hidden"]).all()


def test_too_few_tokens_for_umap_fall_back_to_pca(fit_with_callback):
    with pytest.warns(NerVizWarning, match="falls back to PCA"):
        _, callback = fit_with_callback(epochs=1, reducer="umap", max_tokens=8, background=False)
    assert callback.captured_epochs == [0]


def _changing_rows(datamodule, grows: bool) -> Rows:
    """Validation rows that grow (half of them at epoch 0, then all) or shrink (all, then half)."""
    def rows(trainer, val_rows):
        half = trainer.current_epoch == 0 if grows else trainer.current_epoch > 0
        return val_rows[: len(val_rows) // 2] if half else val_rows

    return Rows(datamodule.train_rows, datamodule.val_rows, transform=rows)


def test_validation_set_that_shrinks_keeps_the_intersection(tmp_path, fit_with_callback, datamodule):
    with pytest.warns(NerVizWarning, match=r"only \d+ of the 200 tracked tokens were seen"):
        fit_with_callback(data=_changing_rows(datamodule, grows=False), max_tokens=200,
                          trainer={"reload_dataloaders_every_n_epochs": 1})
    first, second = load_snapshots(tmp_path / "ner_viz")
    assert 0 < len(second) < len(first)
    assert set(second.token_id.tolist()) <= set(first.token_id.tolist())


@pytest.mark.parametrize("background", [True, False])
def test_gold_labels_out_of_range_stop_the_fit_with_the_fix(fit_with_callback, background):
    """The check runs in the capture thread (or inline): either way the fit raises the same clear error."""
    def shifted(batch):  # the model trains on the right labels; the callback is told wrong ones
        return {**batch, "labels": torch.where(batch["labels"] >= 0, batch["labels"] + 20, batch["labels"])}

    with pytest.raises(ValueError, match=r"Gold labels must be in \[0, 11\).*Check `label_names`"):
        fit_with_callback(epochs=1, batch_adapter=shifted, background=background)


def test_validation_set_that_grows_keeps_every_tracked_token(tmp_path, fit_with_callback, datamodule):
    """New sentences would outrank some tracked tokens in a fresh sample; the tracked ones are kept anyway."""
    # NerVizWarning is an error here: no "only N of the tracked tokens" warning
    fit_with_callback(data=_changing_rows(datamodule, grows=True), max_tokens=200,
                      trainer={"reload_dataloaders_every_n_epochs": 1})
    first, second = load_snapshots(tmp_path / "ner_viz")
    assert len(first) == 200 and np.array_equal(first.token_id, second.token_id)
    assert second.stats["tokens_seen"] > 1.5 * first.stats["tokens_seen"]


def test_a_second_validation_dataloader_is_ignored_with_one_warning(tmp_path, fit_with_callback, bert_config,
                                                                    datamodule):
    model = TwoLoaderTagger(bert_config, num_tags=len(LABEL_NAMES))
    with pytest.warns(NerVizWarning, match="Validation dataloader 1 is not captured") as record:
        _, callback = fit_with_callback(model=model, data=TwoValidationLoaders(datamodule), epochs=2)
    assert sum("dataloader 1" in str(w.message) for w in record) == 1  # once, not per batch or epoch
    assert callback.captured_epochs == [0, 1]

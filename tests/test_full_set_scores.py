"""The confusion matrix and span errors count every labelled validation token, not the sample (#13)."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import trainer_kwargs
from outside_model import UserCrfTagger
from seqeval.metrics import f1_score
from test_ddp import OddExamplesIgnored

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.analysis.span_errors import SpanCounter
from lightning_ner_viz.demo.data import LABEL_NAMES


def _plain_loop(model: UserCrfTagger, loader) -> tuple[np.ndarray, SpanCounter, list[list[str]], list[list[str]]]:
    """Every labelled validation token, counted one by one with the model's own CRF decode."""
    n = len(LABEL_NAMES)
    confusion, spans, gold_tags, pred_tags = np.zeros((n, n), dtype=np.int64), SpanCounter(LABEL_NAMES), [], []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            emissions = model(batch["input_ids"], batch["attention_mask"])
            paths = model.crf.decode(emissions, mask=batch["attention_mask"].bool())
            for labels, path in zip(batch["labels"].tolist(), paths):
                pairs = [(g, p) for g, p in zip(labels, path) if g != -100]
                for g, p in pairs:
                    confusion[g, p] += 1
                gold, pred = np.array([g for g, _ in pairs]), np.array([p for _, p in pairs])
                spans.add(gold, pred)
                gold_tags.append([LABEL_NAMES[i] for i in gold])
                pred_tags.append([LABEL_NAMES[i] for i in pred])
    return confusion, spans, gold_tags, pred_tags


def test_confusion_and_spans_cover_the_whole_validation_set(tmp_path, fit_with_callback, datamodule):
    trainer, _ = fit_with_callback(epochs=1, max_tokens=30, torch_seed=0)
    (snapshot,) = load_snapshots(tmp_path / "ner_viz")
    confusion, spans, gold_tags, pred_tags = _plain_loop(trainer.lightning_module, datamodule.val_dataloader())
    assert len(snapshot) == 30 and confusion.sum() > 20 * len(snapshot)  # the whole set, not the sample
    np.testing.assert_array_equal(snapshot.confusion, confusion)
    np.testing.assert_array_equal(snapshot.span_counts, spans.counts)
    assert snapshot.span_types == spans.types and len(spans.types) == (len(LABEL_NAMES) - 1) // 2

    from lightning_ner_viz.analysis.epoch_metrics import full_set_metrics

    metrics = full_set_metrics(snapshot)
    assert metrics["entity_f1"] == pytest.approx(f1_score(gold_tags, pred_tags))
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())


def _validate(root, rows, config, devices: int) -> np.ndarray:
    torch.manual_seed(0)
    model = UserCrfTagger(config, num_tags=len(LABEL_NAMES))
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=40, label_names=LABEL_NAMES)
    strategy = "ddp_spawn" if devices > 1 else "auto"
    trainer = pl.Trainer(**trainer_kwargs(root, devices=devices, strategy=strategy), callbacks=[callback])
    trainer.validate(model, OddExamplesIgnored(rows, ignore_odd=False), verbose=False)
    (snapshot,) = load_snapshots(root / "ner_viz")
    return np.concatenate([snapshot.confusion.ravel(), snapshot.span_counts.ravel()])


def test_two_ranks_with_uneven_shards_count_what_one_process_counts(tmp_path, datamodule, bert_config):
    rows = datamodule.val_rows[:61]  # odd: DistributedSampler pads rank 1 with a duplicate, which is not counted
    one = _validate(tmp_path / "one", rows, bert_config, 1)
    two = _validate(tmp_path / "two", rows, bert_config, 2)
    assert one[: len(LABEL_NAMES) ** 2].sum() == sum(sum(1 for x in r["labels"] if x != -100) for r in rows)
    np.testing.assert_array_equal(one, two)

"""DDP with 2 CPU processes (ddp_spawn, gloo): uneven shards, an empty rank, same tokens as 1 process."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from conftest import trainer_kwargs
from outside_model import UserCrfTagger
from rrd_reading import read_rrd
from torch.utils.data import DataLoader

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.demo.datamodule import collate
from lightning_ner_viz.sinks import RerunSink


class OddExamplesIgnored(pl.LightningDataModule):
    """Validation rows at odd indices have every label -100, so under 2-rank DDP
    (DistributedSampler gives rank 1 the odd indices) rank 1 contributes no token.
    The validation set has an odd length, so the shards are uneven too."""

    def __init__(self, rows, ignore_odd: bool) -> None:
        super().__init__()
        self.rows = [dict(r, labels=[-100] * len(r["labels"])) if ignore_odd and i % 2 else r for i, r in enumerate(rows)]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.rows, batch_size=8, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.rows, batch_size=8, collate_fn=collate)


def _run(tmp_path, datamodule, bert_config, strategy: str, devices: int, ignore_odd: bool):
    rows = datamodule.val_rows[:61]
    torch.manual_seed(0)
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    rrd = tmp_path / "emb.rrd"
    callback = EmbeddingDriftCallback(sinks=[RerunSink(path=rrd)], max_tokens=150, label_names=LABEL_NAMES, seed=3)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, strategy=strategy, devices=devices,
                                          limit_train_batches=2), callbacks=[callback])
    trainer.fit(model, OddExamplesIgnored(rows, ignore_odd))
    return load_snapshots(tmp_path / "ner_viz"), read_rrd(rrd)


def test_ddp_spawn_with_an_empty_rank_matches_single_process(tmp_path, datamodule, bert_config):
    single, _ = _run(tmp_path / "single", datamodule, bert_config, "auto", 1, ignore_odd=True)
    ddp, rows = _run(tmp_path / "ddp", datamodule, bert_config, "ddp_spawn", 2, ignore_odd=True)
    assert [s.epoch for s in ddp] == [0, 1]
    assert np.array_equal(single[0].token_id, ddp[0].token_id)  # the same tracked set as one process
    assert np.array_equal(ddp[0].token_id, ddp[1].token_id)
    assert (ddp[0].sentence_id % 2 == 0).all()  # rank 1 (odd rows) had nothing
    assert len(rows["/embeddings/hidden"]) == 2  # rank zero alone logged


def test_ddp_spawn_uneven_shards_gather_both_ranks(tmp_path, datamodule, bert_config):
    ddp, _ = _run(tmp_path, datamodule, bert_config, "ddp_spawn", 2, ignore_odd=False)
    sentences = set(ddp[0].sentence_id.tolist())
    assert any(s % 2 for s in sentences) and any(s % 2 == 0 for s in sentences)
    assert max(sentences) < 61  # DistributedSampler's padding duplicates were dropped
    assert len(set(ddp[0].token_id.tolist())) == len(ddp[0])

"""DDP with 2 CPU processes (ddp_spawn, gloo): uneven shards, an empty rank, same tokens as 1 process."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from rrd_reading import read_rrd
from torch.utils.data import DataLoader

from lightning_ner_viz import load_snapshots
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


def _run(fit_with_callback, root, datamodule, strategy: str, devices: int, ignore_odd: bool):
    """Fit on 61 validation rows with a Rerun sink; the saved snapshots and the recording."""
    rrd = root / "emb.rrd"
    fit_with_callback(root=root, data=OddExamplesIgnored(datamodule.val_rows[:61], ignore_odd), torch_seed=0,
                      trainer={"strategy": strategy, "devices": devices},
                      sinks=[RerunSink(path=rrd)], max_tokens=150, seed=3)
    return load_snapshots(root / "ner_viz"), read_rrd(rrd)


def test_ddp_spawn_with_an_empty_rank_matches_single_process(tmp_path, fit_with_callback, datamodule):
    single, _ = _run(fit_with_callback, tmp_path / "single", datamodule, "auto", 1, ignore_odd=True)
    ddp, rows = _run(fit_with_callback, tmp_path / "ddp", datamodule, "ddp_spawn", 2, ignore_odd=True)
    assert [s.epoch for s in ddp] == [0, 1]
    assert np.array_equal(single[0].token_id, ddp[0].token_id)  # the same tracked set as one process
    assert np.array_equal(ddp[0].token_id, ddp[1].token_id)
    assert (ddp[0].sentence_id % 2 == 0).all()  # rank 1 (odd rows) had nothing
    assert len(rows["/embeddings/hidden"]) == 2  # rank zero alone logged


def test_ddp_spawn_uneven_shards_gather_both_ranks(tmp_path, fit_with_callback, datamodule):
    ddp, _ = _run(fit_with_callback, tmp_path, datamodule, "ddp_spawn", 2, ignore_odd=False)
    sentences = set(ddp[0].sentence_id.tolist())
    assert any(s % 2 for s in sentences) and any(s % 2 == 0 for s in sentences)
    assert max(sentences) < 61  # DistributedSampler's padding duplicates were dropped
    assert len(set(ddp[0].token_id.tolist())) == len(ddp[0])


def test_ddp_uneven_shards_write_the_label_issues_of_one_process(tmp_path, fit_with_callback, datamodule, bert_config):
    from outside_model import UserCrfTagger

    from lightning_ner_viz.demo.data import LABEL_NAMES

    for run, strategy, devices in (("ddp", "ddp_spawn", 2), ("single", "auto", 1)):
        torch.manual_seed(0)  # the same weights, never updated (lr 0): only the sharding differs
        fit_with_callback(root=tmp_path / run, model=UserCrfTagger(bert_config, len(LABEL_NAMES), lr=0.0),
                          data=OddExamplesIgnored(datamodule.val_rows[:61], False), epochs=2,
                          trainer={"strategy": strategy, "devices": devices}, max_tokens=50)
    issues = {run: (tmp_path / run / "ner_viz" / "label_issues.csv").read_text() for run in ("ddp", "single")}
    assert issues["ddp"] == issues["single"]
    assert sorted({int(row.split(",")[1]) for row in issues["ddp"].splitlines()[1:]}) == list(range(61))

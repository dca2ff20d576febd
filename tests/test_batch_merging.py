"""Small validation batches are selected together (capture/merging.py): the epoch is the same as one batch at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchcrf import CRF

from lightning_ner_viz.capture.batch import IGNORE_INDEX, TokenBatch
from lightning_ner_viz.capture.collector import EpochCollector
from lightning_ner_viz.capture.dynamics import DynamicsCollector
from lightning_ner_viz.capture.merging import BatchMerger, PendingBatch, merge_batches
from lightning_ner_viz.capture.sentences import UNKNOWN_WORD
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.labels import EntityTypes

N_LABELS = len(LABEL_NAMES)


def _batches(n: int, seed: int) -> list[tuple[TokenBatch, dict[str, torch.Tensor], torch.Tensor]]:
    """Batches of 1-5 rows and 3-11 positions (padded, -100 on special and padding tokens); every other one has
    word ids. Labels follow a BIO-ish pattern so entity spans exist."""
    g = torch.Generator().manual_seed(seed)
    out, first = [], 0
    for b in range(n):
        rows, seq = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(3, 12, (1,), generator=g))
        lengths = torch.randint(2, seq + 1, (rows,), generator=g)
        mask = (torch.arange(seq)[None] < lengths[:, None]).long()
        labels = torch.randint(0, N_LABELS, (rows, seq), generator=g)
        labels[:, 0] = IGNORE_INDEX
        labels[mask == 0] = IGNORE_INDEX
        word_ids = (torch.arange(seq)[None] - 1).expand(rows, seq).clone() if b % 2 else None
        batch = TokenBatch(torch.randint(5, 60, (rows, seq), generator=g) * mask, mask, labels, word_ids)
        outputs = {"hidden": torch.randn(rows, seq, 8, generator=g),
                   "emissions": torch.randn(rows, seq, N_LABELS, generator=g)}
        out.append((batch, outputs, torch.arange(first, first + rows)))
        first += rows
    return out


def _collector(crf: CRF | None) -> EpochCollector:
    return EpochCollector(("hidden", "emissions"), N_LABELS, 40, 0, crf, EntityTypes.from_label_names(LABEL_NAMES),
                          cls_view=True, label_names=LABEL_NAMES,
                          dynamics=DynamicsCollector(N_LABELS, crf, 10_000, 0, set()))


def test_merge_pads_each_batch_with_what_is_never_a_valid_token():
    (a, out_a, ids_a), (b, out_b, ids_b) = _batches(2, seed=3)
    merged, outputs, ids = merge_batches([a, b], [out_a, out_b], [ids_a, ids_b])
    longest = max(a.input_ids.shape[1], b.input_ids.shape[1])
    rows_a = a.input_ids.shape[0]
    assert merged.input_ids.shape == (rows_a + b.input_ids.shape[0], longest)
    assert torch.equal(ids, torch.cat([ids_a, ids_b]))
    for part, rows, seq in ((a, slice(0, rows_a), a.input_ids.shape[1]), (b, slice(rows_a, None), b.input_ids.shape[1])):
        assert torch.equal(merged.labels[rows, :seq], part.labels)
        assert (merged.labels[rows, seq:] == IGNORE_INDEX).all() and (merged.attention_mask[rows, seq:] == 0).all()
        assert not merged.valid[rows, seq:].any()
    assert (merged.word_ids[:rows_a, : a.input_ids.shape[1]] == UNKNOWN_WORD).all()  # a had none
    assert torch.equal(merged.word_ids[rows_a:, : b.input_ids.shape[1]], b.word_ids)
    assert torch.equal(outputs["hidden"][:rows_a, : a.input_ids.shape[1]], out_a["hidden"])
    assert (outputs["hidden"][:rows_a, a.input_ids.shape[1]:] == 0).all()


@pytest.mark.parametrize("with_crf", [False, True])
def test_merged_batches_select_the_same_epoch_as_one_at_a_time(with_crf):
    torch.manual_seed(0)
    crf = CRF(N_LABELS, batch_first=True) if with_crf else None
    batches = _batches(30, seed=1)
    one, merged = _collector(crf), _collector(crf)
    for batch, outputs, ids in batches:
        one.add_batch(batch, outputs, ids)
    for start in range(0, len(batches), 7):  # groups of 7, the last one shorter
        group = batches[start : start + 7]
        merged.add_batch(*merge_batches(*map(list, zip(*group))), batches=len(group))
    a, b = (c.finish(torch.device("cpu"), epoch=0, step=0) for c in (one, merged))
    assert a is not None and b is not None and len(a.tokens["token_id"]) == 40
    assert a.stats == b.stats and a.stats["batches"] == 30
    for name in a.tokens:
        np.testing.assert_array_equal(a.tokens[name], b.tokens[name], err_msg=name)
    assert a.groups.keys() == b.groups.keys() == {"entities", "cls"}
    for group in a.groups:
        for name in a.groups[group]:
            np.testing.assert_allclose(a.groups[group][name], b.groups[group][name], rtol=1e-6, err_msg=f"{group} {name}")
    np.testing.assert_array_equal(a.sentence_table, b.sentence_table)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    np.testing.assert_array_equal(a.span_counts, b.span_counts)
    for name in a.dynamics.rows:
        np.testing.assert_array_equal(a.dynamics.rows[name], b.dynamics.rows[name], err_msg=name)
    for name in a.dynamics.texts:
        np.testing.assert_array_equal(a.dynamics.texts[name], b.dynamics.texts[name], err_msg=name)


def test_merger_hands_over_small_batches_at_the_byte_bound_and_a_large_one_alone():
    batches = [PendingBatch(b, o, 0, 0, None) for b, o, _ in _batches(6, seed=2)]
    size = batches[0].nbytes
    assert size == sum(t.numel() * 4 for t in batches[0].captured.values())
    merger = BatchMerger(max_bytes=10**9)
    assert all(merger.add(b) == [] for b in batches)
    assert merger.take() == batches and merger.take() == []
    alone = BatchMerger(max_bytes=1)
    assert [alone.add(b) for b in batches[:2]] == [[batches[0]], [batches[1]]]

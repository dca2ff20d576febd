"""The sampler: deterministic, stratified, bounded, independent of batching."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_ner_viz.capture.sampling import (
    TokenSampler, bottom_k_per_label, select_final, stratified_quotas, token_priority,
)

PROPERTY = settings(max_examples=60, deadline=None)  # each property test's budget
MAX_TOKENS = st.integers(1, 120)


def _select(token_ids: np.ndarray, labels: np.ndarray, max_tokens: int, num_labels: int, chunks: int, seed: int = 0):
    sampler = TokenSampler(max_tokens, num_labels, seed)
    for ids, labs in zip(np.array_split(token_ids, chunks), np.array_split(labels, chunks)):
        t = torch.as_tensor(ids, dtype=torch.long)
        sampler.update(t, torch.as_tensor(labs, dtype=torch.long), {"value": t.float()[:, None]})
    return select_final(sampler.candidates(), sampler.label_counts, max_tokens)


@PROPERTY
@given(
    labels=st.lists(st.integers(0, 4), min_size=0, max_size=400),
    max_tokens=MAX_TOKENS,
    chunks_a=st.integers(1, 9),
    chunks_b=st.integers(1, 9),
    seed=st.integers(0, 2**31),
)
def test_selection_is_deterministic_bounded_and_valid(labels, max_tokens, chunks_a, chunks_b, seed):
    labels = np.asarray(labels, dtype=np.int64)
    token_ids = np.arange(len(labels), dtype=np.int64) * 7 + 3
    a = _select(token_ids, labels, max_tokens, 5, chunks_a, seed)
    b = _select(token_ids, labels, max_tokens, 5, chunks_b, seed)
    if len(labels) == 0:
        assert a == {} and b == {}
        return
    assert torch.equal(a["token_id"], b["token_id"])  # batching does not matter
    assert len(a["token_id"]) == min(max_tokens, len(labels))  # never more than max_tokens
    assert set(a["token_id"].tolist()) <= set(token_ids.tolist())  # every selected token is real
    assert torch.equal(a["value"][:, 0].long(), a["token_id"])  # columns stay row-aligned
    lookup = dict(zip(token_ids.tolist(), labels.tolist()))
    assert [lookup[t] for t in a["token_id"].tolist()] == a["label"].tolist()
    counts = np.bincount(labels, minlength=5)
    got = np.bincount(a["label"].numpy(), minlength=5)
    assert np.array_equal(got, stratified_quotas(counts, max_tokens))


def test_rare_labels_are_not_drowned():
    labels = np.zeros(10_000, dtype=np.int64)
    labels[:30] = 1  # 0.3% entity tokens
    labels[30:40] = 2
    picked = _select(np.arange(10_000), labels, 100, 3, chunks=20)
    assert np.bincount(picked["label"].numpy(), minlength=3).tolist() == [60, 30, 10]


def test_quotas_share_equally_and_hand_on_what_rare_labels_cannot_use():
    assert stratified_quotas(np.array([1000, 1000, 1000]), 300).tolist() == [100, 100, 100]
    assert stratified_quotas(np.array([1000, 5, 0]), 300).tolist() == [295, 5, 0]
    assert stratified_quotas(np.array([2, 3]), 300).tolist() == [2, 3]


def test_priority_is_stable_and_seed_dependent():
    ids = torch.arange(1000, dtype=torch.long) << 20
    assert torch.equal(token_priority(ids, 0), token_priority(ids.clone(), 0))
    assert not torch.equal(token_priority(ids, 0), token_priority(ids, 1))
    p = token_priority(ids, 0)
    assert p.min() >= 0 and p.max() < 2**32 and len(set(p.tolist())) > 990


def test_memory_stays_bounded_by_max_tokens_in_all():
    sampler = TokenSampler(max_tokens=50, num_labels=11, seed=0)
    for start in range(0, 100_000, 1000):
        ids = torch.arange(start, start + 1000)
        sampler.update(ids, ids % 11, {"v": torch.zeros(1000, 8)})
        held = len(sampler.candidates(cap=10**9)["token_id"])  # every row it holds
        assert held <= 2 * 50 + 1000  # not 2 * max_tokens per label
    assert len(sampler.candidates()["token_id"]) <= 11 * (-(-50 // 11) + 1)  # labels x (equal share + 1)


@PROPERTY
@given(
    weights=st.lists(st.integers(0, 20), min_size=2, max_size=6),
    late=st.integers(0, 5),
    n=st.integers(1, 1500),
    max_tokens=MAX_TOKENS,
    batch=st.integers(1, 200),
)
def test_pruning_never_drops_a_token_the_final_selection_needs(weights, late, n, max_tokens, batch):
    """Skewed labels, one label that only shows up at the end: pruned streaming == selecting from everything."""
    rng = np.random.default_rng(n)
    k = len(weights)
    p = np.asarray(weights, float) + 1e-3
    labels = torch.as_tensor(rng.choice(k, size=n, p=p / p.sum()))
    labels[-min(n, 5 * late):] = late % k  # a burst of one label at the very end
    ids = torch.arange(n) * 7 + 3
    streamed = TokenSampler(max_tokens, k, seed=1)
    for i in range(0, n, batch):
        streamed.update(ids[i:i + batch], labels[i:i + batch], {"v": ids[i:i + batch, None].float()})
    everything = TokenSampler(n + 1, k, seed=1)  # never prunes
    everything.update(ids, labels, {"v": ids[:, None].float()})
    want = select_final(everything.candidates(), everything.label_counts, max_tokens)
    got = select_final(streamed.candidates(), streamed.label_counts, max_tokens)
    assert torch.equal(got["token_id"], want["token_id"])


def test_bottom_k_handles_empty_input():
    empty = torch.zeros(0, dtype=torch.long)
    assert bottom_k_per_label(empty, empty, torch.tensor([3])).numel() == 0


def test_lazy_columns_are_gathered_for_kept_rows_only():
    ids = torch.arange(3000)
    labels = ids % 3
    eager, lazy = TokenSampler(100, 3, 7), TokenSampler(100, 3, 7)
    asked = []

    def columns(kept: torch.Tensor) -> dict[str, torch.Tensor]:
        asked.append(len(kept))
        return {"v": chunk[kept].float()[:, None]}

    for chunk, labs in zip(ids.split(250), labels.split(250)):
        eager.update(chunk, labs, {"v": chunk.float()[:, None]})
        lazy.update(chunk, labs, columns)
    a = select_final(eager.candidates(), eager.label_counts, 100)
    b = select_final(lazy.candidates(), lazy.label_counts, 100)
    assert all(torch.equal(a[k], b[k]) for k in a) and lazy.label_counts.tolist() == [1000, 1000, 1000]
    assert sum(asked) < len(ids) and asked[-1] < 250  # later batches: only the few tokens under the bars

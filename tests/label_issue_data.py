"""Real label-issue reports from hand-made token dynamics: three fit validations of 40 sentences, where the given
labels of a known set of tokens (:data:`WRONG`) disagree with what the model learns, plus hostile text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_ner_viz.analysis.label_issue_report import LabelIssueFinder, LabelIssueReport
from lightning_ner_viz.analysis.token_dynamics import SentenceText, TokenDynamics
from lightning_ner_viz.snapshot import Snapshot, make_token_id
from lightning_ner_viz.store import SnapshotStore

LABELS = ["O", "B-BRAND", "I-BRAND", "B-PROD", "I-PROD"]
N_SENTENCES, LENGTH = 40, 6
NAMES = [f"epoch={e:04d}-step={10 * (e + 1):07d}" for e in range(3)]
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def _records() -> tuple[list[TokenDynamics], np.ndarray]:
    rng = np.random.default_rng(0)
    sid = np.repeat(np.arange(N_SENTENCES), LENGTH - 2)
    pos = np.tile(np.arange(1, LENGTH - 1), N_SENTENCES)  # positions 0 and LENGTH-1 are [CLS] and [SEP]
    ids = make_token_id(sid, pos)
    truth = rng.integers(0, len(LABELS), len(ids))
    given = truth.copy()
    wrong = rng.choice(len(ids), 8, replace=False)
    given[wrong] = (truth[wrong] + 1) % len(LABELS)
    texts = {}
    for s in range(N_SENTENCES):
        words = [f"w{s}_{p}" for p in range(1, LENGTH - 1)]
        if s == 3:
            words[0] = HOSTILE
        if s == 4:
            words[1] = "</script><script>window.__pwned=2</script>"
        texts[s] = SentenceText(["[CLS]", *words, "[SEP]"], [-1, *range(LENGTH - 2), -2 - LENGTH])
    records = []
    for epoch in range(3):
        logits = rng.normal(size=(len(ids), len(LABELS)))
        logits[np.arange(len(ids)), truth] += 1.5 + 2.0 * epoch  # the model learns the truth, not the given label
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        records.append(TokenDynamics(
            token_id=ids, gold=given, pred=probs.argmax(1), gold_prob=probs[np.arange(len(ids)), given],
            other_prob=np.where(np.arange(len(LABELS)) == given[:, None], -1, probs).max(1), probs=probs,
            source="softmax", seen=len(ids), texts=texts if epoch == 0 else {}))
    return records, ids[wrong]


WRONG = _records()[1]
"""Token ids whose given label is wrong."""


def snapshot_of(epoch: int, sample: np.ndarray) -> Snapshot:
    """A minimal sampled snapshot of fit epoch ``epoch`` holding the token ids ``sample``."""
    n = len(sample)
    return Snapshot(epoch=epoch, step=10 * (epoch + 1), token_id=sample, sentence_id=sample >> 20,
                    position=sample & ((1 << 20) - 1), token=["t"] * n, word=["w"] * n, gold=np.zeros(n, np.int64),
                    pred=np.zeros(n, np.int64), views={"hidden": np.zeros((n, 2), np.float32)}, label_names=LABELS)


def write_store(root: Path) -> SnapshotStore:
    """Three fit snapshots' directories, each with its token dynamics (the sampled part is minimal)."""
    store = SnapshotStore(root)
    records, _ = _records()
    for epoch, record in enumerate(records):
        snap = snapshot_of(epoch, record.token_id[::5])
        snap.dynamics = record
        store.save(snap)
    return store


def reports(root: Path) -> list[LabelIssueReport]:
    """The label-issue report of each of the three validations, as the projector makes them."""
    store = write_store(root)
    finder = LabelIssueFinder(store)
    found = []
    for name in NAMES:
        snap = store.load(name)
        report = finder.update(snap)
        assert report is not None
        found.append(report)
    return found

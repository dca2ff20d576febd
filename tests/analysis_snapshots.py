"""Hand-built snapshots with planted structure for the sinks' analysis tests: classes apart, a brand class that
splits into two sub-clusters (``valio`` and ``danone``) after the baseline, a known set of errors, and the
whole-set confusion matrix and span counts."""

from __future__ import annotations

import numpy as np

from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES
from lightning_ner_viz.snapshot import Snapshot

LABELS = ["O", "B-BRAND", "I-BRAND", "B-PROD", "I-PROD"]
TYPES = ["O", "BRAND", "PROD"]
SPAN_TYPES = ["BRAND", "PROD"]
KEYS = [("validate", 0, 0), ("fit", 0, 10), ("fit", 1, 20)]
"""(stage, epoch, step): a baseline, then two fit validations."""
D = 48
_RNG = np.random.default_rng(0)
CENTER = _RNG.normal(size=(len(LABELS), D)) * 3
MODES = _RNG.normal(size=(len(LABELS), 2, D)) * 2
GROUP_CENTER = _RNG.normal(size=(len(TYPES), D)) * 3
GROUP_MODES = _RNG.normal(size=(len(TYPES), 2, D)) * 2

GOLD = np.repeat(np.arange(len(LABELS)), [120, 120, 60, 60, 60])
WORDS = ["the", "milk", "of", "a", "fresh"]
BRAND_WORDS = np.where(np.arange(120) < 60, "valio", "danone")
N_ERRORS = 12
"""The first 12 I-BRAND tokens are predicted B-BRAND, and sit near the B-BRAND class."""


def _words() -> list[str]:
    words = []
    for label, count in zip(range(len(LABELS)), [120, 120, 60, 60, 60]):
        if label == 1:
            words += BRAND_WORDS.tolist()
        else:
            words += [f"{LABELS[label].split('-')[-1].lower()}{i % 7}" if label else WORDS[i % 5] for i in range(count)]
    return words


def make_snapshot(stage: str, epoch: int, step: int) -> Snapshot:
    """One snapshot of the planted data; the brand class has two modes except in the baseline."""
    n = len(GOLD)
    split = stage == "fit"
    mode = np.zeros(n, dtype=np.int64)
    brand = np.flatnonzero(GOLD == 1)
    if split:
        mode[brand[60:]] = 1
    own = np.random.default_rng(7).normal(size=(n, D)) * 0.3
    jitter = np.random.default_rng(100 + step).normal(size=(n, D)) * 0.05
    hidden = CENTER[GOLD] + MODES[GOLD, mode] + own + jitter
    pred = GOLD.copy()
    wrong = np.flatnonzero(GOLD == 2)[:N_ERRORS]
    pred[wrong] = 1
    hidden[wrong] = CENTER[1] + MODES[1, 0] + own[wrong] * 0.5  # attracted to B-BRAND
    words = _words()
    sentence_id = np.arange(n) // 6
    sentences = {int(s): " ".join(words[i] for i in np.flatnonzero(sentence_id == s)) for s in np.unique(sentence_id)}
    snapshot = Snapshot(
        epoch=epoch, step=step, stage=stage, token_id=np.arange(n) * 3 + 1, sentence_id=sentence_id,
        position=np.arange(n) % 6, token=[w[:4] for w in words], word=words, gold=GOLD, pred=pred,
        views={"hidden": hidden.astype(np.float32)}, label_names=LABELS, sentences=sentences,
        confusion=_confusion(pred), span_counts=_span_counts(step), span_types=SPAN_TYPES)
    snapshot.groups = {"entities": _entities(stage, epoch, step, split)}
    return snapshot


def _confusion(pred: np.ndarray) -> np.ndarray:
    counts = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(counts, (GOLD, pred), 10)  # the whole set: ten times the sample
    counts[0, 3] += 7
    return counts


def _span_counts(step: int) -> np.ndarray:
    counts = np.zeros((len(SPAN_TYPES), len(SPAN_CATEGORIES)), dtype=np.int64)
    # correct, wrong_type, wrong_boundary, missed, spurious, gold, predicted
    counts[0] = [100 + step, 5, 12, 3, 2, 120 + step, 119 + step]
    counts[1] = [50, 1, 2, 7, 4, 60, 57]
    return counts


def _entities(stage: str, epoch: int, step: int, split: bool) -> Snapshot:
    gold = np.repeat([1, 2], [80, 40])
    n = len(gold)
    mode = np.where((gold == 1) & (np.arange(n) >= 40) & split, 1, 0)
    own = np.random.default_rng(8).normal(size=(n, D)) * 0.3
    vectors = GROUP_CENTER[gold] + GROUP_MODES[gold, mode] + own
    words = [("valio" if i < 40 else "danone") if g == 1 else f"prod{i % 5}" for i, g in enumerate(gold)]
    sentence_id = np.arange(n) // 2
    return Snapshot(
        epoch=epoch, step=step, stage=stage, token_id=np.arange(n) * 5 + 2, sentence_id=sentence_id,
        position=np.zeros(n, dtype=np.int64), token=words, word=words, gold=gold, pred=gold,
        views={"entities": vectors.astype(np.float32)}, label_names=TYPES,
        sentences={int(s): f"buy {words[2 * s]} today" for s in np.unique(sentence_id)})


def snapshots() -> list[Snapshot]:
    """The three planted snapshots, in logging order."""
    return [make_snapshot(*key) for key in KEYS]


def coords_of(snapshot: Snapshot) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fake projected coordinates (3-D) of the views and of the groups, distinct per row."""
    n = len(snapshot)
    views = {v: np.c_[np.arange(n), GOLD, np.full(n, snapshot.step)].astype(np.float32) for v in snapshot.views}
    groups = {k: np.c_[np.arange(len(g)), g.gold, np.full(len(g), snapshot.step)].astype(np.float32)
              for k, g in snapshot.groups.items()}
    return views, groups


def log_all(sink, snaps: list[Snapshot], analyses: list) -> None:
    """Log each snapshot as the renderer does: ``log_epoch``, ``log_group`` per group, ``log_analysis``; then close."""
    for snapshot, analysis in zip(snaps, analyses):
        views, groups = coords_of(snapshot)
        metrics = {"sample_accuracy": float(snapshot.correct.mean()), "entity_f1": 0.9}
        sink.log_epoch(snapshot, views, metrics)
        for name, group in snapshot.groups.items():
            sink.log_group(name, group, groups[name])
        sink.log_analysis(snapshot, analysis)
    sink.close()

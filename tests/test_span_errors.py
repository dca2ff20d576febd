"""Span-error categories equal nervaluate's on a hand-built example with one of each; F1 equals seqeval's."""

from __future__ import annotations

import numpy as np
import pytest
from nervaluate import Evaluator
from seqeval.metrics import f1_score

from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES, SpanCounter, span_f1, span_metrics

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
GOLD = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-PER", "O", "B-LOC", "I-LOC", "O", "O"]
PRED = ["B-PER", "I-PER", "O", "B-PER", "O", "B-PER", "I-PER", "O", "O", "O", "B-LOC"]
#        correct          wrong type      wrong boundary   missed           spurious


def _ids(tags):
    return np.array([NAMES.index(t) for t in tags])


def test_one_of_each_category_matches_nervaluate():
    counter = SpanCounter(NAMES)
    counter.add(_ids(GOLD), _ids(PRED))
    totals = dict(zip(SPAN_CATEGORIES, counter.counts.sum(0).tolist()))
    assert totals == {"correct": 1, "wrong_type": 1, "wrong_boundary": 1, "missed": 1, "spurious": 1,
                      "gold": 4, "predicted": 4}

    results = Evaluator([GOLD], [PRED], tags=["PER", "LOC"], loader="list").evaluate()
    strict, exact = results["overall"]["strict"], results["overall"]["exact"]
    assert totals["correct"] == strict.correct
    assert totals["wrong_type"] == exact.correct - strict.correct  # right boundaries, wrong type
    assert totals["wrong_boundary"] == strict.incorrect - totals["wrong_type"]
    assert (totals["missed"], totals["spurious"]) == (strict.missed, strict.spurious)
    assert (totals["gold"], totals["predicted"]) == (strict.possible, strict.actual)
    metrics = span_metrics(counter.counts, counter.types)
    assert metrics["entity_f1"] == pytest.approx(strict.f1)
    for kind in ("PER", "LOC"):
        assert metrics[f"entity_f1/{kind}"] == pytest.approx(results["entities"][kind]["strict"].f1)


def test_f1_equals_seqeval_on_random_sentences():
    rng = np.random.default_rng(0)
    counter, gold_tags, pred_tags = SpanCounter(NAMES), [], []
    for _ in range(300):
        n = int(rng.integers(1, 15))
        gold, pred = rng.integers(0, len(NAMES), n), rng.integers(0, len(NAMES), n)
        agree = rng.random(n) < 0.6
        pred[agree] = gold[agree]  # mostly right, as a trained tagger
        counter.add(gold, pred)
        gold_tags.append([NAMES[i] for i in gold])
        pred_tags.append([NAMES[i] for i in pred])
    assert span_f1(counter.counts) == pytest.approx(f1_score(gold_tags, pred_tags))


def test_an_unknown_prediction_reads_as_outside():
    counter = SpanCounter(NAMES)
    counter.add(_ids(["B-PER", "O"]), np.array([-1, -1]))
    assert dict(zip(SPAN_CATEGORIES, counter.counts.sum(0).tolist()))["missed"] == 1


def test_a_padded_batch_counts_what_its_sentences_count():
    rng = np.random.default_rng(1)
    gold, pred = rng.integers(0, len(NAMES), (16, 12)), rng.integers(0, len(NAMES), (16, 12))
    valid = rng.random((16, 12)) < 0.7  # unlabelled positions (subwords, padding) anywhere in a row
    pred[rng.random((16, 12)) < 0.1] = -1
    one_by_one, batched = SpanCounter(NAMES), SpanCounter(NAMES)
    for g, p, keep in zip(gold, pred, valid):
        one_by_one.add(g[keep], p[keep])
    batched.add_batch(gold, pred, valid)
    np.testing.assert_array_equal(batched.counts, one_by_one.counts)

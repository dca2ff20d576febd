"""Rank the labelled validation tokens by how likely their given label is wrong.

Two signals, each per token:

- **cleanlab** (its ``token_classification`` module) on the newest validation's label probabilities: the
  label-quality score (``self_confidence``: the probability of the given label, from
  ``cleanlab.rank.get_label_quality_scores``, which ``token_classification.rank`` applies per token) and
  the verdict ``flagged`` of ``token_classification.filter.find_label_issues`` (confident learning);
- the **training dynamics** over every fit validation so far (:class:`~.token_dynamics.DynamicsHistory`):
  confidence, variability, correctness and the mean margin of the given label over the best other one.

The ranking sorts by :func:`combined_score` (lowest first): cleanlab's quality averaged with the mean margin
mapped to [0, 1]. A label the model kept contradicting, epoch after epoch, ranks above one it doubted only
at the end; benchmarks/label_issues.py measures both rankings against flipped labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from lightning_utilities.core.imports import RequirementCache

from lightning_ner_viz.analysis.token_dynamics import DynamicsHistory, TokenDynamics
from lightning_ner_viz.snapshot import split_token_id


_CLEANLAB_AVAILABLE = RequirementCache("cleanlab>=2.6", "cleanlab")


@dataclass
class LabelIssueRanking:
    """Every token of the newest validation, most suspect first (arrays of equal length).

    Attributes:
        token_id, given, suggested: the token, its given label id and the most probable label id.
        quality: cleanlab's label-quality score (newest validation).
        confidence, variability, correctness, flips: the dynamics over the fit validations so far.
        margin: mean (gold probability - best other probability) over them.
        score: :func:`combined_score`, the sort key.
        flagged: cleanlab's ``find_label_issues`` verdict.
        epochs: validations the token was seen in.
    """

    token_id: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    quality: np.ndarray
    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    flips: np.ndarray
    margin: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    epochs: np.ndarray

    def __len__(self) -> int:
        return len(self.token_id)


def combined_score(quality: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """The ranking's key in [0, 1] (low = suspect): the mean of cleanlab's quality and ``(1 + margin) / 2``."""
    return 0.5 * np.asarray(quality, np.float64) + 0.25 * (1.0 + np.asarray(margin, np.float64))


def cleanlab_scores(token_id: np.ndarray, given: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's per-token label quality and ``find_label_issues`` verdict (tokens grouped by sentence).

    Raises:
        ModuleNotFoundError: naming the ``analysis`` extra when cleanlab is missing.
    """
    if not _CLEANLAB_AVAILABLE:
        raise ModuleNotFoundError(f"{_CLEANLAB_AVAILABLE!s}. Install it with `pip install 'lightning-ner-viz[analysis]'`.")
    from cleanlab.rank import get_label_quality_scores
    from cleanlab.token_classification.filter import find_label_issues
    rows = np.asarray(probs, np.float64)
    rows = rows / np.maximum(rows.sum(1, keepdims=True), 1e-12)
    labels = np.asarray(given, np.int64)
    quality = get_label_quality_scores(labels, rows, method="self_confidence")
    sentences = split_token_id(token_id)[0]
    starts = np.flatnonzero(np.r_[True, sentences[1:] != sentences[:-1]])
    flagged = np.zeros(len(labels), dtype=bool)
    if len(np.unique(labels)) > 1:  # confident learning needs two given classes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "may not flag all issues in class k": rare classes, said in the docs
            found = find_label_issues([list(x) for x in np.split(labels, starts[1:])], np.split(rows, starts[1:]),
                                      n_jobs=1)
        for sentence, position in found:
            flagged[starts[sentence] + position] = True
    return np.asarray(quality, np.float64), flagged


def rank_label_issues(history: DynamicsHistory, newest: TokenDynamics) -> LabelIssueRanking:
    """Rank the tokens of ``newest`` (which must hold its probability rows), most suspect first."""
    if newest.probs is None:
        raise ValueError("The newest validation's label probabilities are missing; they are needed to rank issues.")
    ids = np.asarray(newest.token_id, np.int64)
    quality, flagged = cleanlab_scores(ids, newest.gold, newest.probs)
    at = np.searchsorted(history.token_id, ids)
    margin = history.mean_margin[at]
    score = combined_score(quality, margin)
    order = np.lexsort((ids, score))  # ties by token id: the same order on every machine
    ranking = LabelIssueRanking(
        token_id=ids, given=newest.gold.astype(np.int64), suggested=newest.probs.astype(np.float32).argmax(1),
        quality=quality, confidence=history.confidence[at], variability=history.variability[at],
        correctness=history.correctness[at], flips=history.flips[at], margin=margin, score=score,
        flagged=flagged, epochs=history.epochs[at])
    return LabelIssueRanking(**{k: v[order] for k, v in vars(ranking).items()})


def precision_at_k(ranked_ids: np.ndarray, wrong_ids: np.ndarray, k: int | None = None) -> float:
    """The share of the first ``k`` ranked token ids (default: as many as there are wrong ones) that are wrong."""
    k = len(wrong_ids) if k is None else k
    if k == 0:
        return float("nan")
    return float(np.isin(np.asarray(ranked_ids)[:k], wrong_ids).mean())

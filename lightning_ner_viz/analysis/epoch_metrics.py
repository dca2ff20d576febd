"""Per-epoch metrics of a :class:`~lightning_ner_viz.snapshot.Snapshot`, in numpy and torch only.

:func:`epoch_metrics` gathers the drift metrics (:mod:`lightning_ner_viz.analysis.drift`: CKA, cosine
displacement, centroid shift, prediction change, in the original feature space), the cluster
and projection quality (:mod:`lightning_ner_viz.analysis.quality`: silhouette, kNN purity,
trustworthiness), the sample's accuracy and its entity F1 (:mod:`lightning_ner_viz.analysis.entity_f1`).
Metrics given too few tokens or labels return NaN instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lightning_ner_viz.analysis._checks import NAN
from lightning_ner_viz.analysis.drift import (
    centroid_shift,
    cosine_displacement,
    linear_cka,
    match_tokens,
    prediction_change_rate,
)
from lightning_ner_viz.analysis.entity_f1 import entity_f1
from lightning_ner_viz.analysis.quality import view_quality
from lightning_ner_viz.analysis.span_errors import span_metrics
from lightning_ner_viz.snapshot import Snapshot


def epoch_metrics(
    snapshot: Snapshot,
    coords: Mapping[str, np.ndarray],
    previous: Snapshot | None = None,
    first: Snapshot | None = None,
) -> dict[str, float]:
    """Every metric of one epoch's snapshot, as a flat dict of Python floats.

    Keys: ``n_tokens``, ``sample_accuracy`` and ``sample_entity_f1`` (on the sampled sentences),
    ``accuracy``, ``entity_f1`` (the whole validation set when the snapshot counted it, else the
    sample's), ``entity_f1/<type>`` and ``spans/<category>`` (see :func:`full_set_metrics`),
    ``prediction_change`` and, per view
    ``v``: ``v/cka_prev``, ``v/displacement_mean``, ``v/displacement_median``,
    ``v/centroid_shift/<label>`` (all vs ``previous``, over shared tokens), ``v/cka_first``,
    ``v/silhouette``, ``v/knn_purity`` and ``v/trustworthiness`` (when ``v`` is in ``coords``).
    Keys needing ``previous`` or ``first`` are left out when it is None or lacks the view.

    Args:
        snapshot: this epoch's tokens.
        coords: view name to projected coordinates, arrays of shape (n_tokens, 2 or 3).
        previous: the previous epoch's snapshot.
        first: the first epoch's snapshot.
    """
    known = snapshot.pred >= 0
    sample_f1 = entity_f1(snapshot.sentence_tags, snapshot.label_names)
    out = {
        "n_tokens": float(len(snapshot)),
        "sample_accuracy": float(snapshot.correct[known].mean()) if known.any() else NAN,
        "sample_entity_f1": sample_f1,
        "entity_f1": sample_f1,
    }
    out.update(full_set_metrics(snapshot))
    if previous is not None:
        i_prev, i_cur = match_tokens(previous, snapshot)
        out["prediction_change"] = prediction_change_rate(previous.pred[i_prev], snapshot.pred[i_cur])
    for view, X in snapshot.views.items():
        if previous is not None and view in previous.views:
            a, b = np.asarray(previous.views[view])[i_prev], np.asarray(X)[i_cur]
            out[f"{view}/cka_prev"] = linear_cka(a, b)
            if a.shape == b.shape:
                moved = cosine_displacement(a, b)
                out[f"{view}/displacement_mean"] = float(moved.mean()) if len(moved) else NAN
                out[f"{view}/displacement_median"] = float(np.median(moved)) if len(moved) else NAN
                shifts = centroid_shift(a, b, snapshot.gold[i_cur], snapshot.label_names)
                out.update({f"{view}/centroid_shift/{name}": shift for name, shift in shifts.items()})
        if first is not None and view in first.views:
            i_first, i_now = match_tokens(first, snapshot)
            out[f"{view}/cka_first"] = linear_cka(np.asarray(first.views[view])[i_first], np.asarray(X)[i_now])
        out.update(view_quality(view, X, snapshot.gold, coords.get(view)))
    return {key: float(value) for key, value in out.items()}


def full_set_metrics(snapshot: Snapshot) -> dict[str, float]:
    """Scores over the whole validation set, from the snapshot's counts (empty when it has none):
    ``accuracy`` (token level), ``entity_f1`` and ``entity_f1/<type>`` (span level, as seqeval),
    ``spans/<category>`` (the span-error totals, see :mod:`lightning_ner_viz.analysis.span_errors`)."""
    out: dict[str, float] = {}
    if snapshot.confusion is not None:
        total = int(np.sum(snapshot.confusion))
        out["accuracy"] = float(np.trace(snapshot.confusion) / total) if total else NAN
    if snapshot.span_counts is not None:
        out.update(span_metrics(snapshot.span_counts, snapshot.span_types))
    return out

"""Per-epoch metrics of a :class:`~lightning_ner_viz.snapshot.Snapshot`, in numpy and torch only.

:func:`epoch_metrics` gathers the drift metrics (:mod:`lightning_ner_viz.analysis.drift`: CKA, cosine
displacement, centroid shift, prediction change, in the original feature space), the cluster
and projection quality (:mod:`lightning_ner_viz.analysis.quality`: silhouette, kNN purity,
trustworthiness) and the sample's accuracy and entity F1. Metrics given too few tokens or
labels return NaN instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lightning_ner_viz.analysis.drift import (  # noqa: F401 - re-exported
    centroid_shift, cosine_displacement, linear_cka, match_tokens, prediction_change_rate,
)
from lightning_ner_viz.analysis.quality import (  # noqa: F401 - re-exported
    _CHUNK_BYTES, _MAX_POINTS, knn_purity, silhouette_by_label, trustworthiness, view_quality,
)
from lightning_ner_viz.snapshot import Snapshot

_NAN = float("nan")


def _entities(names: list[str]) -> set[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` of a tag sequence, exactly as seqeval's ``get_entities``."""
    chunks: set[tuple[str, int, int]] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, name in enumerate([*names, "O"]):
        tag, type_ = name[:1] or "O", name[1:].split("-", 1)[-1] or "_"
        type_changed = prev_type != type_
        if prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO") or (prev_tag not in "O." and type_changed):
            chunks.add((prev_type, begin, i - 1))
        if tag in "BS" or (prev_tag in "ESO" and tag in "EI") or (tag not in "O." and type_changed):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_f1(sentence_tags: Mapping[int, tuple[np.ndarray, np.ndarray]], label_names: Sequence[str]) -> float:
    """Entity-level micro F1, as ``seqeval.metrics.f1_score`` in its default (conlleval) mode.

    Args:
        sentence_tags: sentence id to ``(gold, pred)`` label-id arrays of shape (n_labelled_tokens,).
        label_names: label id to BIO name (``B-BRAND``, ``I-BRAND``, ``O``).

    Returns:
        F1 in [0, 1], 0 when there is no entity at all (as seqeval); NaN without sentences or
        when a prediction is unknown (an id outside ``label_names``, such as -1).

    Raises:
        ValueError: when a sentence's gold and pred differ in length or gold is not a label id.
    """
    names = list(label_names)
    tags: tuple[list[str], list[str]] = ([], [])
    for sid, (gold, pred) in sentence_tags.items():
        gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
        if gold.shape != pred.shape or ((gold < 0) | (gold >= len(names))).any():
            raise ValueError(f"Sentence {sid}: gold and pred must be aligned ids into label_names.")
        if ((pred < 0) | (pred >= len(names))).any():
            return _NAN
        for seq, ids in zip(tags, (gold, pred)):
            seq += [names[i] for i in ids] + ["O"]  # seqeval's separator between sentences
    if not sentence_tags:
        return _NAN
    true, found = _entities(tags[0]), _entities(tags[1])
    total = len(true) + len(found)
    return 2.0 * len(true & found) / total if total else 0.0


def epoch_metrics(
    snapshot: Snapshot,
    coords: Mapping[str, np.ndarray],
    previous: Snapshot | None = None,
    first: Snapshot | None = None,
) -> dict[str, float]:
    """Every metric of one epoch's snapshot, as a flat dict of Python floats.

    Keys: ``n_tokens``, ``sample_accuracy``, ``entity_f1``, ``prediction_change`` and, per view
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
    out = {
        "n_tokens": float(len(snapshot)),
        "sample_accuracy": float(snapshot.correct[known].mean()) if known.any() else _NAN,
        "entity_f1": entity_f1(snapshot.sentence_tags, snapshot.label_names),
    }
    if previous is not None:
        i_prev, i_cur = match_tokens(previous, snapshot)
        out["prediction_change"] = prediction_change_rate(previous.pred[i_prev], snapshot.pred[i_cur])
    for view, X in snapshot.views.items():
        if previous is not None and view in previous.views:
            a, b = np.asarray(previous.views[view])[i_prev], np.asarray(X)[i_cur]
            out[f"{view}/cka_prev"] = linear_cka(a, b)
            if a.shape == b.shape:
                moved = cosine_displacement(a, b)
                out[f"{view}/displacement_mean"] = float(moved.mean()) if len(moved) else _NAN
                out[f"{view}/displacement_median"] = float(np.median(moved)) if len(moved) else _NAN
                shifts = centroid_shift(a, b, snapshot.gold[i_cur], snapshot.label_names)
                out.update({f"{view}/centroid_shift/{name}": shift for name, shift in shifts.items()})
        if first is not None and view in first.views:
            i_first, i_now = match_tokens(first, snapshot)
            out[f"{view}/cka_first"] = linear_cka(np.asarray(first.views[view])[i_first], np.asarray(X)[i_now])
        out.update(view_quality(view, X, snapshot.gold, coords.get(view)))
    return {key: float(value) for key, value in out.items()}

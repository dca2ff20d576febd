"""The analyses an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page shows per snapshot, as compact plain values.

Two parts travel with each kept snapshot's record (so thinning and resuming treat them as its cloud):

- :func:`full_set`, from the :class:`~lightning_ner_viz.snapshot.Snapshot` itself at ``log_epoch``: the
  confusion matrix and span errors over the **whole** validation set;
- :func:`token_analysis` and :func:`group_analysis`, from the
  :class:`~lightning_ner_viz.analysis.epoch_analysis.EpochAnalysis` at ``log_analysis``: per token view the
  misclassified sampled tokens (by row of the snapshot, most attracted first), per view or group the class
  similarity, per clustered cloud each row's stable cluster id with the cluster summaries and events, a fit
  snapshot's label issues (:mod:`~lightning_ner_viz.sinks.html_label_issues`) and the layer × snapshot grids.

Per-row values are int lists aligned with the record's rows (``-1``: none); the page looks the token text,
word, marked sentence and gold label up in the cloud's row table, so nothing here repeats a string per token.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lightning_ner_viz.analysis.clusters import ClusterReport
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.analysis.errors import ErrorGeometry
from lightning_ner_viz.analysis.layers import FIGURE_TITLES, LayerAnalysis
from lightning_ner_viz.analysis.neighbours import Neighbours
from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES, span_f1
from lightning_ner_viz.sinks.html_label_issues import label_issues_part
from lightning_ner_viz.sinks.layer_grids import value_range
from lightning_ner_viz.sinks.packed_arrays import pack
from lightning_ner_viz.snapshot import Snapshot

ERROR_ROWS = 200
"""Rows of the errors table per snapshot and view (the most attracted first); every error still colours the cloud."""


def full_set(snapshot: Snapshot) -> dict[str, Any]:
    """``confusion`` (gold × predicted counts, or ``None``) and ``spans`` (``types``, ``columns``, ``counts`` per
    type, entity ``f1`` per type and ``micro`` F1, or ``None``), both over the whole validation set."""
    out: dict[str, Any] = {"confusion": None, "spans": None}
    if snapshot.confusion is not None:
        out["confusion"] = np.asarray(snapshot.confusion, dtype=np.int64).tolist()
    if snapshot.span_counts is not None and len(snapshot.span_types):
        counts = np.asarray(snapshot.span_counts, dtype=np.int64).reshape(-1, len(SPAN_CATEGORIES))
        out["spans"] = {"types": list(snapshot.span_types), "columns": list(SPAN_CATEGORIES),
                        "counts": counts.tolist(), "f1": [_num(span_f1(row), 4) for row in counts],
                        "micro": _num(span_f1(counts), 4)}
    return out


def token_analysis(analysis: EpochAnalysis, token_views: list[str]) -> dict[str, Any]:
    """The token cloud's part: ``errors`` per token view, ``similarity`` per view and group, ``clusters`` of the
    first clustered token view (``hidden``), and the ``label_issues`` of a fit snapshot that has them
    (:func:`~lightning_ner_viz.sinks.html_label_issues.label_issues_part`)."""
    out: dict[str, Any] = {
        "errors": {v: errors(g) for v, g in analysis.errors.items() if v in token_views},
        "similarity": {name: similarity(s) for name, s in analysis.similarity.items()},
    }
    report = next((analysis.clusters[v] for v in token_views if v in analysis.clusters), None)
    if report is not None:
        out["clusters"] = {"view": next(v for v in token_views if v in analysis.clusters), **clusters(report)}
    if analysis.label_issues is not None:
        out["label_issues"] = label_issues_part(analysis.label_issues)
    if analysis.layers is not None:
        out["layers"] = layers(analysis.layers)
    if analysis.neighbours is not None and analysis.neighbours.view in token_views:
        out["neighbours"] = neighbours(analysis.neighbours)
    if analysis.notes:
        out["notes"] = list(analysis.notes)
    return out


def neighbours(result: Neighbours) -> dict[str, Any]:
    """Each row's nearest neighbours in ``view``: ``k``, ``row`` and ``dist`` (row-major, ``k`` per row: the
    neighbours' rows of the snapshot and their cosine distances, 3 decimals; both packed, see
    :mod:`~lightning_ner_viz.sinks.packed_arrays`) and ``jaccard`` (per row, the overlap with its neighbours at the
    previous snapshot, 2 decimals, ``None`` when there is none)."""
    return {"view": result.view, "k": result.k, "row": pack(np.asarray(result.row).reshape(-1)),
            "dist": pack(np.asarray(result.distance).reshape(-1), 3),
            "jaccard": [_num(x, 2) for x in np.asarray(result.jaccard).tolist()]}


def layers(result: LayerAnalysis) -> dict[str, Any]:
    """The layer × snapshot grids as of this snapshot: ``layers`` (rows), ``labels`` (columns: the snapshots so
    far), ``figures`` (name to rows of values, 3 decimals, ``None`` when undefined), ``titles`` and ``ranges`` (each
    figure's colour range, as the other sinks draw it)."""
    return {"layers": list(result.layers), "labels": list(result.labels),
            "figures": {name: [[_num(x, 3) for x in row] for row in np.asarray(grid).tolist()]
                        for name, grid in result.figures.items()},
            "titles": {name: FIGURE_TITLES.get(name, name) for name in result.figures},
            "ranges": {name: list(value_range(name, grid)) for name, grid in result.figures.items()}}


def group_analysis(analysis: EpochAnalysis, group: str) -> dict[str, Any] | None:
    """A group cloud's part (``entities``): its rows' ``clusters``; ``None`` when it was not clustered."""
    report = analysis.clusters.get(group)
    return None if report is None else {"clusters": {"view": group, **clusters(report)}}


def errors(geometry: ErrorGeometry) -> dict[str, Any]:
    """Every misclassified sampled token of one view, most attracted to another class first (by ``margin``):
    ``row`` (of the snapshot), ``knn`` (the neighbours' majority label), ``share`` (of the ``k`` neighbours),
    ``near`` (the nearest centroid's label), ``margin`` (cosine distance to the nearest other class's centroid
    minus that to its own; negative: nearer another class), and the ``attraction`` matrix (gold × nearest class,
    rows sum to 1)."""
    return {
        "k": int(geometry.k), "row": _ints(geometry.index), "knn": _ints(geometry.knn_vote),
        "share": [_num(x, 2) for x in np.asarray(geometry.knn_share).tolist()],
        "near": _ints(geometry.nearest_class), "margin": [_num(x, 4) for x in np.asarray(geometry.margin).tolist()],
        "attraction": [[_num(x, 3) for x in row] for row in np.asarray(geometry.attraction).tolist()],
    }


def similarity(result: Any) -> dict[str, Any]:
    """One view's :class:`~lightning_ner_viz.analysis.class_similarity.ClassSimilarity`: ``labels``, ``counts``,
    ``sim`` (centroid cosines, 3 decimals, ``None`` for an empty label), ``sep`` (separation) and ``nearest``."""
    return {"labels": list(result.label_names), "counts": _ints(result.counts), "centered": bool(result.centered),
            "sim": [[_num(x, 3) for x in row] for row in np.asarray(result.similarity).tolist()],
            "sep": [_num(x, 2) for x in np.asarray(result.separation).tolist()], "nearest": _ints(result.nearest)}


def clusters(report: ClusterReport) -> dict[str, Any]:
    """``cid`` (each row's stable cluster id within its class, -1 noise), ``summaries`` (``class``, ``id``,
    ``size``, ``words``, ``counts``, ``error_rate``, ``example``: the row nearest the centroid) and ``events``
    (``kind``: split, merge, new or vanished; ``class``; ``before`` and ``after`` ids)."""
    return {
        "cid": _ints(report.stable_id),
        "summaries": [{"class": int(s.class_id), "id": int(s.cluster_id), "size": int(s.size),
                       "words": list(s.top_words), "counts": [int(c) for c in s.top_counts],
                       "error_rate": _num(s.error_rate, 3), "example": int(s.example_row)} for s in report.summaries],
        "events": [{"kind": e.kind, "class": int(e.class_id), "before": [int(i) for i in e.before],
                    "after": [int(i) for i in e.after]} for e in report.events],
    }


def _ints(a: Any) -> list[int]:
    return np.asarray(a, dtype=np.int64).reshape(-1).tolist()


def _num(x: Any, digits: int) -> float | None:
    """``x`` rounded, or ``None`` when it is not a finite number (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None

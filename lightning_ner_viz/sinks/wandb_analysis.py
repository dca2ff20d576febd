"""What a W&B run shows of a snapshot's analyses, as entries of the snapshot's history row (under the prefix):

- ``confusion``: the whole validation set's confusion matrix as a plotly heatmap (``wandb.Plotly``), each row
  coloured as shares of its gold label, the counts written in the cells and on hover;
- ``class_similarity/<view or group>``: the centroids' cosine similarity as a plotly heatmap;
- ``errors``: the misclassified sampled tokens (the most attracted to another class first) as a ``wandb.Table``;
- ``clusters``: every sub-cluster of every clustered cloud as a ``wandb.Table``, and ``cluster_events`` (only
  when there are any) its split/merge/new/vanished events;
- ``span_errors``: the whole validation set's span-error counts and entity F1 per entity type as a ``wandb.Table``;
- ``label_issues/top`` and ``label_issues/data_map`` (fit snapshots with a label-issue report): the most suspect
  tokens as a ``wandb.Table`` and the data map as a plotly scatter (:mod:`~lightning_ner_viz.sinks.wandb_label_issues`);
- ``layers/<figure>`` and ``layers/figures`` (``hidden_module="all"``): each layer × snapshot grid as a plotly
  heatmap, and every grid as one long table (a row per snapshot and layer, a column per figure).

Why a plotly heatmap and not ``wandb.plot.confusion_matrix``: the snapshot holds counts over the whole
validation set, not per-token labels, and that chart wants the tokens (it only counts them again into a
table); it would also be logged as a custom chart under ``<key>_table``, showing the last snapshot only,
while a ``wandb.Plotly`` at ``<prefix>/confusion`` keeps one version per row (the media slider scrubs
snapshots, as it does the scatters), can colour rows by share so a rare label's errors show, and is titled
with the snapshot's label.

Every table carries the snapshot's name, epoch and global step, so tables of several snapshots can be
concatenated in the W&B UI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis, error_rows
from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES
from lightning_ner_viz.sinks.analysis_text import cluster_rows, event_text, primary_view, span_rows
from lightning_ner_viz.sinks.layer_grids import layer_figure, layer_rows
from lightning_ner_viz.sinks.wandb_label_issues import label_issue_entries
from lightning_ner_viz.snapshot import Snapshot

ERROR_TABLE_ROWS = 1000
"""At most this many misclassified tokens per errors table (the most attracted to another class first)."""
_WHICH = ["snapshot", "epoch", "global_step"]


def _which(snapshot: Snapshot) -> list[Any]:
    return [snapshot.key.name, int(snapshot.epoch), int(snapshot.step)]


def confusion_figure(snapshot: Snapshot) -> Any:
    """A plotly heatmap of ``snapshot.confusion``: rows = gold (first label on top), columns = predicted; the
    colour is the share of the gold label's tokens, the cell text the count. Values go in as lists (plotly 6
    would write numpy arrays as base64 typed arrays, which older plotly.js readers do not take)."""
    go = require("plotly").graph_objects
    counts = np.asarray(snapshot.confusion, dtype=np.int64)
    totals = counts.sum(1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    names = list(snapshot.label_names)
    fig = go.Figure(go.Heatmap(
        z=share.tolist(), x=names, y=names, zmin=0.0, zmax=1.0, colorscale="Blues",
        text=[[str(c) if c else "" for c in row] for row in counts.tolist()], texttemplate="%{text}",
        customdata=counts.tolist(), colorbar={"title": {"text": "share of<br>gold label"}, "tickformat": ".0%"},
        hovertemplate="gold %{y}<br>predicted %{x}<br>%{customdata} tokens (%{z:.1%} of the gold label)<extra></extra>",
    ))
    fig.update_layout(title=f"confusion (whole validation set), {snapshot.label}",
                      xaxis={"title": {"text": "predicted"}, "side": "top", "type": "category"},
                      yaxis={"title": {"text": "gold"}, "autorange": "reversed", "type": "category"})
    return fig


def similarity_figure(snapshot: Snapshot, name: str, analysis: EpochAnalysis) -> Any:
    """A plotly heatmap of the class similarity of the view or group ``name`` (blue -1, white 0, red +1)."""
    go = require("plotly").graph_objects
    sim = analysis.similarity[name]
    z = np.asarray(sim.similarity, dtype=np.float64)
    sep = np.asarray(sim.separation, dtype=np.float64)
    names = list(sim.label_names)
    fig = go.Figure(go.Heatmap(
        z=[[v if np.isfinite(v) else None for v in row] for row in z.tolist()], x=names, y=names,
        zmin=-1.0, zmax=1.0, zmid=0.0, colorscale="RdBu",
        reversescale=True, texttemplate="%{z:.2f}", colorbar={"title": {"text": "cosine"}},
        customdata=[[None if not np.isfinite(s) else round(float(s), 3)] * len(names) for s in sep],
        hovertemplate="%{y} vs %{x}: cosine %{z:.3f}<br>separation of %{y}: %{customdata}<extra></extra>",
    ))
    centred = "centred " if sim.centered else ""
    fig.update_layout(title=f"class_similarity of the {centred}centroids, {name}, {snapshot.label}",
                      xaxis={"side": "top", "type": "category"}, yaxis={"autorange": "reversed", "type": "category"})
    return fig


def errors_table(wandb: Any, snapshot: Snapshot, analysis: EpochAnalysis) -> Any:
    """The misclassified sampled tokens of the primary view, most attracted to another class first."""
    view = primary_view(analysis)
    keys = ["row", "token", "word", "sentence", "gold", "predicted", "knn_vote", "nearest_class", "margin"]
    rows = [] if view is None else error_rows(snapshot, analysis.errors[view], ERROR_TABLE_ROWS)
    data = [[*_which(snapshot), view, *(r[k] for k in keys)] for r in rows]
    return wandb.Table(columns=[*_WHICH, "view", *keys], data=data)


def clusters_table(wandb: Any, snapshot: Snapshot, analysis: EpochAnalysis) -> Any:
    """Every sub-cluster of every clustered cloud (``hidden`` per gold label, ``entities`` per entity type)."""
    keys = ["cloud", "class", "cluster_id", "size", "top_words", "error_rate", "example", "label"]
    data = [[*_which(snapshot), *(r[k] for k in keys)]
            for name, report in analysis.clusters.items() for r in cluster_rows(snapshot, name, report)]
    return wandb.Table(columns=[*_WHICH, *keys], data=data)


def events_table(wandb: Any, snapshot: Snapshot, analysis: EpochAnalysis) -> Any:
    """This snapshot's sub-cluster events: split, merge, new, vanished (stable ids before and after)."""
    data = [[*_which(snapshot), name, report.class_names[e.class_id], e.kind, ", ".join(map(str, e.before)),
             ", ".join(map(str, e.after)), event_text(e, report.class_names)]
            for name, report in analysis.clusters.items() for e in report.events]
    return wandb.Table(columns=[*_WHICH, "cloud", "class", "kind", "before", "after", "text"], data=data)


def span_table(wandb: Any, snapshot: Snapshot) -> Any:
    """The whole validation set's span categories and entity F1 per entity type."""
    keys = ["type", *SPAN_CATEGORIES, "entity_f1"]
    return wandb.Table(columns=[*_WHICH, *keys], data=[[*_which(snapshot), *(r[k] for k in keys)]
                                                       for r in span_rows(snapshot)])


def analysis_entries(snapshot: Snapshot, analysis: EpochAnalysis, prefix: str) -> dict[str, Any]:
    """The history-row entries of the snapshot's analyses, keyed ``<prefix>/confusion`` and so on."""
    wandb = require("wandb")
    row: dict[str, Any] = {}
    if snapshot.confusion is not None and len(snapshot.label_names):
        row[f"{prefix}/confusion"] = wandb.Plotly(confusion_figure(snapshot))
    for name, sim in analysis.similarity.items():
        if len(sim.label_names):
            row[f"{prefix}/class_similarity/{name}"] = wandb.Plotly(similarity_figure(snapshot, name, analysis))
    row[f"{prefix}/errors"] = errors_table(wandb, snapshot, analysis)
    row[f"{prefix}/clusters"] = clusters_table(wandb, snapshot, analysis)
    if any(report.events for report in analysis.clusters.values()):
        row[f"{prefix}/cluster_events"] = events_table(wandb, snapshot, analysis)
    if snapshot.span_counts is not None:
        row[f"{prefix}/span_errors"] = span_table(wandb, snapshot)
    row.update(label_issue_entries(snapshot, analysis.label_issues, prefix))
    if analysis.layers is not None:
        for name in analysis.layers.figures:
            row[f"{prefix}/layers/{name}"] = wandb.Plotly(layer_figure(analysis.layers, name, snapshot.label))
        columns, data = layer_rows(analysis.layers)
        row[f"{prefix}/layers/figures"] = wandb.Table(columns=columns, data=data)
    return row

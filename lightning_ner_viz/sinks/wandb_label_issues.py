"""What a W&B run shows of a fit snapshot's label issues, as entries of the snapshot's history row:

- ``<prefix>/label_issues/top``: the 50 most suspect tokens as a ``wandb.Table`` (the snapshot's name, epoch and
  global step, then every column of ``label_issues.csv`` and ``token_id``);
- ``<prefix>/label_issues/data_map``: the data map (Dataset Cartography) as a plotly scatter (``wandb.Plotly``):
  x = variability, y = confidence, colour = correctness on a colour bar, flagged tokens as larger ringed markers
  in their own legend entry, the token in its sentence on hover and the regions named.

Why plotly and not ``wandb.plot.scatter``: that chart draws two columns of a table, with neither a colour scale
for a third column nor hover text, and is logged as a custom chart under ``<key>_table`` whose panel shows
the newest snapshot only; a ``wandb.Plotly`` keeps one figure per history row (the media slider scrubs the
snapshots, as for the other analysis plots), is a self-contained ``plotly.json`` in the run's files (so an
offline run holds the whole figure before any sync) and matches the other sinks' data map.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis.label_issue_report import CSV_COLUMNS, LabelIssueReport
from lightning_ner_viz.sinks.data_map_png import CORRECTNESS
from lightning_ner_viz.sinks.label_issue_text import (
    COLOR_TITLE, X_MAX, X_TITLE, Y_TITLE, data_map_subtitle, data_map_title, region_names,
)
from lightning_ner_viz.snapshot import Snapshot

TOP_COLUMNS = (*CSV_COLUMNS, "token_id")
_WHICH = ("snapshot", "epoch", "global_step")


def top_table(wandb: Any, snapshot: Snapshot, report: LabelIssueReport) -> Any:
    """The report's most suspect tokens, one row each, most suspect first."""
    which = [snapshot.key.name, int(snapshot.epoch), int(snapshot.step)]
    return wandb.Table(columns=[*_WHICH, *TOP_COLUMNS], data=[[*which, *(r.get(k) for k in TOP_COLUMNS)]
                                                               for r in report.top])


def data_map_figure(report: LabelIssueReport, label: str) -> Any:
    """A plotly scatter of the report's data map: one trace of the unflagged tokens, one of the flagged (drawn on
    top); values go in as lists, as in :mod:`~lightning_ner_viz.sinks.wandb_analysis`."""
    go = require("plotly").graph_objects
    p = report.points
    flagged = np.asarray(p.get("flagged", []), dtype=bool)
    fig = go.Figure()
    for name, rows, marker in (("token", np.flatnonzero(~flagged), {"size": 6, "opacity": 0.85}),
                               ("flagged by cleanlab", np.flatnonzero(flagged),
                                {"size": 11, "line": {"color": "#141414", "width": 1.5}})):
        fig.add_trace(go.Scatter(
            x=[p["variability"][i] for i in rows], y=[p["confidence"][i] for i in rows], mode="markers",
            name=f"{name} ({len(rows)})",
            marker={**marker, "color": [p["correctness"][i] for i in rows], "coloraxis": "coloraxis"},
            text=[html.escape(str(p["text"][i])) for i in rows],  # plotly reads tags in hover text; a token is text
            customdata=[[p["rank"][i], p["score"][i]] for i in rows],
            hovertemplate="%{text}<br>rank %{customdata[0]} · score %{customdata[1]:.3f}<br>confidence %{y:.3f} · "
                          "variability %{x:.3f} · correctness %{marker.color:.2f}<extra></extra>"))
    stops = len(CORRECTNESS) - 1
    regions = [{"x": X_MAX / 2 if c in (0.0, 1.0) else v, "y": 1.05 if c >= 1 else -0.05 if c <= 0 else c,
                "xanchor": "center" if c in (0.0, 1.0) else "right", "text": name, "showarrow": False,
                "font": {"color": "#5f5f5f"}} for name, v, c in region_names(report)]
    fig.update_layout(
        title={"text": f"{html.escape(data_map_title(label))}"
                       f"<br><sup>{html.escape(data_map_subtitle(report))}</sup>"},
        xaxis={"title": {"text": X_TITLE}, "range": [-0.01, X_MAX + 0.01], "zeroline": False},
        yaxis={"title": {"text": Y_TITLE}, "range": [-0.1, 1.1], "zeroline": False},
        coloraxis={"cmin": 0.0, "cmax": 1.0, "colorbar": {"title": {"text": "correctness"}, "tickvals": [0, 0.5, 1]},
                   "colorscale": [[k / stops, "rgb({},{},{})".format(*c)] for k, c in enumerate(CORRECTNESS)]},
        legend={"orientation": "h", "y": -0.2, "title": {"text": f"colour: {COLOR_TITLE}"}},
        annotations=regions, shapes=[{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": y0, "y1": y1,
                                      "fillcolor": "#f3f3f3", "line": {"width": 0}, "layer": "below"}
                                     for y0, y1 in ((1.0, 1.1), (-0.1, 0.0))])
    return fig


def label_issue_entries(snapshot: Snapshot, report: LabelIssueReport | None, prefix: str) -> dict[str, Any]:
    """``<prefix>/label_issues/top`` and ``<prefix>/label_issues/data_map`` ({} without a report)."""
    if report is None:
        return {}
    wandb = require("wandb")
    return {f"{prefix}/label_issues/top": top_table(wandb, snapshot, report),
            f"{prefix}/label_issues/data_map": wandb.Plotly(data_map_figure(report, snapshot.label))}

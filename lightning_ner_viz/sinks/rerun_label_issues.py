"""What the Rerun recording shows of a fit snapshot's label issues, at the snapshot's time (under the sink's prefix):

- ``label_issues/data_map``: the data map (Dataset Cartography) as ``Points2D``, positions = (variability,
  confidence) as they are, coloured by correctness (red: the given label was never predicted, blue: always),
  flagged tokens larger; the label (on hover) is the point's ``text`` (rank, word, given and suggested label,
  and for the 50 most suspect and the flagged tokens the sentence: it is most of the recording's bytes), and
  ``AnyValues`` carry rank, correctness, score, flagged, in_sample and token_id. A static ``Transform3D`` scales
  the map to a square with confidence upwards (a 2-D view's y axis points down);
- ``label_issues/data_map/flagged``: a dark ring under each flagged token;
- ``label_issues/data_map/frame/...`` (static, once): grid, axes, tick labels, axis titles and a legend line;
  ``label_issues/data_map/regions``: the regions' names (easy to learn, hard to learn, ambiguous), with the
  tokens counted above 0.75 and below 0.25 confidence (points on one spot hide each other);
- ``label_issues/top``: a markdown ``TextDocument`` of the 50 most suspect tokens.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis.label_issue_report import TOP_ROWS, LabelIssueReport
from lightning_ner_viz.sinks.data_map_png import X_TICKS, Y_TICKS, correctness_colors
from lightning_ner_viz.sinks.label_issue_text import X_MAX, X_TITLE, Y_TITLE, issues_markdown, region_names

DATA_MAP = "label_issues/data_map"
TOP = "label_issues/top"
SIDE = 100.0
"""The map's side in scene units: variability 0..0.5 and confidence 0..1 both span it."""
_SCALE = (SIDE / X_MAX, -SIDE, 1.0)
_FRAME_INK, _NAME_INK, _GRID, _RING = (60, 60, 60), (110, 110, 110), (215, 215, 215), (20, 20, 20)
_LEGEND = "colour = correctness: red 0 … blue 1 · ring = flagged"
_LEFT, _BOTTOM, _TOP = -0.012, -0.1, 1.1
"""The frame (variability, confidence): a little room left of 0, a band above 1 and below 0 for the region names."""
_VALUES = (("rank", np.int32), ("correctness", np.float32), ("score", np.float32), ("flagged", bool),
           ("in_sample", bool), ("token_id", np.int64))
"""The hover values beside the label (confidence and variability are the position)."""
_FRAMED: weakref.WeakSet[Any] = weakref.WeakSet()
"""The recordings that have the static frame already."""


def log_label_issues(rec: Any, prefix: str, report: LabelIssueReport, label: str) -> list[str]:
    """Log the data map and the table of ``report`` (the time must be set already); the frame once, static.

    Returns:
        The paths logged under ``prefix`` (:data:`DATA_MAP`, :data:`TOP`), for the layout.
    """
    rr = require("rerun")
    path = f"{prefix}/{DATA_MAP}"
    _log_frame(rec, path)
    p = report.points
    xy = np.column_stack([np.asarray(p.get("variability", []), np.float32),
                          np.asarray(p.get("confidence", []), np.float32)]).reshape(-1, 2)
    flagged = np.asarray(p.get("flagged", []), dtype=bool)
    texts = [str(t) if i < TOP_ROWS or flagged[i] else str(t).split(" | ")[0]  # the sentence: suspect tokens only
             for i, t in enumerate(p.get("text", []))]
    values = {k: np.asarray(p[k], dtype=dtype) for k, dtype in _VALUES if len(p.get(k, []))}  # none: rerun warns
    hover = [rr.AnyValues(**values)] if values else []
    rec.log(path, rr.Points2D(xy, colors=correctness_colors(p.get("correctness", [])),
                              radii=rr.Radius.ui_points(np.where(flagged, 4.5, 3.0)),
                              labels=texts, show_labels=False, draw_order=31.0), *hover)
    regions = [((X_MAX / 2 if c in (0.0, 1.0) else v - 0.05,
                 _TOP - 0.005 if c >= 1 else -0.012 if c <= 0 else c + 0.025), name)
               for name, v, c in region_names(report, short=True)]  # a label hangs below its point
    rec.log(f"{path}/regions", rr.Points2D([m for m, _ in regions], labels=[t for _, t in regions],
                                           show_labels=True, colors=_NAME_INK, radii=0.0, draw_order=12.0))
    rows = np.flatnonzero(flagged)
    rec.log(f"{path}/flagged", rr.Points2D(xy[rows], colors=_RING, radii=rr.Radius.ui_points(6.5), draw_order=30.0))
    rec.log(f"{prefix}/{TOP}", rr.TextDocument(issues_markdown(report, label), media_type=rr.MediaType.MARKDOWN))
    return [DATA_MAP, TOP]


def _log_frame(rec: Any, path: str) -> None:
    """The static parts, once per recording: the transform to the square, grid and axes, tick labels, axis
    titles and a legend. Rerun centres a label on its point, so each text is placed by its middle."""
    rr = require("rerun")
    if rec in _FRAMED:
        return
    _FRAMED.add(rec)
    rec.log(path, rr.Transform3D(scale=_SCALE), static=True)
    half = X_MAX / 2
    grid = [[(v, _BOTTOM), (v, _TOP)] for v in X_TICKS[1:]] + [[(0.0, c), (X_MAX, c)] for c in Y_TICKS]
    rec.log(f"{path}/frame/grid", rr.LineStrips2D(grid, colors=_GRID, radii=rr.Radius.ui_points(0.75),
                                                  draw_order=10.0), static=True)
    axes = [[(_LEFT, _TOP), (_LEFT, _BOTTOM), (X_MAX, _BOTTOM)]]
    rec.log(f"{path}/frame/axes", rr.LineStrips2D(axes, colors=_FRAME_INK, radii=rr.Radius.ui_points(1.0),
                                                  draw_order=11.0), static=True)
    ticks = [((v, _BOTTOM - 0.02), f"{v:g}") for v in X_TICKS] + [((_LEFT - 0.03, c + 0.025), f"{c:g}")
                                                                   for c in Y_TICKS]
    names = [((half, _BOTTOM - 0.1), X_TITLE + " →"), ((half, _BOTTOM - 0.18), _LEGEND),
             ((half, _TOP + 0.1), "↑ " + Y_TITLE)]
    for part, marks, color in (("ticks", ticks, _FRAME_INK), ("names", names, _NAME_INK)):
        rec.log(f"{path}/frame/{part}", rr.Points2D([m for m, _ in marks], labels=[t for _, t in marks],
                                                    show_labels=True, colors=color,
                                                    radii=0.0, draw_order=12.0), static=True)


def data_map_view(prefix: str) -> Any:
    """The 2-D view of the data map: on a white background, framed to show the axes and their titles."""
    rrb = require("rerun").blueprint
    return rrb.Spatial2DView(
        origin=f"{prefix}/label_issues", contents=["$origin/data_map/**"], name="label issues: data map",
        background=rrb.Background(color=[255, 255, 255]),
        visual_bounds=rrb.VisualBounds2D(x_range=[-0.12 * SIDE, 1.06 * SIDE], y_range=[-1.22 * SIDE, 0.36 * SIDE]))

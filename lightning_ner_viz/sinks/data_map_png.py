"""The label issues' data map (Dataset Cartography) as an RGB image drawn with numpy alone, for TensorBoard.

One point per token of :attr:`~lightning_ner_viz.analysis.label_issue_report.LabelIssueReport.points`:
x = variability, y = confidence, colour = correctness (red: the given label was never predicted, blue: always);
tokens cleanlab flags are larger with a black ring, drawn last. The image carries its title, axes with ticks
and titles, the regions' names and a legend (colour bar and markers), like the heatmaps of
:mod:`~lightning_ner_viz.sinks.heatmap`.
"""

from __future__ import annotations

import numpy as np

from lightning_ner_viz.analysis.label_issue_report import LabelIssueReport
from lightning_ner_viz.sinks.heatmap import INK, PAPER, colorize
from lightning_ner_viz.sinks.label_issue_text import (
    COLOR_TITLE, X_MAX, X_TITLE, Y_TITLE, data_map_subtitle, data_map_title, region_names,
)
from lightning_ner_viz.sinks.pixel_font import GLYPH_HEIGHT, draw_text, text_width

CORRECTNESS = ((200, 30, 45), (240, 140, 40), (70, 170, 160), (40, 80, 175))
"""Colour stops of correctness 0, 1/3, 2/3 and 1 (red, orange, teal, blue), the same in every sink's data map."""
GRID, BAND, REGION_INK = (232, 232, 232), (246, 246, 246), (95, 95, 95)
_PLOT, _MARGIN, _LINE = 380, 8, GLYPH_HEIGHT + 4
_DOT, _RING = 2, 4
"""Radius in pixels (before scaling) of a point, and of a flagged point's black ring."""
X_TICKS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
Y_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
_X_RANGE, _Y_RANGE = (-0.012, X_MAX + 0.008), (-0.075, 1.075)
"""The axes' extent: a little room left of 0 and right of the end, a band above 1 and below 0 for the region names."""


def correctness_colors(correctness: np.ndarray) -> np.ndarray:
    """RGB uint8 (n, 3) of each correctness in [0, 1] along :data:`CORRECTNESS`."""
    return colorize(np.asarray(correctness, dtype=np.float64), 0.0, 1.0, CORRECTNESS)


def _disc(image: np.ndarray, cy: int, cx: int, radius: int, color: tuple[int, ...] | np.ndarray) -> None:
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    inside = dx * dx + dy * dy <= radius * radius + radius
    ys, xs = cy + dy[inside], cx + dx[inside]
    keep = (ys >= 0) & (ys < image.shape[0]) & (xs >= 0) & (xs < image.shape[1])
    image[ys[keep], xs[keep]] = color


def _halo_text(image: np.ndarray, text: str, top: int, left: int, color: tuple[int, int, int]) -> None:
    """``text`` with a white outline, readable over points."""
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
        draw_text(image, text, top + dy, left + dx, PAPER)
    draw_text(image, text, top, left, color)


def _tick(value: float) -> str:
    return "0" if value == 0 else "1" if value == 1 else f"{value:g}".replace("0.", ".", 1)


def data_map_image(report: LabelIssueReport, label: str, scale: int = 2) -> np.ndarray:
    """The data map of ``report`` titled with the snapshot's ``label``, as RGB uint8 (height, width, 3).

    The confidence axis has a band above 1 and below 0 where no point can be, naming the easy-to-learn and
    hard-to-learn regions without hiding a point; a variability of 0 sits just right of the axis.
    """
    points = report.points
    var = np.clip(np.asarray(points.get("variability", []), dtype=np.float64), 0.0, X_MAX)
    conf = np.clip(np.asarray(points.get("confidence", []), dtype=np.float64), 0.0, 1.0)
    correct = np.asarray(points.get("correctness", []), dtype=np.float64)
    flagged = np.asarray(points.get("flagged", []), dtype=bool)
    title, subtitle = data_map_title(label), data_map_subtitle(report)
    legend_caption = "colour: " + COLOR_TITLE
    tick_w = max(text_width(_tick(v)) for v in Y_TICKS)
    x0 = _MARGIN + GLYPH_HEIGHT + 6 + tick_w + 6  # the y axis title (written upwards), the tick labels
    y0 = _MARGIN + 2 * _LINE + 10
    plot_bottom = y0 + _PLOT
    legend_top = plot_bottom + 6 + _LINE + _LINE + 10
    height = legend_top + _LINE + 10 + _LINE + 6 + _LINE + _MARGIN
    width = max(x0 + _PLOT, _MARGIN + text_width(title), _MARGIN + text_width(subtitle),
                x0 + text_width(X_TITLE + " →"), x0 + text_width(legend_caption)) + _MARGIN
    image = np.full((height, width, 3), PAPER, dtype=np.uint8)

    def px(v: np.ndarray | float) -> np.ndarray:
        return x0 + np.round((np.asarray(v) - _X_RANGE[0]) / (_X_RANGE[1] - _X_RANGE[0]) * (_PLOT - 1)).astype(np.int64)

    def py(c: np.ndarray | float) -> np.ndarray:
        return plot_bottom - 1 - np.round((np.asarray(c) - _Y_RANGE[0]) / (_Y_RANGE[1] - _Y_RANGE[0])
                                          * (_PLOT - 1)).astype(np.int64)

    draw_text(image, title, _MARGIN, _MARGIN, INK)
    draw_text(image, subtitle, _MARGIN + _LINE, _MARGIN, REGION_INK)
    image[y0:int(py(1.0)) - _RING - 1, x0:x0 + _PLOT] = BAND  # where confidence cannot be
    image[int(py(0.0)) + _RING + 2:plot_bottom, x0:x0 + _PLOT] = BAND
    for v in X_TICKS:  # grid, ticks and tick labels
        x = int(px(v))
        image[y0:plot_bottom, x] = GRID
        image[plot_bottom:plot_bottom + 4, x] = INK
        draw_text(image, _tick(v), plot_bottom + 6, x - text_width(_tick(v)) // 2, INK)
    for c in Y_TICKS:
        y = int(py(c))
        image[y, x0:x0 + _PLOT] = GRID
        image[y, x0 - 4:x0] = INK
        draw_text(image, _tick(c), y - GLYPH_HEIGHT // 2, x0 - 6 - text_width(_tick(c)), INK)
    image[y0:plot_bottom, x0 - 1] = INK  # the axes
    image[plot_bottom, x0 - 1:x0 + _PLOT] = INK
    draw_text(image, X_TITLE + " →", plot_bottom + 6 + _LINE, x0, INK)
    y_title = Y_TITLE + " →"
    draw_text(image, y_title, y0 + (_PLOT - text_width(y_title)) // 2, _MARGIN, INK, vertical=True)

    colors = correctness_colors(correct)
    order = [*np.flatnonzero(~flagged)[np.argsort(-correct[~flagged], kind="stable")], *np.flatnonzero(flagged)]
    xs, ys = px(var), py(conf)
    for i in order:  # the least correct and the flagged on top
        if flagged[i]:
            _disc(image, int(ys[i]), int(xs[i]), _RING, INK)
        _disc(image, int(ys[i]), int(xs[i]), _DOT + (1 if flagged[i] else 0), colors[i])
    for name, v, c in region_names(report):  # in the bands above 1 and below 0; the right edge's over the points
        top = int(py(c)) - GLYPH_HEIGHT // 2 if c not in (0.0, 1.0) else y0 + 3 if c else plot_bottom - 3 - GLYPH_HEIGHT
        left = x0 + 4 if v <= 0 else x0 + _PLOT - 4 - text_width(name)
        _halo_text(image, name, top, left, REGION_INK)

    draw_text(image, legend_caption, legend_top, x0, INK)
    bar_top, bar_w = legend_top + _LINE, 160
    image[bar_top:bar_top + 8, x0:x0 + bar_w] = correctness_colors(np.linspace(0.0, 1.0, bar_w))[None]
    for value in (0.0, 0.5, 1.0):
        x = x0 + int(round(value * (bar_w - 1)))
        image[bar_top + 8:bar_top + 10, x] = INK
        draw_text(image, _tick(value), bar_top + 11, x - text_width(_tick(value)) // 2, INK)
    marks = bar_top + 10 + _LINE + 6
    blue = tuple(int(v) for v in CORRECTNESS[-1])
    _disc(image, marks + GLYPH_HEIGHT // 2, x0 + _RING, _DOT, blue)
    draw_text(image, "a token", marks, x0 + 2 * _RING + 4, INK)
    left = x0 + 2 * _RING + 4 + text_width("a token") + 16
    _disc(image, marks + GLYPH_HEIGHT // 2, left + _RING, _RING, INK)
    _disc(image, marks + GLYPH_HEIGHT // 2, left + _RING, _DOT + 1, blue)
    draw_text(image, f"flagged by cleanlab ({int(flagged.sum())} drawn)", marks, left + 2 * _RING + 4, INK)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image

"""Label-by-label matrices (confusion, class similarity) as labelled RGB heatmaps, drawn with numpy alone.

The image carries what a reader needs without axes from a plotting library: a title (with the
snapshot's label), the row labels on the left, the column labels written upwards above the
grid, each cell's value in the cell, a note per row on the right (e.g. the gold count) and a
colour bar with its ticks and caption below. Used by the Rerun and TensorBoard sinks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from lightning_ner_viz.sinks.pixel_font import GLYPH_HEIGHT, draw_text, text_width

BLUES = ((247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107))
"""A sequential scale (light: 0, dark: 1), for shares."""
BLUE_RED = ((5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31))
"""A diverging scale (blue: low, white: middle, red: high), for cosines in [-1, 1]."""
MISSING = (222, 222, 222)
"""The colour of a NaN cell."""
INK, PAPER = (25, 25, 25), (255, 255, 255)

_MARGIN, _LINE = 6, GLYPH_HEIGHT + 3
_CELL, _SMALL_CELL = 28, 12
"""Cell sizes in pixels (before scaling): with a value of up to 4 characters written in, and without."""
_MAX_TEXT_CELLS = 30
"""More rows or columns than this: small cells without values."""


def colorize(values: np.ndarray, lo: float, hi: float, stops: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """RGB uint8 array of shape (*values.shape, 3): ``values`` from ``lo`` to ``hi`` along the colour ``stops``
    (linear between them, clipped at the ends); NaN is :data:`MISSING`."""
    v = np.asarray(values, dtype=np.float64)
    t = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 0.0) * (len(stops) - 1)
    low = np.minimum(np.floor(t).astype(np.int64), len(stops) - 2)
    frac = (t - low)[..., None]
    table = np.asarray(stops, dtype=np.float64)
    rgb = table[low] * (1 - frac) + table[low + 1] * frac
    rgb[~np.isfinite(v)] = MISSING
    return np.round(rgb).astype(np.uint8)


def _ink_on(rgb: np.ndarray) -> tuple[int, int, int]:
    """Dark text on a light cell, white text on a dark one."""
    luminance = 0.299 * float(rgb[0]) + 0.587 * float(rgb[1]) + 0.114 * float(rgb[2])
    return INK if luminance > 150 else PAPER


def heatmap_image(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str,
                  lo: float, hi: float, stops: Sequence[tuple[int, int, int]] = BLUES,
                  cell_text: Sequence[Sequence[str]] | None = None, row_notes: Sequence[str] | None = None,
                  row_title: str = "", col_title: str = "", caption: str = "",
                  ticks: Sequence[tuple[float, str]] = (), scale: int | None = None) -> np.ndarray:
    """A labelled heatmap of ``values`` (n_rows, n_cols) as an RGB uint8 array of shape (height, width, 3).

    Args:
        values: the matrix; colours run from ``lo`` to ``hi`` along ``stops``; NaN cells are grey.
        row_labels, col_labels: names of the rows (left) and columns (above, written upwards).
        title: the first line.
        cell_text: the text of each cell (up to 4 characters; ``""`` for none); left out with more than
            30 rows or columns, where the cells get small.
        row_notes: a short note right of each row.
        row_title, col_title: what the rows and columns are (e.g. ``gold ↓``, ``predicted →``).
        caption, ticks: the colour bar's caption and its ticks as (value, text).
        scale: pixel size of the drawing (whole pixels, nearest neighbour); default 2, or 1 when the image
            would be wider than 1,600 pixels.
    """
    values = np.asarray(values, dtype=np.float64)
    n_rows, n_cols = values.shape
    small = max(n_rows, n_cols) > _MAX_TEXT_CELLS
    cell = _SMALL_CELL if small else _CELL
    text = None if small or cell_text is None else cell_text
    notes = list(row_notes or [])
    label_w = max([text_width(s) for s in [*row_labels, row_title]] + [0])
    header_h = max([text_width(s) for s in col_labels] + [0])
    notes_w = max([text_width(s) for s in notes] + [0])
    gx = _MARGIN + label_w + 6
    gy = _MARGIN + _LINE * 2 + 4 + header_h + 3
    grid_w, grid_h = n_cols * cell, n_rows * cell
    bar_w = int(min(max(grid_w, 120), 240))
    tick_w = max([text_width(s) for _, s in ticks] + [0])
    legend_top = gy + grid_h + 8
    height = legend_top + _LINE + 10 + _LINE + _MARGIN
    width = max(gx + grid_w + (6 + notes_w if notes_w else 0), _MARGIN + text_width(title),
                gx + text_width(caption), gx + bar_w + tick_w // 2) + _MARGIN
    image = np.full((height, width, 3), PAPER, dtype=np.uint8)

    draw_text(image, title, _MARGIN, _MARGIN, INK)
    draw_text(image, col_title, _MARGIN + _LINE + 4, gx, INK)
    draw_text(image, row_title, gy - _LINE, gx - 6 - text_width(row_title), INK)
    colors = colorize(values, lo, hi, stops)
    for j, label in enumerate(col_labels):
        draw_text(image, label, gy - 3 - text_width(label), gx + j * cell + (cell - GLYPH_HEIGHT) // 2, INK,
                  vertical=True)
    for i, label in enumerate(row_labels):
        top = gy + i * cell
        draw_text(image, label, top + (cell - GLYPH_HEIGHT) // 2 + 1, gx - 6 - text_width(label), INK)
        if i < len(notes):
            draw_text(image, notes[i], top + (cell - GLYPH_HEIGHT) // 2 + 1, gx + grid_w + 6, INK)
        for j in range(n_cols):
            left = gx + j * cell
            image[top:top + cell - 1, left:left + cell - 1] = colors[i, j]  # a white line between cells
            words = text[i][j] if text is not None else ""
            if words:
                draw_text(image, words, top + (cell - GLYPH_HEIGHT) // 2 + 1,
                          left + (cell - 1 - text_width(words)) // 2, _ink_on(colors[i, j]))

    draw_text(image, caption, legend_top, gx, INK)
    bar_top = legend_top + _LINE
    ramp = colorize(np.linspace(lo, hi, bar_w), lo, hi, stops)
    image[bar_top:bar_top + 8, gx:gx + bar_w] = ramp[None, :, :]
    for value, label in ticks:
        x = gx + int(round((value - lo) / (hi - lo if hi > lo else 1.0) * (bar_w - 1)))
        image[bar_top + 8:bar_top + 10, x] = INK
        draw_text(image, label, bar_top + 11, min(max(x - text_width(label) // 2, 0), width - text_width(label)), INK)

    if scale is None:
        scale = 2 if 2 * width <= 1600 else 1
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image


def png_bytes(rgb: np.ndarray) -> bytes:
    """``rgb`` (H, W, 3) uint8 as a PNG file (lossless; each row stored as its difference to the row above,
    which a heatmap's repeated rows and flat cells compress to almost nothing): a 900 x 900 heatmap is ~15 kB."""
    image = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = image.shape
    rows = image.reshape(h, w * 3)
    up = rows.copy()
    up[1:] -= rows[:-1]  # PNG filter 2 ("Up"), modulo 256
    raw = np.concatenate([np.full((h, 1), 2, dtype=np.uint8), up], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def confusion_image(confusion: np.ndarray, label_names: Sequence[str], label: str) -> np.ndarray:
    """The full-set confusion matrix (row = gold, column = predicted), each row as shares of its gold label:
    the colour and the number in a cell are the percentage of that gold label's tokens predicted as the
    column's label; right of each row, the gold label's token count."""
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals[:, None] > 0, counts / totals[:, None], np.nan)
    text = [["" if c == 0 else ("<1" if s < 0.005 else f"{100 * s:.0f}") for c, s in zip(row, shares)]
            for row, shares in zip(counts.tolist(), share.tolist())]
    return heatmap_image(share, label_names, label_names, title=f"confusion · whole validation set · {label}",
                         lo=0.0, hi=1.0, stops=BLUES, cell_text=text, row_notes=[f"n={t}" for t in totals.tolist()],
                         row_title="gold ↓", col_title="predicted →",
                         caption="% of the gold label's tokens (row) predicted as the column's label",
                         ticks=[(0.0, "0%"), (0.5, "50%"), (1.0, "100%")])


def similarity_image(similarity: np.ndarray, label_names: Sequence[str], separation: np.ndarray, name: str,
                     label: str, centered: bool = True, counts: np.ndarray | None = None) -> np.ndarray:
    """The cosine similarity of the classes' centroids in the view or group ``name`` (blue -1, white 0, red +1),
    with each class's separation (distance to the nearest other centroid over its spread) and, given
    ``counts``, its number of rows on the right."""
    sim = np.asarray(similarity, dtype=np.float64)
    text = [["" if not np.isfinite(v) else _short(v) for v in row] for row in sim.tolist()]
    seps = ["sep -" if not np.isfinite(s) else f"sep {s:.2g}" if s < 10 else f"sep {s:.0f}"
            for s in np.asarray(separation, dtype=np.float64).tolist()]
    notes = seps if counts is None else [f"{s} (n={int(n)})" for s, n in zip(seps, np.asarray(counts).tolist())]
    what = "centred centroids" if centered else "centroids"
    return heatmap_image(sim, label_names, label_names, title=f"class_similarity · {name} · {label}",
                         lo=-1.0, hi=1.0, stops=BLUE_RED, cell_text=text, row_notes=notes,
                         caption=f"cosine similarity of the {what}; sep = nearest gap / spread",
                         ticks=[(-1.0, "-1"), (0.0, "0"), (1.0, "1")])


def attraction_image(attraction: np.ndarray, label_names: Sequence[str], gold: np.ndarray, view: str,
                     label: str) -> np.ndarray:
    """The error-attraction matrix of ``view``: row = gold label of the misclassified sampled tokens, column = the
    class whose centroid is nearest; each row as shares of that label's errors (``gold``: the errors' gold ids)."""
    share = np.asarray(attraction, dtype=np.float64)
    errors = np.bincount(np.asarray(gold, dtype=np.int64), minlength=len(label_names))[: len(label_names)]
    share = np.where(errors[:, None] > 0, share, np.nan)
    text = [["" if not np.isfinite(s) or s == 0 else ("<1" if s < 0.005 else f"{100 * s:.0f}") for s in row]
            for row in share.tolist()]
    return heatmap_image(share, label_names, label_names, title=f"error_attraction · {view} · {label}",
                         lo=0.0, hi=1.0, stops=BLUES, cell_text=text, row_notes=[f"errors={e}" for e in errors.tolist()],
                         row_title="gold ↓", col_title="nearest class →",
                         caption="% of the label's misclassified tokens nearest to the column's centroid",
                         ticks=[(0.0, "0%"), (0.5, "50%"), (1.0, "100%")])


def _short(value: float) -> str:
    """A cosine in at most 4 characters: ``.87``, ``-.45``, ``1.0``."""
    if value >= 0.995:
        return "1.0"
    if value <= -0.995:
        return "-1.0"
    return f"{value:.2f}".replace("0.", ".", 1)

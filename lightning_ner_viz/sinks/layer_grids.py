"""The layer × snapshot grids (:class:`~lightning_ner_viz.analysis.layers.LayerAnalysis`) as the sinks show them:
a labelled RGB heatmap (Rerun, TensorBoard), a plotly heatmap and a long table (W&B).

Rows are drawn with the input side at the bottom (the network read upwards), columns in capture order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis.layers import FIGURE_TITLES, LayerAnalysis
from lightning_ner_viz.sinks.heatmap import BLUES, heatmap_image

CAPTIONS = {
    "cka_to_last": "linear CKA to the same layer at the latest snapshot (1: already as it ends up)",
    "knn_purity": "share of each token's 10 nearest neighbours with its gold label",
    "probe_accuracy": "held-out accuracy of a logistic regression on the layer (3 folds)",
    "separation": "median over entity labels of nearest-other-centre distance / own spread",
}
"""One line under each image, saying how to read it."""


def value_range(name: str, grid: np.ndarray) -> tuple[float, float]:
    """The colour range of a figure: [0, highest] for the separation (unbounded), else [min(0.5, lowest), 1] (CKA,
    purity and accuracy are in [0, 1], and usually above 0.5: the range shows their differences)."""
    finite = np.asarray(grid, dtype=np.float64)[np.isfinite(grid)]
    if name == "separation":
        return 0.0, float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    return min(0.5, float(finite.min())) if len(finite) else 0.5, 1.0


def layer_image(result: LayerAnalysis, name: str, label: str) -> np.ndarray:
    """The figure ``name`` as a labelled heatmap image (RGB uint8), titled with the snapshot's ``label``."""
    grid = np.asarray(result.figures[name], dtype=np.float64)[::-1]
    lo, hi = value_range(name, grid)
    text = [["" if not np.isfinite(v) else f"{v:.2f}" if v < 10 else f"{v:.0f}" for v in row] for row in grid.tolist()]
    return heatmap_image(grid, result.layers[::-1], result.labels, title=f"layers · {name} · {label}", lo=lo, hi=hi,
                         stops=BLUES, cell_text=text, row_title="layer", col_title="snapshot →",
                         caption=CAPTIONS.get(name, FIGURE_TITLES.get(name, name)),
                         ticks=[(lo, f"{lo:.2g}"), (hi, f"{hi:.2g}")])


def layer_figure(result: LayerAnalysis, name: str, label: str) -> Any:
    """The figure ``name`` as a plotly heatmap (values as lists, NaN as gaps)."""
    go = require("plotly").graph_objects
    grid = np.asarray(result.figures[name], dtype=np.float64)
    lo, hi = value_range(name, grid)
    z = [[float(v) if np.isfinite(v) else None for v in row] for row in grid.tolist()]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(result.labels), y=list(result.layers), zmin=lo, zmax=hi, colorscale="Viridis",
        texttemplate="%{z:.2f}", hoverongaps=False, colorbar={"title": {"text": name}},
        hovertemplate="%{y} at %{x}<br>" + FIGURE_TITLES.get(name, name) + ": %{z:.3f}<extra></extra>",
    ))
    fig.update_layout(title=f"{FIGURE_TITLES.get(name, name)}, as of {label}",
                      xaxis={"title": {"text": "snapshot"}, "type": "category"},
                      yaxis={"title": {"text": "layer"}, "type": "category"})
    return fig


def layer_rows(result: LayerAnalysis) -> tuple[list[str], list[list[Any]]]:
    """A long table of the grids: one row per (snapshot, layer), one column per figure (``None`` when undefined)."""
    names = list(result.figures)
    rows = []
    for j, (snapshot, label) in enumerate(zip(result.snapshots, result.labels)):
        for i, layer in enumerate(result.layers):
            values = [float(result.figures[n][i, j]) for n in names]
            rows.append([snapshot, label, i, layer, *(v if np.isfinite(v) else None for v in values)])
    return ["snapshot", "label", "depth", "layer", *names], rows

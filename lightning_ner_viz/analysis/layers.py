"""Where in the network entities form: per encoder layer and snapshot, four figures in the original feature space.

- ``cka_to_last``: linear CKA between the layer at that snapshot and the same layer at the latest snapshot (the
  final epoch once training ends): 1 where the layer already looks as it ends up; a frozen layer stays at 1.
- ``knn_purity``: the share of each token's 10 nearest neighbours with its gold label.
- ``probe_accuracy``: a cross-validated linear probe's accuracy (:mod:`~lightning_ner_viz.analysis.linear_probe`).
- ``separation``: the median over entity labels of the class-similarity separation (nearest other centroid over
  the label's spread, :mod:`~lightning_ner_viz.analysis.class_similarity`).

The last three are fixed once a snapshot is seen and kept as numbers (:meth:`LayerAnalyst.state_dict`); the
first is recomputed at every snapshot against the layers saved on disk, one earlier snapshot at a time, so
memory stays at two snapshots' layers (``2 × max_tokens × layers × hidden size`` floats).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_ner_viz.analysis._checks import NAN
from lightning_ner_viz.analysis.class_similarity import class_similarity
from lightning_ner_viz.analysis.drift import linear_cka
from lightning_ner_viz.analysis.errors import jsonable
from lightning_ner_viz.analysis.linear_probe import probe_accuracy
from lightning_ner_viz.analysis.quality import knn_purity
from lightning_ner_viz.keys import parse_key

LAYER_FIGURES = ("cka_to_last", "knn_purity", "probe_accuracy", "separation")
"""The figures, in the order the sinks show them."""
FIGURE_TITLES = {
    "cka_to_last": "CKA to the layer's latest snapshot",
    "knn_purity": "kNN label purity (k=10)",
    "probe_accuracy": "linear probe accuracy (3-fold)",
    "separation": "class separation (entity labels)",
}
"""How the sinks title each figure."""

EarlierLayers = Callable[[str], "tuple[np.ndarray, dict[str, np.ndarray]] | None"]
"""Reads an earlier snapshot's token ids and layers by name (``None`` when it is not on disk)."""


@dataclass
class LayerAnalysis:
    """The layer × snapshot figures as of one snapshot (plain data, picklable).

    Attributes:
        layers: the rows: layer names, input side first.
        snapshots: the columns: snapshot names in capture order, this one last.
        labels: the columns as the pictures name them (``epoch 2 · step 120``).
        figures: figure name (:data:`LAYER_FIGURES`) to an array of shape (n_layers, n_snapshots); NaN where a
            figure is undefined (e.g. too few labels) or an earlier snapshot's layers are not on disk.
        notes: why a figure is missing (e.g. scikit-learn not installed).
    """

    layers: list[str]
    snapshots: list[str]
    labels: list[str]
    figures: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values (NaN as ``None``)."""
        return {"layers": self.layers, "snapshots": self.snapshots, "labels": self.labels,
                "figures": {k: jsonable(v) for k, v in self.figures.items()}}

    def metrics(self) -> dict[str, float]:
        """The latest snapshot's column as scalar metrics, ``layers/<figure>/<layer>``, for line charts (but not
        ``cka_to_last``: its latest column is 1 by definition)."""
        return {f"layers/{name}/{layer}": float(value) for name, grid in self.figures.items() if name != "cka_to_last"
                for layer, value in zip(self.layers, np.asarray(grid)[:, -1].tolist())}


def layer_vectors(snapshot: Any) -> dict[str, np.ndarray]:
    """The layers to compare: ``snapshot.layers`` (``hidden_module="all"``), else the hidden views when
    ``hidden_module`` listed two or more, else none."""
    if snapshot.layers:
        return dict(snapshot.layers)
    hidden = {v: X for v, X in snapshot.views.items() if v.startswith("hidden")}
    return hidden if len(hidden) > 1 else {}


def entity_separation(X: np.ndarray, gold: np.ndarray, label_names: list[str]) -> float:
    """The median separation of the labels other than ``O`` (NaN when none is defined); the median, because a
    rare label whose few tokens sit together has a tiny spread and a huge separation."""
    sep = np.asarray(class_similarity(X, gold, label_names).separation, dtype=np.float64)
    entity = np.asarray([name != "O" for name in label_names]) & np.isfinite(sep)
    return float(np.median(sep[entity])) if entity.any() else NAN


class LayerAnalyst:
    """Keeps each snapshot's per-layer figures and computes the layer × snapshot grids, one snapshot at a time.

    Args:
        earlier: reads an earlier snapshot's token ids and layers from disk, for ``cka_to_last``.
        seed: the linear probe's random state.
    """

    def __init__(self, earlier: EarlierLayers | None = None, seed: int = 0) -> None:
        self.earlier = earlier
        self.seed = seed
        self.seen: dict[str, dict[str, Any]] = {}  # snapshot name -> {"label", "figures": {figure: {layer: value}}}

    def update(self, snapshot: Any) -> LayerAnalysis | None:
        """The figures as of ``snapshot`` (``None`` when it has no layers to compare)."""
        # as saved (float16): a resumed run, reading them back, computes the same figures
        layers = {k: np.asarray(v, dtype=np.float16).astype(np.float32) for k, v in layer_vectors(snapshot).items()}
        if not layers:
            return None
        notes: list[str] = []
        self.seen[snapshot.key.name] = {"label": snapshot.label,
                                        "figures": self._own_figures(snapshot, layers, notes)}
        names = sorted(self.seen, key=lambda n: parse_key(n).order())  # type: ignore[union-attr]
        order = list(layers)
        grids = {f: np.array([[self.seen[n]["figures"].get(f, {}).get(layer, NAN) for n in names] for layer in order],
                             dtype=np.float64) for f in LAYER_FIGURES if f != "cka_to_last"}
        grids = {"cka_to_last": self._cka_to_last(snapshot, layers, names), **grids}
        return LayerAnalysis(order, names, [self.seen[n]["label"] for n in names], grids, notes)

    def _own_figures(self, snapshot: Any, layers: Mapping[str, np.ndarray], notes: list[str]) -> dict[str, dict]:
        gold, names = np.asarray(snapshot.gold), list(snapshot.label_names)
        figures: dict[str, dict[str, float]] = {"knn_purity": {}, "probe_accuracy": {}, "separation": {}}
        for layer, X in layers.items():
            figures["knn_purity"][layer] = knn_purity(X, gold)
            figures["separation"][layer] = entity_separation(X, gold, names)
            try:
                figures["probe_accuracy"][layer] = probe_accuracy(X, gold, seed=self.seed)
            except ModuleNotFoundError as err:
                notes.append(f"No linear probe: {err}")
                figures["probe_accuracy"][layer] = NAN
        return figures

    def _cka_to_last(self, snapshot: Any, layers: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
        grid = np.full((len(layers), len(names)), NAN)
        ids = np.asarray(snapshot.token_id)
        for j, name in enumerate(names):
            found = (ids, layers) if name == snapshot.key.name else self.earlier(name) if self.earlier else None
            if found is None:
                continue
            then_ids, then = found
            _, i_then, i_now = np.intersect1d(then_ids, ids, assume_unique=True, return_indices=True)
            for i, (layer, X) in enumerate(layers.items()):
                if layer in then and len(i_now) > 1:
                    grid[i, j] = linear_cka(np.asarray(then[layer])[i_then], np.asarray(X)[i_now])
        return grid

    def state_dict(self) -> dict[str, Any]:
        """The per-snapshot figures seen so far (plain values), so a resumed run keeps its columns."""
        return {name: {"label": seen["label"], "figures": {f: {k: None if np.isnan(v) else v for k, v in by.items()}
                                                           for f, by in seen["figures"].items()}}
                for name, seen in self.seen.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""
        self.seen = {name: {"label": seen["label"], "figures": {f: {k: NAN if v is None else float(v)
                                                                    for k, v in by.items()}
                                                                for f, by in seen["figures"].items()}}
                     for name, seen in state.items()}

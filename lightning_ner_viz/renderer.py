"""Rank zero's half of the pipeline: reduce each view, measure, hand to the sinks."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.reducers import make_reducer
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.snapshot import Snapshot


class Renderer:
    """Turns a snapshot into coordinates and metrics and logs them to every sink.

    A failing sink warns once with its cause and is skipped for that epoch; the
    other sinks and the training run go on. With ``strict=True`` it raises.

    Args:
        reducer: ``"pca"``, ``"umap"`` or an object with ``fit_transform``.
        n_components: 2 or 3.
        seed: the reducers' random state.
        sinks: where to log.
        strict: re-raise sink errors instead of warning.
    """

    def __init__(self, reducer: str | Any, n_components: int, seed: int, sinks: list[Sink], strict: bool = False) -> None:
        self.reducer = reducer
        self.n_components = n_components
        self.seed = seed
        self.sinks = sinks
        self.strict = strict
        self.failed_sinks: dict[int, str] = {}

    def project(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        """View name to coordinates of shape (n_tokens, n_components); a fresh fit per view."""
        coords = {}
        for view, vectors in snapshot.views.items():
            reducer = make_reducer(self.reducer, self.n_components, self.seed)
            if isinstance(self.reducer, str) and self.reducer == "umap" and len(vectors) <= reducer.n_neighbors:
                warn(
                    f"Epoch {snapshot.epoch}: {len(vectors)} tokens are too few for UMAP "
                    f"(n_neighbors={reducer.n_neighbors}); using PCA for view {view!r}."
                )
                reducer = make_reducer("pca", self.n_components, self.seed)
            coords[view] = np.asarray(reducer.fit_transform(vectors), dtype=np.float32)
        return coords

    def measure(self, snapshot: Snapshot) -> dict[str, float]:
        """Per-epoch scalars of the sample."""
        return {
            "n_tokens": float(len(snapshot)),
            "sample_accuracy": float(snapshot.correct.mean()) if len(snapshot) else float("nan"),
        }

    def render(self, snapshot: Snapshot) -> dict[str, np.ndarray]:
        """Project, measure and log one snapshot to every sink."""
        coords = self.project(snapshot)
        metrics = self.measure(snapshot)
        for sink in self.sinks:
            try:
                sink.log_epoch(snapshot, coords, metrics)
            except Exception as err:
                if self.strict:
                    raise
                if id(sink) not in self.failed_sinks:
                    warn(
                        f"{sink!r} failed at epoch {snapshot.epoch} and is skipped "
                        f"({type(err).__name__}: {err}). Training goes on; the snapshot stays on disk."
                    )
                self.failed_sinks[id(sink)] = repr(err)
        return coords

    def close(self) -> None:
        """Close every sink, warning about (not raising) failures unless strict."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:
                if self.strict:
                    raise
                warn(f"{sink!r} failed to close ({type(err).__name__}: {err}).")

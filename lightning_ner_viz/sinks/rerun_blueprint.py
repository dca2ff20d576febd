"""The layout a recording opens with: one 3-D view per cloud, drift curves below, the summary beside."""

from __future__ import annotations

from typing import Any

from lightning_ner_viz._imports import require


def default_blueprint(prefix: str, clouds: list[str]) -> Any:
    """A Rerun blueprint for the entities under ``prefix``.

    Args:
        prefix: the sink's entity prefix (``embeddings``).
        clouds: the views and groups to show side by side, e.g. ``["hidden", "emissions", "entities"]``.
    """
    rrb = require("rerun").blueprint
    views = [c for c in clouds if c not in ("entities", "cls")]
    spaces = [rrb.Spatial3DView(origin=f"{prefix}/{c}", name=f"{c} (coloured by gold label)" if c in views else c)
              for c in clouds]

    def curves(name: str, metrics: list[str]) -> Any:
        paths = [f"{prefix}/metrics/{v}/{m}" for v in clouds for m in metrics]
        return rrb.TimeSeriesView(origin=f"{prefix}/metrics", contents=paths, name=name)

    plots = rrb.Horizontal(
        curves("cluster quality: kNN purity, silhouette", ["knn_purity", "silhouette"]),
        curves("drift vs previous epoch: CKA, cosine displacement", ["cka_prev", "displacement_mean"]),
        rrb.TimeSeriesView(origin=f"{prefix}/metrics",
                           contents=[f"{prefix}/metrics/{m}" for m in ("entity_f1", "sample_accuracy", "prediction_change")],
                           name="F1, accuracy, prediction change"),
    )
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(rrb.Horizontal(*spaces), plots, row_shares=[3, 2]),
            rrb.TextDocumentView(origin=f"{prefix}/summary", name="epoch summary"),
            column_shares=[4, 1],
        ),
        rrb.TimePanel(timeline="epoch"),
        collapse_panels=False,
    )

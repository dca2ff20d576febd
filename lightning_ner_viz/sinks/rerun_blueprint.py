"""The layout a recording opens with: one 3-D view per cloud, drift curves below, the summary beside; once
analyses arrive, also the heatmaps (confusion, class similarity), the errors and sub-cluster tables, and
per clustered cloud a tab colouring it by sub-cluster; once label issues arrive, the data map as a tab beside the
heatmaps and their table as a tab beside the errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.rerun_label_issues import DATA_MAP, TOP, data_map_view


def default_blueprint(prefix: str, clouds: list[str], heatmaps: Sequence[str] = (),
                      clustered: Sequence[str] = ()) -> Any:
    """A Rerun blueprint for the entities under ``prefix``.

    Args:
        prefix: the sink's entity prefix (``embeddings``).
        clouds: the views and groups to show side by side, e.g. ``["hidden", "emissions", "entities"]``.
        heatmaps: the heatmap images and label-issue panels logged so far, as paths under ``prefix``
            (``confusion``, ``class_similarity/hidden``, ..., ``label_issues/data_map``, ``label_issues/top``);
            with none (no analysis yet), the layout has no analysis panels.
        clustered: the clouds with a ``<cloud>/clusters`` layer; each gets a second tab showing it.
    """
    rrb = require("rerun").blueprint
    views = [c for c in clouds if c not in ("entities", "cls")]
    analysed = bool(heatmaps) or bool(clustered)

    def space(c: str) -> Any:
        gold = rrb.Spatial3DView(origin=f"{prefix}/{c}", name=f"{c} (coloured by gold label)" if c in views else c,
                                 contents=["$origin/**", "- $origin/clusters"] if c in clustered else "$origin/**")
        if c not in clustered:
            return gold
        return rrb.Tabs(gold, rrb.Spatial3DView(origin=f"{prefix}/{c}", contents=["$origin/clusters"],
                                                name=f"{c} (coloured by sub-cluster)"))

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
    summary = rrb.TextDocumentView(origin=f"{prefix}/summary", name="epoch summary")
    if not analysed:
        side: Any = summary
    else:
        images = [rrb.Spatial2DView(origin=f"{prefix}/{path}", contents=["$origin"], name=path.replace("/", ": "))
                  for path in heatmaps if path not in (DATA_MAP, TOP)]
        images += [data_map_view(prefix)] if DATA_MAP in heatmaps else []
        issues = [rrb.TextDocumentView(origin=f"{prefix}/{TOP}", name="label issues")] if TOP in heatmaps else []
        texts = rrb.Tabs(summary, rrb.TextDocumentView(origin=f"{prefix}/errors", name="errors"),
                         rrb.TextDocumentView(origin=f"{prefix}/clusters", name="sub-clusters"), *issues)
        side = rrb.Vertical(rrb.Tabs(*images), texts, row_shares=[1, 1]) if images else texts
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(rrb.Horizontal(*[space(c) for c in clouds]), plots, row_shares=[3, 2]),
            side,
            column_shares=[3, 2] if analysed else [4, 1],
        ),
        rrb.TimePanel(timeline="epoch"),
        collapse_panels=False,
    )

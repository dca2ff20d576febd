"""The metric charts of an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page: one series per metric
along the snapshots in capture order, grouped into small charts (one per metric family)."""

from __future__ import annotations

import math
import re
from typing import Any

from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.sinks.html_order import describe, in_order, ticks

VIEW_COLORS = ["#1f4e79", "#e07b00", "#2a9d8f", "#8e44ad", "#7f7f7f"]
FAMILY_TITLES = {
    "cka": "CKA similarity (1 = same geometry)", "displacement": "cosine displacement vs previous snapshot",
    "knn": "kNN label purity", "silhouette": "silhouette by gold label",
    "trustworthiness": "trustworthiness of the projection", "centroid": "label centroid shift",
}

Metrics = dict[str, tuple[SnapshotKey, dict[str, float]]]
"""Snapshot name to its key and its metrics (name to value)."""


def metrics_payload(metrics: Metrics) -> dict[str, Any]:
    """Every snapshot's metrics in capture order: ``snapshots`` (how each is named, with its axis
    ``tick``), ``epochs`` (each one's epoch) and ``series`` (metric name to one value or ``None`` per snapshot)."""
    keys = in_order(k for k, _ in metrics.values())
    values = [metrics[k.name][1] for k in keys]
    names = list(dict.fromkeys(m for v in values for m in v))
    return {
        "snapshots": [{**describe(k), "epoch": k.epoch, "step": k.step, "tick": t} for k, t in zip(keys, ticks(keys))],
        "epochs": [k.epoch for k in keys],
        "series": {m: [_finite(v.get(m)) for v in values] for m in names},
    }


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 5)


def charts(keys: list[str], views: list[str], label_color: dict[str, str]) -> list[dict[str, Any]]:
    """Group metric keys into small charts: one per family, views as colours, variants as dashes."""
    dashes = ["solid", "dash", "dot", "dashdot"]
    top = [k for k in keys if "/" not in k and k != "n_tokens"]
    quality = [k for k in top if re.search(r"acc|f1|precision|recall", k)]
    groups = ([("accuracy and F1 on the sample", quality)] if len(quality) > 1 else [(k, [k]) for k in quality]) + [
        (k, [k]) for k in top if k not in quality]
    out = [{"title": title.replace("_", " "), "lines": [
        {"key": k, "name": k.replace("_", " "), "color": VIEW_COLORS[i % 5], "dash": "solid"} for i, k in enumerate(ks)
    ]} for title, ks in groups]
    families: dict[str, list[tuple[str, str, str]]] = {}
    details: dict[str, list[str]] = {}
    for k in keys:
        parts = k.split("/")
        if len(parts) == 2:
            families.setdefault(parts[1].split("_")[0], []).append((k, parts[0], parts[1]))
        elif len(parts) > 2:
            details.setdefault(f"{parts[0]}/{parts[1]}", []).append(k)
    order = ["cka", "displacement", "knn", "silhouette", "trustworthiness"]
    for family, members in sorted(families.items(), key=lambda f: order.index(f[0]) if f[0] in order else 99):
        variants = list(dict.fromkeys(m for _, _, m in members))
        lines = []
        for key, view, metric in members:
            color = VIEW_COLORS[views.index(view) % 5] if view in views else VIEW_COLORS[4]
            name = view if len(variants) == 1 else f"{view} · {metric[len(family) + 1:] or metric}"
            lines.append({"key": key, "name": name, "color": color, "dash": dashes[variants.index(metric) % 4]})
        title = FAMILY_TITLES.get(family, variants[0].replace("_", " ") if len(variants) == 1 else family)
        out.append({"title": title, "lines": lines})
    for group, members in details.items():
        if len(members) > 12 or len(out) >= 14:
            continue
        view, metric = group.split("/")
        out.append({"title": f"{metric.replace('_', ' ')} per label · {view}", "lines": [
            {"key": k, "name": k[len(group) + 1:], "color": label_color.get(k[len(group) + 1:], "#777"),
             "dash": "solid"} for k in members]})
    return out

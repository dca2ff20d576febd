"""What the Rerun recording shows of a snapshot's analyses, at the snapshot's time (under the sink's prefix):

- ``confusion``: the whole validation set's confusion matrix as a labelled heatmap image (PNG; rows as
  shares of the gold label), and ``confusion/counts``: the raw counts as a tensor (dimensions ``gold`` and
  ``predicted``, the label order in its ``label_names`` values);
- ``class_similarity/<view or group>``: the centroids' cosine similarity as a labelled heatmap image, and
  ``class_similarity/<name>/values`` the matrix as a tensor;
- ``errors``: the misclassified sampled tokens as a markdown table (the 50 nearest another class);
- ``clusters``: every sub-cluster as a markdown table, with this snapshot's split/merge/new/vanished events;
- ``<cloud>/clusters``: the clustered cloud's points again (``hidden``, ``entities``), coloured by
  sub-cluster, with their own ``AnnotationContext`` naming each (``B-BRAND #2 · n=40 · valio, danone · 5% errors``);
- ``label_issues/data_map`` and ``label_issues/top`` (fit snapshots with a label-issue report): the data map as
  points and the most suspect tokens as a markdown table (:mod:`~lightning_ner_viz.sinks.rerun_label_issues`);
- ``<view>`` (``hidden``): the neighbours' values added to the cloud's points (a click in the viewer lists them)
  (:mod:`~lightning_ner_viz.sinks.rerun_neighbours`);
- ``layers/<figure>`` (``hidden_module="all"``): each layer × snapshot grid as a labelled heatmap image, and
  ``layers/<figure>/values`` as a tensor (dimensions ``layer`` and ``snapshot``, named in its values).
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis.clusters import ClusterReport
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.sinks.analysis_text import (
    cloud_of, cluster_label, clusters_markdown, errors_markdown, noise_label,
)
from lightning_ner_viz.sinks.heatmap import attraction_image, confusion_image, png_bytes, similarity_image
from lightning_ner_viz.sinks.layer_grids import layer_image
from lightning_ner_viz.sinks.rerun_label_issues import log_label_issues
from lightning_ner_viz.sinks.rerun_neighbours import neighbour_hover
from lightning_ner_viz.snapshot import Snapshot

ERROR_VIEW = "hidden"
"""The view whose error attraction is drawn (the representation, not the classifier's logits)."""

NOISE_COLOR = (160, 160, 160)


def cluster_color(stable_id: int) -> tuple[int, int, int]:
    """A colour per stable cluster id, the same at every snapshot (hues a golden angle apart)."""
    hue = (stable_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.92 if stable_id % 2 else 0.72)
    return int(r * 255), int(g * 255), int(b * 255)


def cluster_class_ids(report: ClusterReport, class_ids: np.ndarray
                      ) -> tuple[np.ndarray, list[tuple[int, str, tuple[int, int, int]]]]:
    """Per row of a clustered cloud, a class id for its (class, sub-cluster); and (id, label, colour) naming each.

    Ids are per snapshot: 1, 2, ... for the sub-clusters in the order of ``report.summaries``, then one per class
    for its noise; the colour follows the stable cluster id, so a sub-cluster keeps its colour across snapshots.
    """
    ids = np.zeros(len(report.stable_id), dtype=np.int64)
    names = []
    for k, summary in enumerate(report.summaries, start=1):
        ids[report.stable_id == summary.cluster_id] = k
        names.append((k, cluster_label(summary), cluster_color(summary.cluster_id)))
    noise = report.stable_id < 0
    base = len(report.summaries) + 1
    for c in np.unique(class_ids[noise]).tolist():
        rows = noise & (class_ids == c)
        ids[rows] = base + c
        names.append((base + c, noise_label(report.class_names[c], int(rows.sum())), NOISE_COLOR))
    return ids, names


def _png(rgb: np.ndarray) -> Any:
    """A heatmap as a PNG-encoded image: ~15 kB in the recording instead of its 2.5 MB of pixels."""
    return require("rerun").EncodedImage(contents=png_bytes(rgb), media_type="image/png")


def log_analysis(rec: Any, prefix: str, snapshot: Snapshot, analysis: EpochAnalysis,
                 coords: dict[str, np.ndarray], crowds: dict[int, str] | None = None) -> list[str]:
    """Log the analyses of ``snapshot`` (the time must be set already); ``coords`` are the clouds' coordinates
    from the same snapshot's ``log_epoch``/``log_group``; ``crowds`` carries the neighbours' labels from one
    snapshot to the next (see :func:`~lightning_ner_viz.sinks.rerun_neighbours.neighbour_hover`).

    Returns:
        The heatmaps and label-issue panels logged, as paths under ``prefix`` (``confusion``,
        ``class_similarity/hidden``, ..., ``label_issues/data_map``, ``label_issues/top``).
    """
    rr = require("rerun")
    shown = []
    if snapshot.confusion is not None and len(snapshot.label_names):
        rec.log(f"{prefix}/confusion", _png(confusion_image(snapshot.confusion, snapshot.label_names, snapshot.label)))
        rec.log(f"{prefix}/confusion/counts",
                rr.Tensor(np.asarray(snapshot.confusion, dtype=np.int64), dim_names=["gold", "predicted"]),
                rr.AnyValues(label_names=list(snapshot.label_names)))
        shown.append("confusion")
    for name, sim in analysis.similarity.items():
        if not len(sim.label_names):
            continue
        image = similarity_image(sim.similarity, sim.label_names, sim.separation, name, snapshot.label,
                                 sim.centered, sim.counts)
        rec.log(f"{prefix}/class_similarity/{name}", _png(image))
        rec.log(f"{prefix}/class_similarity/{name}/values",
                rr.Tensor(np.asarray(sim.similarity, dtype=np.float32), dim_names=["class", "class"],
                          value_range=(-1.0, 1.0)),
                rr.AnyValues(label_names=list(sim.label_names)))
        shown.append(f"class_similarity/{name}")
    for view, geometry in analysis.errors.items():
        if len(geometry) and view == ERROR_VIEW:
            rec.log(f"{prefix}/error_attraction/{view}", _png(attraction_image(
                geometry.attraction, geometry.label_names, geometry.gold, view, snapshot.label)))
            shown.append(f"error_attraction/{view}")
    rec.log(f"{prefix}/errors", rr.TextDocument(errors_markdown(snapshot, analysis), media_type=rr.MediaType.MARKDOWN))
    rec.log(f"{prefix}/clusters", rr.TextDocument(clusters_markdown(snapshot, analysis),
                                                  media_type=rr.MediaType.MARKDOWN))
    for name, report in analysis.clusters.items():
        cloud, xyz = cloud_of(snapshot, name), coords.get(name)
        if cloud is None or xyz is None or len(xyz) != len(report.stable_id):
            continue
        ids, names = cluster_class_ids(report, cloud.gold)
        path = f"{prefix}/{name}/clusters"
        points = rr.Points3D if xyz.shape[1] == 3 else rr.Points2D
        rec.log(path, rr.AnnotationContext([rr.AnnotationInfo(id=i, label=label, color=color)
                                            for i, label, color in names]))
        rec.log(path, points(xyz, class_ids=ids, radii=rr.Radius.ui_points(3.5 if name == "entities" else 3.0)))
    near = analysis.neighbours
    if near is not None and near.view in coords and 0 < len(near.row) == len(coords[near.view]) == len(snapshot):
        rec.log(f"{prefix}/{near.view}", rr.AnyValues(**neighbour_hover(snapshot, near, {} if crowds is None else crowds)))
    if analysis.label_issues is not None:
        shown += log_label_issues(rec, prefix, analysis.label_issues, snapshot.label)
    layers = analysis.layers
    for name in [] if layers is None else layers.figures:
        rec.log(f"{prefix}/layers/{name}", _png(layer_image(layers, name, snapshot.label)))
        rec.log(f"{prefix}/layers/{name}/values",
                rr.Tensor(np.asarray(layers.figures[name], dtype=np.float32), dim_names=["layer", "snapshot"]),
                rr.AnyValues(layers=list(layers.layers), snapshots=list(layers.labels)))
        shown.append(f"layers/{name}")
    return shown


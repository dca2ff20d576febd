"""What TensorBoard shows of a snapshot's analyses, at the snapshot's global step, under the prefix its scalars
use (``<prefix>``, ``<prefix>/baseline`` or ``<prefix>/validate``, see :mod:`~lightning_ner_viz.sinks.snapshot_keys`):

- Images tab: ``<p>/confusion``, the whole validation set's confusion matrix, and ``<p>/class_similarity/<view
  or group>``, the centroids' cosine similarity, as heatmaps with the label names, values and a colour bar
  drawn in (:mod:`~lightning_ner_viz.sinks.heatmap`); for fit snapshots with label issues,
  ``<p>/label_issues/data_map``, the data map with axes, regions and legend
  (:mod:`~lightning_ner_viz.sinks.data_map_png`); ``<p>/layers/<figure>`` (``hidden_module="all"``), each layer ×
  snapshot grid (:mod:`~lightning_ner_viz.sinks.layer_grids`);
- Text tab (markdown): ``<p>/errors``, the misclassified sampled tokens (the 50 nearest another class first),
  ``<p>/clusters``, every sub-cluster and this snapshot's split/merge/new/vanished events, and
  ``<p>/span_errors``, the span-error counts per entity type, and ``<p>/label_issues/top``, the 10 most suspect
  tokens (``add_text`` stores each as ``<tag>/text_summary``).
"""

from __future__ import annotations

from typing import Any

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
from lightning_ner_viz.sinks.analysis_text import clusters_markdown, errors_markdown, span_markdown
from lightning_ner_viz.sinks.data_map_png import data_map_image
from lightning_ner_viz.sinks.heatmap import attraction_image, confusion_image, similarity_image
from lightning_ner_viz.sinks.label_issue_text import issues_markdown
from lightning_ner_viz.sinks.snapshot_keys import scalar_prefix
from lightning_ner_viz.sinks.layer_grids import layer_image
from lightning_ner_viz.snapshot import Snapshot

TOP_TEXT_ROWS = 10
"""Rows of the label-issues text (the CSV in the snapshot root has them all)."""


def log_analysis(writer: Any, prefix: str, snapshot: Snapshot, analysis: EpochAnalysis) -> list[str]:
    """Add the snapshot's heatmaps (``add_image``) and tables (``add_text``) at ``global_step = snapshot.step``.

    Returns:
        The tags written.
    """
    tags = scalar_prefix(prefix, snapshot.key)
    step = int(snapshot.step)
    written = []

    def image(tag: str, rgb: Any) -> None:
        writer.add_image(tag, rgb, global_step=step, dataformats="HWC")
        written.append(tag)

    def text(tag: str, markdown: str) -> None:
        writer.add_text(tag, markdown, global_step=step)
        written.append(tag)

    if snapshot.confusion is not None and len(snapshot.label_names):
        image(f"{tags}/confusion", confusion_image(snapshot.confusion, snapshot.label_names, snapshot.label))
    for name, sim in analysis.similarity.items():
        if len(sim.label_names):
            image(f"{tags}/class_similarity/{name}", similarity_image(
                sim.similarity, sim.label_names, sim.separation, name, snapshot.label, sim.centered, sim.counts))
    geometry = analysis.errors.get("hidden")
    if geometry is not None and len(geometry):
        image(f"{tags}/error_attraction/hidden", attraction_image(
            geometry.attraction, geometry.label_names, geometry.gold, "hidden", snapshot.label))
    text(f"{tags}/errors", errors_markdown(snapshot, analysis))
    text(f"{tags}/clusters", clusters_markdown(snapshot, analysis))
    spans = span_markdown(snapshot)
    if spans:
        text(f"{tags}/span_errors", f"## Entity spans of the whole validation set · {snapshot.label}\n\n{spans}")
    issues = analysis.label_issues
    if issues is not None:
        image(f"{tags}/label_issues/data_map", data_map_image(issues, snapshot.label))
        text(f"{tags}/label_issues/top", issues_markdown(issues, snapshot.label, TOP_TEXT_ROWS))
    for name in [] if analysis.layers is None else analysis.layers.figures:
        image(f"{tags}/layers/{name}", layer_image(analysis.layers, name, snapshot.label))
    return written

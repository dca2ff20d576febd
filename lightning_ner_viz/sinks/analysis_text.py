"""The analyses as words, shared by the Rerun, W&B and TensorBoard sinks: markdown tables of the errors, the
sub-clusters and their events and the span errors, and one line naming each sub-cluster."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lightning_ner_viz.analysis.clusters import ClusterReport, ClusterSummary
from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis, error_rows
from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES, span_f1
from lightning_ner_viz.snapshot import Snapshot

ERROR_ROWS = 50
"""How many misclassified tokens the errors table shows (the most attracted to another class first)."""
SENTENCE_CHARS = 90
"""How much of a sentence a table cell shows, around the marked word."""


def primary_view(analysis: EpochAnalysis) -> str | None:
    """The view whose error geometry the errors table shows: ``hidden`` when there is one, else the first."""
    if "hidden" in analysis.errors:
        return "hidden"
    return next(iter(analysis.errors), None)


def cloud_of(snapshot: Snapshot, name: str) -> Snapshot | None:
    """The rows a clustered cloud ``name`` was computed on: the snapshot for a view, else its group ``name``."""
    return snapshot if name in snapshot.views else snapshot.groups.get(name)


def cell(value: Any) -> str:
    """A markdown table cell: ``|`` escaped, line breaks as spaces."""
    return " ".join(str(value).replace("|", "\\|").splitlines())


def excerpt(sentence: str, width: int = SENTENCE_CHARS) -> str:
    """At most ``width`` characters of ``sentence`` around its first ``«`` (the marked word), with ``…`` where cut."""
    if len(sentence) <= width:
        return sentence
    mark = max(sentence.find("«"), 0)
    start = min(max(mark - width // 3, 0), len(sentence) - width)
    return ("…" if start > 0 else "") + sentence[start:start + width] + ("…" if start + width < len(sentence) else "")


def marked_sentence(cloud: Snapshot, row: int) -> str:
    """The sentence of ``cloud``'s row ``row`` with its word marked « », as in the errors table."""
    sentence = cloud.sentences.get(int(cloud.sentence_id[row]), "")
    word = cloud.word[row]
    return sentence.replace(word, f"«{word}»", 1) if word and word in sentence else sentence


def percent(share: float) -> str:
    """``0.053`` -> ``5%``; NaN -> ``-``."""
    return "-" if share is None or not math.isfinite(share) else f"{100 * share:.0f}%"


def cluster_label(summary: ClusterSummary, words: int = 3) -> str:
    """One line naming a sub-cluster: ``B-BRAND #2 · n=40 · valio, danone · 5% errors``."""
    parts = [f"{summary.class_name} #{summary.cluster_id}", f"n={summary.size}"]
    if summary.top_words:
        parts.append(", ".join(summary.top_words[:words]))
    if math.isfinite(summary.error_rate):
        parts.append(f"{percent(summary.error_rate)} errors")
    return " · ".join(parts)


def noise_label(class_name: str, size: int) -> str:
    """The line naming a class's rows that HDBSCAN left out of every sub-cluster."""
    return f"{class_name} · no sub-cluster (noise) · n={size}"


def errors_markdown(snapshot: Snapshot, analysis: EpochAnalysis, limit: int = ERROR_ROWS) -> str:
    """The misclassified sampled tokens of :func:`primary_view`, most attracted to another class first."""
    view = primary_view(analysis)
    heading = f"## Errors · {snapshot.label}"
    if view is None:
        return f"{heading}\n\nNo predictions were captured, so there are no errors to show."
    geometry = analysis.errors[view]
    rows = error_rows(snapshot, geometry, limit)
    if not rows:
        return f"{heading}\n\nEvery sampled token is predicted correctly."
    lines = [heading, "",
             f"{len(geometry)} misclassified sampled tokens; the {len(rows)} sitting nearest another class first "
             f"(margin < 0: nearer another class's centroid than its own, in the `{view}` view; kNN vote of "
             f"{geometry.k} correctly predicted neighbours).", "",
             "| token | sentence | gold | predicted | kNN vote | nearest class | margin |",
             "| --- | --- | --- | --- | --- | --- | ---: |"]
    for r in rows:
        margin = "-" if r["margin"] is None else f"{r['margin']:+.3f}"
        lines.append(f"| {cell(r['token'])} | {cell(excerpt(r['sentence']))} | {cell(r['gold'])} | "
                     f"{cell(r['predicted'])} | {cell(r['knn_vote'])} | {cell(r['nearest_class'])} | {margin} |")
    return "\n".join(lines)


def cluster_rows(snapshot: Snapshot, name: str, report: ClusterReport) -> list[dict[str, Any]]:
    """One dict per sub-cluster of the cloud ``name``: cloud, class, cluster_id, size, top_words, error_rate,
    example (its most central member's sentence, word marked) and label (:func:`cluster_label`)."""
    cloud = cloud_of(snapshot, name)
    out = []
    for s in report.summaries:
        example = marked_sentence(cloud, s.example_row) if cloud is not None and s.example_row < len(cloud) else ""
        out.append({"cloud": name, "class": s.class_name, "cluster_id": s.cluster_id, "size": s.size,
                    "top_words": ", ".join(f"{w} ({n})" for w, n in zip(s.top_words, s.top_counts)),
                    "error_rate": None if not math.isfinite(s.error_rate) else round(s.error_rate, 4),
                    "example": example, "label": cluster_label(s)})
    return out


def event_text(event: Any, class_names: list[str]) -> str:
    """``B-BRAND: #3 split into #7, #8`` (also ``merged into``, ``new``, ``vanished``)."""
    name = class_names[event.class_id] if 0 <= event.class_id < len(class_names) else str(event.class_id)
    before, after = (", ".join(f"#{i}" for i in ids) for ids in (event.before, event.after))
    if event.kind == "split":
        return f"{name}: {before} split into {after}"
    if event.kind == "merge":
        return f"{name}: {before} merged into {after}"
    return f"{name}: {after or before} {event.kind}"


def events_markdown(analysis: EpochAnalysis) -> str:
    """Per clustered cloud: how many sub-clusters, and this snapshot's split/merge/new/vanished events."""
    if not analysis.clusters:
        return ""
    lines = ["### Sub-clusters"]
    for name, report in analysis.clusters.items():
        noise = int((report.stable_id < 0).sum())
        classes = len({summary.class_id for summary in report.summaries})
        lines += ["", f"**{name}**: {len(report.summaries)} sub-clusters in {classes} classes"
                  + (f", {noise} rows in none." if noise else ".")]
        changes = [f"- {event_text(e, report.class_names)}" for e in report.events]
        lines += changes or ["- no change since the last snapshot"]
    return "\n".join(lines)


def clusters_markdown(snapshot: Snapshot, analysis: EpochAnalysis) -> str:
    """A table of every sub-cluster per clustered cloud, then the events."""
    lines = [f"## Sub-clusters · {snapshot.label}"]
    if not analysis.clusters:
        why = f" ({'; '.join(analysis.notes)})" if analysis.notes else ""
        return f"{lines[0]}\n\nNo sub-clusters were computed{why}."
    for name, report in analysis.clusters.items():
        lines += ["", f"### {name}", "", "| class | cluster | size | top words | errors | example |",
                  "| --- | ---: | ---: | --- | ---: | --- |"]
        for r in cluster_rows(snapshot, name, report):
            lines.append(f"| {cell(r['class'])} | #{r['cluster_id']} | {r['size']} | {cell(r['top_words'])} | "
                         f"{percent(r['error_rate'] if r['error_rate'] is not None else math.nan)} | "
                         f"{cell(excerpt(r['example']))} |")
    events = events_markdown(analysis)
    return "\n".join(lines) + ("\n\n" + events.replace("### Sub-clusters", "### Changes") if events else "")


def span_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """One dict per entity type of ``snapshot.span_counts``: type, the span categories and entity_f1; [] without."""
    if snapshot.span_counts is None:
        return []
    counts = np.asarray(snapshot.span_counts, dtype=np.int64)
    return [{"type": t, **{c: int(v) for c, v in zip(SPAN_CATEGORIES, counts[i].tolist())},
             "entity_f1": round(span_f1(counts[i]), 4)} for i, t in enumerate(snapshot.span_types)]


def span_markdown(snapshot: Snapshot) -> str:
    """The whole validation set's span errors per entity type, as a markdown table ("" without span counts)."""
    rows = span_rows(snapshot)
    if not rows:
        return ""
    header = ["type", *SPAN_CATEGORIES, "entity F1"]
    lines = ["| " + " | ".join(h.replace("_", " ") for h in header) + " |",
             "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join([cell(r["type"]), *(str(r[c]) for c in SPAN_CATEGORIES), f"{r['entity_f1']:.3f}"])
              + " |" for r in rows]
    return "\n".join(lines)

"""The answers to the user's questions for one snapshot, in the original feature space: where the errors go,
which classes are alike, which sub-clusters form; computed where the projection runs (off the training thread).

The full-set confusion matrix and span errors are counted during the capture and travel on the
:class:`~lightning_ner_viz.snapshot.Snapshot` (``confusion``, ``span_counts``); this module adds
what needs the sampled vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_ner_viz.analysis.class_similarity import ClassSimilarity, class_similarity
from lightning_ner_viz.analysis.clusters import ClusterReport, ClusterTracker, cluster_report
from lightning_ner_viz.analysis.errors import ErrorGeometry, error_geometry
from lightning_ner_viz.analysis.label_issue_report import LabelIssueReport
from lightning_ner_viz.analysis.layers import LayerAnalysis
from lightning_ner_viz.analysis.neighbours import NeighbourFinder, Neighbours
from lightning_ner_viz.snapshot import Snapshot

CLUSTERED = ("hidden", "entities")
"""Where sub-clusters are looked for: the ``hidden`` view per gold label, the ``entities`` group per entity type."""


@dataclass
class EpochAnalysis:
    """One snapshot's analyses, plain data (picklable; :meth:`to_dict` is JSON-safe).

    Attributes:
        errors: token view name to the error geometry of its misclassified sampled tokens.
        similarity: view or group name to its class similarity (centred centroid cosines, separation).
        clusters: ``hidden`` (per gold label) and ``entities`` (per entity type) to the sub-clusters,
            with ids stable across epochs and this epoch's split/merge/new/vanished events.
        label_issues: the ranked label issues of the whole validation set (fit snapshots with token dynamics).
        layers: the layer × snapshot figures (``hidden_module="all"``, or two hidden modules or more).
        neighbours: each token's nearest neighbours in the ``hidden`` view, and their overlap with the previous
            snapshot's.
        notes: why an analysis is missing (e.g. scikit-learn not installed), for one warning.
    """

    errors: dict[str, ErrorGeometry] = field(default_factory=dict)
    similarity: dict[str, ClassSimilarity] = field(default_factory=dict)
    clusters: dict[str, ClusterReport] = field(default_factory=dict)
    label_issues: LabelIssueReport | None = None
    layers: LayerAnalysis | None = None
    neighbours: Neighbours | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values (NaN as ``None``)."""
        return {"errors": {k: v.to_dict() for k, v in self.errors.items()},
                "similarity": {k: v.to_dict() for k, v in self.similarity.items()},
                "clusters": {k: v.to_dict() for k, v in self.clusters.items()},
                "label_issues": None if self.label_issues is None else self.label_issues.to_dict(),
                "layers": None if self.layers is None else self.layers.to_dict()}


class EpochAnalyst:
    """Analyses snapshots in order, keeping each clustered cloud's :class:`ClusterTracker` so cluster ids stay
    stable across epochs (and across a resume, through :meth:`state_dict`)."""

    def __init__(self) -> None:
        self.trackers: dict[str, ClusterTracker] = {}
        self.neighbours = NeighbourFinder(CLUSTERED[0])

    def analyse(self, snapshot: Snapshot, previous: Snapshot | None = None) -> EpochAnalysis:
        """Every analysis of ``snapshot`` and of its groups (``previous``: the snapshot before it, for the
        neighbours' overlap after a resume)."""
        result = EpochAnalysis(neighbours=self.neighbours.find(snapshot, previous))
        known = snapshot.pred >= 0
        for view, X in snapshot.views.items():
            if known.any():
                result.errors[view] = error_geometry(X, snapshot.gold, snapshot.pred, snapshot.label_names)
            result.similarity[view] = class_similarity(X, snapshot.gold, snapshot.label_names, center=True)
        for name, group in snapshot.groups.items():
            if name in group.views and len(group) > 1:
                result.similarity[name] = class_similarity(group.views[name], group.gold, group.label_names,
                                                           center=True)
        for name in CLUSTERED:
            cloud = snapshot if name in snapshot.views else snapshot.groups.get(name)
            if cloud is None or name not in cloud.views or len(cloud) < 2:
                continue
            tracker = self.trackers.setdefault(name, ClusterTracker())
            try:
                result.clusters[name] = cluster_report(
                    cloud.views[name], cloud.gold, cloud.label_names, cloud.token_id, cloud.word, cloud.correct,
                    sentence_ids=cloud.sentence_id, known=cloud.pred >= 0, tracker=tracker)
            except ModuleNotFoundError as err:  # scikit-learn, for HDBSCAN: the other analyses go on
                result.notes.append(f"No sub-clusters: {err}")
                break
        return result

    def state_dict(self) -> dict[str, Any]:
        """Each tracker's state (plain lists of ints)."""
        return {name: tracker.state_dict() for name, tracker in self.trackers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the trackers of :meth:`state_dict`."""
        for name, saved in state.items():
            self.trackers.setdefault(name, ClusterTracker()).load_state_dict(saved)


def error_rows(snapshot: Snapshot, geometry: ErrorGeometry, limit: int | None = None) -> list[dict[str, Any]]:
    """The errors table: one dict per misclassified sampled token, most attracted first (by margin): ``token``,
    ``word``, ``sentence`` (the word marked with « »), ``gold``, ``predicted``, ``knn_vote``, ``nearest_class``,
    ``margin`` and ``row`` (its row in the snapshot)."""
    names = snapshot.label_names

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else "?"

    rows = []
    for k, i in enumerate(geometry.index[:limit].tolist()):
        sentence = snapshot.sentences.get(int(snapshot.sentence_id[i]), "")
        word = snapshot.word[i]
        marked = sentence.replace(word, f"«{word}»", 1) if word and word in sentence else sentence
        margin = float(geometry.margin[k])
        rows.append({"row": int(i), "token": snapshot.token[i], "word": word, "sentence": marked,
                     "gold": name(int(geometry.gold[k])), "predicted": name(int(geometry.pred[k])),
                     "knn_vote": name(int(geometry.knn_vote[k])), "nearest_class": name(int(geometry.nearest_class[k])),
                     "margin": None if np.isnan(margin) else round(margin, 4)})
    return rows

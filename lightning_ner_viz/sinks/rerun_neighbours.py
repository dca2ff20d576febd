"""What the Rerun cloud tells about each point's nearest neighbours in the original space (issue #18).

The neighbours are computed in the projector (:mod:`~lightning_ner_viz.analysis.neighbours`); the sink adds them to
the cloud's entity (``<prefix>/hidden``) at the snapshot's time as more values, one per point. A click on a point
lists them in the viewer's Selection panel (its hover tooltip shows only a summary for an entity with more than
three components); hovering the ``neighbours`` value there shows its lines in full:

- ``neighbours``: one line per neighbour, nearest first: ``word (gold, predicted pred) 0.123`` (cosine distance);
- ``neighbour_labels``: the neighbours' gold labels, most first: ``B-BRAND ×7, O ×3``;
- ``neighbour_labels_before``: the same at the previous snapshot this sink logged (empty for the first), so a user
  sees a token move from the ``O`` crowd to the ``B-BRAND`` crowd;
- ``neighbours_kept_share``: the share of the neighbour set kept since the previous snapshot (Jaccard, 3 decimals;
  NaN for the first).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from lightning_ner_viz.analysis.neighbours import Neighbours
from lightning_ner_viz.snapshot import Snapshot


def crowd(labels: list[str]) -> str:
    """Labels counted, most first (ties in first-seen order): ``B-BRAND ×7, O ×3``."""
    return ", ".join(f"{name} ×{n}" for name, n in Counter(labels).most_common())


def neighbour_hover(snapshot: Snapshot, neighbours: Neighbours, before: dict[int, str]) -> dict[str, list]:
    """The neighbour values of every point of ``neighbours.view`` (see the module's docstring).

    Args:
        snapshot: the snapshot the neighbours were found in (its rows are the points).
        neighbours: its :class:`~lightning_ner_viz.analysis.neighbours.Neighbours`.
        before: token id to ``neighbour_labels`` at the previous snapshot logged; replaced by this snapshot's.
    """
    gold, pred = snapshot.gold_names(), snapshot.pred_names()
    words = [str(w) for w in snapshot.word]
    ids = np.asarray(snapshot.token_id, dtype=np.int64).tolist()
    lines, crowds = [], []
    for rows, dists in zip(neighbours.row.tolist(), neighbours.distance.tolist()):
        lines.append("\n".join(f"{words[r]} ({gold[r]}, predicted {pred[r]}) {d:.3f}" for r, d in zip(rows, dists)))
        crowds.append(crowd([gold[r] for r in rows]))
    earlier = [before.get(t, "") for t in ids]
    before.clear()
    before.update(zip(ids, crowds))
    return {"neighbours": lines, "neighbour_labels": crowds, "neighbour_labels_before": earlier,
            "neighbours_kept_share": np.round(np.asarray(neighbours.jaccard, dtype=np.float64), 3)}

"""What the comparison report shows, as JSON-ready plain values: runs, labels and colours, the token table, and per
matched snapshot each run's points and its numbers against the reference run.

Text from the users' data (tokens, words, sentences, run names) stays raw here: the page puts it in the
DOM with ``textContent`` and escapes it for plotly's hover labels.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from typing import Any

import numpy as np

from lightning_ner_viz.comparison.compare import Comparison
from lightning_ner_viz.comparison.metrics import RunComparison
from lightning_ner_viz.comparison.runs import MatchedSnapshot
from lightning_ner_viz.labels import OUTSIDE
from lightning_ner_viz.sinks.colors import hex_color, label_colors
from lightning_ner_viz.sinks.html_payload import plot_decimals, sentence_parts

SENTENCE_CHARS = 110
"""How much of a sentence the report shows, around the marked word."""
FILL = 0.5
"""Least share of the shared axis range a snapshot's clouds may span before each snapshot gets its own ranges."""
MARGIN = 0.06
"""Margin added to each side of an axis range, as a share of the data's span."""


def token_table(matched: list[MatchedSnapshot]) -> tuple[np.ndarray, dict[str, list[Any]]]:
    """Every shared token id (ascending) and its text, word and marked sentence, from the reference run."""
    rows: dict[int, list[Any]] = {}
    for snapshot in matched:
        ref, own = snapshot.snapshots[0], snapshot.rows[0]
        for tid, row in zip(snapshot.token_id.tolist(), own.tolist()):
            if tid not in rows:
                sentence = ref.sentences.get(int(ref.sentence_id[row]), "")
                parts = sentence_parts(sentence, ref.word[row], int(ref.position[row]), SENTENCE_CHARS)
                rows[tid] = [ref.token[row], ref.word[row], parts]
    ids = np.array(sorted(rows), dtype=np.int64)
    table = [rows[t] for t in ids.tolist()]
    return ids, {"id": [str(t) for t in ids.tolist()], "text": [r[0] for r in table], "word": [r[1] for r in table],
                 "sent": [r[2] for r in table]}


def rounded(coords: np.ndarray) -> list[list[float]]:
    """Columns of ``coords`` (n, k) as lists, four significant digits of the largest value."""
    c = np.nan_to_num(np.asarray(coords, dtype=np.float64))
    return np.round(c, plot_decimals(c)).T.tolist()


def axis_ranges(coords: list[list[np.ndarray]]) -> list[list[list[float]]]:
    """Per snapshot, one ``[low, high]`` per axis, shared by the runs' panels: one range over every snapshot,
    unless some snapshot's clouds would fill less than :data:`FILL` of it (then each snapshot its own)."""
    stacks = [np.concatenate(per_run) for per_run in coords]
    every = np.concatenate(stacks)

    def span(x: np.ndarray) -> list[list[float]]:
        lo, hi = x.min(0), x.max(0)
        pad = np.maximum((hi - lo) * MARGIN, 1e-6)
        return [[float(f"{a:.6g}"), float(f"{b:.6g}")] for a, b in zip(lo - pad, hi + pad)]

    width = np.ptp(every, axis=0)
    fills = [float((np.ptp(x, axis=0)[width > 0] / width[width > 0]).min()) if (width > 0).any() else 1.0
             for x in stacks]
    if min(fills) >= FILL:
        return [span(every)] * len(stacks)
    return [span(x) for x in stacks]


def versus(result: RunComparison, labels: list[str], matched: MatchedSnapshot, run: int) -> dict[str, Any]:
    """Run ``run``'s numbers against the reference at one snapshot, and its tokens that differ most: for each, how
    many neighbours (tokens, and their words) both runs have, and the words near it in one run only, with counts."""
    def finite(x: float, digits: int = 4) -> float | None:
        return round(float(x), digits) if math.isfinite(x) else None

    text = matched.snapshots[0].token
    own = matched.rows[0]

    def words(rows: np.ndarray) -> Counter[str]:
        return Counter(text[own[j]] for j in rows.tolist())

    def top_row(r: int) -> dict[str, Any]:
        near_a, near_b = (words(x) for x in result.neighbours[r])
        return {"row": r, "shared": int(result.shared_neighbours[r]), "overlap": finite(result.overlap[r], 3),
                "distance": finite(result.distance[r], 3), "same_words": sum((near_a & near_b).values()),
                "lost": (near_a - near_b).most_common(), "gained": (near_b - near_a).most_common()}

    return {
        "cka": finite(result.cka), "mean_centroid": finite(result.mean_centroid_distance), "changed": result.n_changed,
        "centroid": [finite(result.centroid_distance[name]) if name in result.centroid_distance else None
                     for name in labels],
        "k": result.k, "shared": result.shared_neighbours.tolist(),
        "gold_differs": int((matched.gold(run) != matched.gold(0)).sum()),
        "top": [top_row(int(r)) for r in result.top],
    }


def build_payload(comparison: Comparison, title: str) -> dict[str, Any]:
    """Everything the report shows, JSON-ready."""
    labels = comparison.label_names
    ids, tokens = token_table(comparison.matched)
    ranges = axis_ranges(comparison.coords)
    snapshots = []
    for s, (matched, coords, results) in enumerate(zip(comparison.matched, comparison.coords, comparison.results)):
        key = matched.key
        snapshots.append({
            "name": key.name, "label": key.label, "stage": key.stage, "baseline": key.is_baseline,
            "steps": [int(x.step) for x in matched.snapshots], "ranges": ranges[s],
            "idx": np.searchsorted(ids, matched.token_id).tolist(),
            "runs": [{"xyz": rounded(c), "gold": matched.gold(r).tolist(), "pred": matched.pred(r).tolist()}
                     for r, c in enumerate(coords)],
            "vs": [versus(result, labels, matched, r) for r, result in enumerate(results, start=1)],
        })
    return {
        "format": 1, "title": title, "runs": comparison.names, "view": comparison.view,
        "widths": comparison.widths(), "reducer": comparison.reducer, "frame": comparison.frame,
        "n_components": comparison.n_components, "labels": labels, "outside": OUTSIDE,
        "colors": [hex_color(c) for c in label_colors(labels)],
        "written": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "tokens": tokens, "snapshots": snapshots,
    }

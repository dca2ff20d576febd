"""The data an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page shows: kept snapshots, row tables, charts.

Records are keyed by the snapshot's name and kept in capture order (see :mod:`lightning_ner_viz.keys`).
Everything here is plain values (NumPy arrays in, JSON-ready lists out); no file is read or written.
"""

from __future__ import annotations

import datetime
import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.labels import OUTSIDE
from lightning_ner_viz.sinks.colors import hex_color, label_colors
from lightning_ner_viz.sinks.html_analysis import ERROR_ROWS, full_set
from lightning_ner_viz.sinks.html_charts import Metrics, charts, metrics_payload
from lightning_ner_viz.sinks.html_order import describe, entry_key, is_before
from lightning_ner_viz.sinks.packed_arrays import pack
from lightning_ner_viz.snapshot import Snapshot

CORRECT_COLOR, INCORRECT_COLOR = "#8fb996", "#d62728"
SCENE_BACKGROUND = "#f6f7f9"
MARKERS = {OUTSIDE: {"size3": 3.0, "size2": 5.0, "opacity": 0.5}, "label": {"size3": 4.0, "size2": 7.0, "opacity": 0.9}}
"""Marker size (3-D and 2-D, in px) and opacity: ``O`` points quieter and smaller than labelled ones."""
FILL = 0.6
"""Least share of an axis range a snapshot's cloud may span before all are rescaled (see :func:`fit_to_panel`)."""
MARGIN = 0.05
"""Margin added to each side of an axis range, as a share of the data's span."""


@dataclass
class Cloud:
    """The rows of one kind of picture (tokens, or a group: ``entities``, ``cls``) over the kept snapshots.

    Attributes:
        labels: label id to name.
        rows: row id to ``[text, word, sentence with the word marked, gold]``.
        records: the kept snapshots as :func:`snapshot_record` returns them, in capture order (``key.order()``).
        dims: view name to the width of its vectors.
    """

    labels: list[str] = field(default_factory=list)
    rows: dict[int, list[Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)

    def add(self, snapshot: Snapshot, coords: dict[str, np.ndarray]) -> None:
        """Keep this snapshot's rows and coordinates (replacing an earlier record of the same name)."""
        self.labels = list(snapshot.label_names)
        self.dims.update({v: int(np.shape(x)[1]) for v, x in snapshot.views.items()})
        token_rows(snapshot, self.rows)
        self._merge([snapshot_record(snapshot, coords)], replace=True)

    def annotate(self, name: str, analysis: dict[str, Any]) -> bool:
        """Add ``analysis`` (plain values, see :mod:`~lightning_ner_viz.sinks.html_analysis`) to the kept snapshot
        ``name``; ``False`` when it is not kept."""
        for r in self.records:
            if r["key"].name == name:
                r["analysis"] = {**r.get("analysis", {}), **analysis}
                return True
        return False

    def keep(self, names: set[str]) -> None:
        """Drop the records of other snapshots, and the rows no kept record uses."""
        self.records = [r for r in self.records if r["key"].name in names]
        used = {t for r in self.records for t in r["ids"].tolist()}
        self.rows = {t: v for t, v in self.rows.items() if t in used}

    def restore(self, data: dict[str, Any], before: SnapshotKey) -> None:
        """Add the snapshots captured before ``before`` from this cloud's part of a page's payload."""
        tok = data["tokens"]
        for t, *row in zip(tok["id"], tok["text"], tok["word"], tok["sent"], tok["gold"]):
            self.rows.setdefault(int(t), list(row))
        self.labels = self.labels or list(data["labels"])
        self.dims = {**data.get("view_dims", {}), **self.dims}
        self._merge(records_from_payload(data, before), replace=False)

    def _merge(self, records: list[dict[str, Any]], replace: bool) -> None:
        new = {r["key"].name for r in records}
        old = [r for r in self.records if r["key"].name not in new] if replace else self.records
        known = {r["key"].name for r in old}
        merged = old + [r for r in records if r["key"].name not in known]
        self.records = sorted(merged, key=lambda r: r["key"].order())

    def payload(self) -> dict[str, Any]:
        """Labels, colours, the row table, the kept snapshots as shown (``epochs``), and one axis range per view."""
        ids = np.array(sorted(self.rows), dtype=np.int64)
        table = [self.rows[t] for t in ids.tolist()]
        views = list(dict.fromkeys(v for r in self.records for v in r["coords"]))
        ranges, rescale = {}, {}
        for v in views:
            fits, ranges[v] = fit_to_panel([r["coords"].get(v) for r in self.records])
            if fits is not None:
                rescale[v] = fits
        return {
            "labels": self.labels, "colors": [hex_color(c) for c in label_colors(self.labels)], "views": views,
            "view_dims": {v: self.dims.get(v) for v in views}, "ranges": ranges, "rescale": rescale,
            "tokens": {"id": ids.tolist(), "text": [t[0] for t in table], "word": [t[1] for t in table],
                       "sent": [t[2] for t in table], "gold": [t[3] for t in table]},
            "epochs": [{
                "epoch": r["key"].epoch, "step": r["step"], **describe(r["key"]),
                "idx": pack(np.searchsorted(ids, r["ids"])), "pred": pack(r["pred"]), "conf": pack(r["conf"], 3),
                "coords": {v: pack(c, plot_decimals(c)) for v, c in r["coords"].items()},
                "analysis": r.get("analysis", {}),
            } for r in self.records],
        }


def fit_to_panel(arrays: list[np.ndarray | None]) -> tuple[list[list[float]] | None, list[list[float]]]:
    """How to show the snapshots' clouds in one panel: a rescaling per snapshot (or ``None``) and one range per axis.

    The ranges span every snapshot's points as shown, plus :data:`MARGIN`, so the axes stay put
    while the snapshot changes. When some snapshot spans less than :data:`FILL` of an axis's range
    (the cloud grew, shrank or moved between snapshots), each snapshot is shown centred on the latest
    one's centre (the median point) and scaled to its size (the 95th percentile distance from
    that centre): ``factor * x + shift``, given per snapshot as ``[factor, *shift]``. Each snapshot
    then fills the panel, and its shape is unchanged.

    Args:
        arrays: per snapshot, oldest first, an array of shape (n_rows, k), or ``None`` where the view is missing.
    """
    given = [np.asarray(a, dtype=np.float64) for a in arrays if a is not None]
    sizes = [_centre_size(a) for a in given]
    ref = next((cs for cs in reversed(sizes) if cs[1] > 0), None)
    if ref is None or _least_fill(given) >= FILL:
        return None, _ranges(given)
    fits = [(ref[1] / s, ref[0] - c * (ref[1] / s)) if s > 0 else (1.0, np.zeros_like(c)) for c, s in sizes]
    shown = [f * a + shift for a, (f, shift) in zip(given, fits)]
    fit_iter = iter(fits)
    per_snapshot = [[1.0] + [0.0] * len(ref[0]) if a is None else _fit_row(*next(fit_iter)) for a in arrays]
    return per_snapshot, _ranges(shown)


def _fit_row(factor: float, shift: np.ndarray) -> list[float]:
    return [float(f"{x:.7g}") for x in (factor, *shift.tolist())]


def _centre_size(a: np.ndarray) -> tuple[np.ndarray, float]:
    if not len(a):
        return np.zeros(a.shape[1]), 0.0
    centre = np.median(a, axis=0)
    return centre, float(np.percentile(np.linalg.norm(a - centre, axis=1), 95))


def _ranges(arrays: list[np.ndarray]) -> list[list[float]]:
    nonempty = [a for a in arrays if len(a)]
    k = arrays[0].shape[1] if arrays else 3
    if not nonempty:
        return [[-1.0, 1.0]] * k
    stack = np.concatenate(nonempty)
    lo, hi = stack.min(axis=0), stack.max(axis=0)
    pad = np.maximum((hi - lo) * MARGIN, 1e-6 * np.maximum(1.0, np.abs(stack).max()))
    return [[float(f"{a:.6g}"), float(f"{b:.6g}")] for a, b in zip(lo - pad, hi + pad)]


def _least_fill(arrays: list[np.ndarray]) -> float:
    """The smallest share of an axis's range (over all snapshots) that one snapshot's points span."""
    nonempty = [a for a in arrays if len(a)]
    if len(nonempty) < 2:
        return 1.0
    stack = np.concatenate(nonempty)
    width = stack.max(axis=0) - stack.min(axis=0)
    axes = width > 0
    if not axes.any():
        return 1.0
    return float(min(((a.max(axis=0) - a.min(axis=0))[axes] / width[axes]).min() for a in nonempty))


def token_rows(snapshot: Snapshot, known: dict[int, list[Any]]) -> None:
    """Add ``[token, word, sentence with the word marked, gold]`` to ``known`` for each new token id."""
    sentence_cache: dict[tuple[int, int, str], str] = {}
    for i, tid in enumerate(np.asarray(snapshot.token_id, dtype=np.int64).tolist()):
        if tid not in known:
            sid, pos, word = int(snapshot.sentence_id[i]), int(snapshot.position[i]), snapshot.word[i]
            key = (sid, pos, word)
            if key not in sentence_cache:
                sentence_cache[key] = _mark(snapshot.sentences.get(sid, ""), word, pos)
            known[tid] = [_esc(snapshot.token[i]), _esc(word), sentence_cache[key], int(snapshot.gold[i])]


def snapshot_record(snapshot: Snapshot, coords: dict[str, np.ndarray]) -> dict[str, Any]:
    """One kept snapshot: its key and step, token ids, predictions, confidences (softmax max of ``emissions``),
    coordinates, and its whole-set scores (``analysis``: confusion and span errors, see
    :func:`~lightning_ner_viz.sinks.html_analysis.full_set`)."""
    conf = None
    if "emissions" in snapshot.views and len(snapshot):
        e = np.asarray(snapshot.views["emissions"], dtype=np.float64)
        conf = 1.0 / np.exp(e - e.max(axis=1, keepdims=True)).sum(axis=1)
    return {
        "key": snapshot.key, "step": int(snapshot.step), "ids": np.asarray(snapshot.token_id, dtype=np.int64),
        "pred": np.asarray(snapshot.pred, dtype=np.int16), "conf": conf,
        "coords": {v: _fix_columns(np.asarray(c, dtype=np.float32)) for v, c in coords.items()},
        "analysis": full_set(snapshot) if snapshot.confusion is not None or snapshot.span_counts is not None else {},
    }


def records_from_payload(data: dict[str, Any], before: SnapshotKey) -> list[dict[str, Any]]:
    """The kept snapshots of a page's payload captured before ``before``, as :func:`snapshot_record` returns them."""
    ids = np.asarray(data["tokens"]["id"], dtype=np.int64)
    keyed = [(entry_key(e), e) for e in data["epochs"]]
    return [{
        "key": key, "step": int(e["step"]), "ids": ids[e["idx"]], "pred": np.asarray(e["pred"], dtype=np.int16),
        "conf": None if e["conf"] is None else np.asarray(e["conf"]),
        "coords": {v: np.asarray(c, dtype=np.float32).reshape(-1, len(data["ranges"][v]))
                   for v, c in e["coords"].items()},
        "analysis": _packed(dict(e.get("analysis") or {})),
    } for key, e in keyed if is_before(key, before)]


def build_payload(title: str, final: bool, tokens: Cloud, groups: dict[str, Cloud], metrics: Metrics) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready plain values: the token cloud at the top level, groups below it,
    and every snapshot's metrics (thinned snapshots too) in capture order."""
    page = tokens.payload()
    series = metrics_payload(metrics)
    keys = list(series["series"])
    return {
        "format": 2, "title": title, "final": final,
        "written": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        **page, "correct_color": CORRECT_COLOR, "incorrect_color": INCORRECT_COLOR,
        "background": SCENE_BACKGROUND, "markers": MARKERS, "error_rows": ERROR_ROWS,
        "groups": {name: group.payload() for name, group in groups.items() if group.records},
        "metrics": series,
        "charts": charts(keys, page["views"] + list(groups), dict(zip(page["labels"], page["colors"]))),
    }


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def sentence_parts(sentence: str, word: str, position: int, width: int) -> list[str]:
    """``[before, word, after]``: the sentence around ``word``'s occurrence nearest before ``position`` (a token
    position, so at or after its word's index), shortened with ``…`` to about ``width`` characters;
    ``[sentence, "", ""]`` (cut at ``width``) when ``word`` is not in it. The report and the run comparison show
    their tokens' sentences this way."""
    words, target = sentence.split(" "), word.split(" ")
    n = len(target)
    hits = [i for i in range(len(words) - n + 1) if word and words[i:i + n] == target]
    if not hits:
        return [sentence if len(sentence) <= width else sentence[:width] + "…", "", ""]
    i = max([h for h in hits if h <= position] or hits[:1])
    left, right = " ".join(words[:i]), " ".join(words[i + n:])
    half = max(width - len(word), 0) // 2
    if len(left) > half:
        left = "…" + left[len(left) - half:]
    if len(right) > half:
        right = right[:half] + "…"
    return [left + " " if left else "", word, " " + right if right else ""]


def _mark(sentence: str, word: str, position: int, width: int = 90) -> str:
    """The sentence with ``word`` (one word or several) in «» and bold, the occurrence nearest before ``position``,
    shortened (:func:`sentence_parts`; the «» count in ``width``); escaped for plotly's hover."""
    before, found, after = sentence_parts(sentence, word, position, width - 2)
    if not found:
        return _esc(sentence if len(sentence) <= width else sentence[:width] + "…")
    return f"{_esc(before)}<b>«{_esc(found)}»</b>{_esc(after)}"


def _fix_columns(c: np.ndarray) -> np.ndarray:
    c = np.nan_to_num(c if c.ndim == 2 else c.reshape(len(c), -1), nan=0.0, posinf=0.0, neginf=0.0)
    return c[:, :3] if c.shape[1] >= 2 else np.pad(c, ((0, 0), (0, 2 - c.shape[1])))


def plot_decimals(c: np.ndarray) -> int:
    """The decimals that keep four significant digits of the largest value: enough for a plot."""
    scale = float(np.abs(c).max()) if c.size else 1.0
    return int(np.clip(3 - math.floor(math.log10(scale)) if scale > 0 else 3, 0, 10))


def _packed(analysis: dict[str, Any]) -> dict[str, Any]:
    """``analysis`` read back from a page, with its neighbour rows and distances packed again, as
    :func:`~lightning_ner_viz.sinks.html_analysis.neighbours` packs them."""
    near = analysis.get("neighbours")
    if not near:
        return analysis
    return {**analysis, "neighbours": {**near, "row": pack(near["row"]), "dist": pack(near["dist"], 3)}}

"""The data an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page shows: kept epochs, row tables, charts.

Everything here is plain values (NumPy arrays in, JSON-ready lists out); no file is read or written.
"""

from __future__ import annotations

import datetime
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_ner_viz.labels import OUTSIDE
from lightning_ner_viz.sinks.colors import hex_color, label_colors
from lightning_ner_viz.snapshot import Snapshot

CORRECT_COLOR, INCORRECT_COLOR = "#8fb996", "#d62728"
SCENE_BACKGROUND = "#f6f7f9"
MARKERS = {OUTSIDE: {"size3": 3.0, "size2": 5.0, "opacity": 0.5}, "label": {"size3": 4.0, "size2": 7.0, "opacity": 0.9}}
"""Marker size (3-D and 2-D, in px) and opacity: ``O`` points quieter and smaller than labelled ones."""
FILL = 0.6
"""Least share of an axis range an epoch's cloud may span before the epochs are rescaled (see :func:`fit_to_panel`)."""
MARGIN = 0.05
"""Margin added to each side of an axis range, as a share of the data's span."""
_VIEW_COLORS = ["#1f4e79", "#e07b00", "#2a9d8f", "#8e44ad", "#7f7f7f"]
_FAMILY_TITLES = {
    "cka": "CKA similarity (1 = same geometry)", "displacement": "cosine displacement vs previous epoch",
    "knn": "kNN label purity", "silhouette": "silhouette by gold label",
    "trustworthiness": "trustworthiness of the projection", "centroid": "label centroid shift",
}


@dataclass
class Cloud:
    """The rows of one kind of picture (tokens, or a group: ``entities``, ``cls``) over the kept epochs.

    Attributes:
        labels: label id to name.
        rows: row id to ``[text, word, sentence with the word marked, gold]``.
        records: the kept epochs as :func:`epoch_record` returns them, sorted by epoch.
        dims: view name to the width of its vectors.
    """

    labels: list[str] = field(default_factory=list)
    rows: dict[int, list[Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)

    def add(self, snapshot: Snapshot, coords: dict[str, np.ndarray]) -> None:
        """Keep this epoch's rows and coordinates (replacing an earlier record of the same epoch)."""
        self.labels = list(snapshot.label_names)
        self.dims.update({v: int(np.shape(x)[1]) for v, x in snapshot.views.items()})
        token_rows(snapshot, self.rows)
        self._merge([epoch_record(snapshot, coords)], replace=True)

    def keep(self, epochs: set[int]) -> None:
        """Drop the records of other epochs, and the rows no kept record uses."""
        self.records = [r for r in self.records if r["epoch"] in epochs]
        used = {t for r in self.records for t in r["ids"].tolist()}
        self.rows = {t: v for t, v in self.rows.items() if t in used}

    def restore(self, data: dict[str, Any], before: int) -> None:
        """Add the epochs before ``before`` from this cloud's part of a page's payload."""
        tok = data["tokens"]
        for t, *row in zip(tok["id"], tok["text"], tok["word"], tok["sent"], tok["gold"]):
            self.rows.setdefault(int(t), list(row))
        self.labels = self.labels or list(data["labels"])
        self.dims = {**data.get("view_dims", {}), **self.dims}
        self._merge(records_from_payload(data, before), replace=False)

    def _merge(self, records: list[dict[str, Any]], replace: bool) -> None:
        new = {r["epoch"] for r in records}
        old = [r for r in self.records if r["epoch"] not in new] if replace else self.records
        known = {r["epoch"] for r in old}
        self.records = sorted(old + [r for r in records if r["epoch"] not in known], key=lambda r: r["epoch"])

    def payload(self) -> dict[str, Any]:
        """Labels, colours, the row table, the kept epochs as shown, and one axis range per view."""
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
                "epoch": r["epoch"], "step": r["step"], "idx": np.searchsorted(ids, r["ids"]).tolist(),
                "pred": r["pred"].tolist(), "conf": None if r["conf"] is None else np.round(r["conf"], 3).tolist(),
                "coords": {v: _round(c).ravel().tolist() for v, c in r["coords"].items()},
            } for r in self.records],
        }


def fit_to_panel(arrays: list[np.ndarray | None]) -> tuple[list[list[float]] | None, list[list[float]]]:
    """How to show the epochs' clouds in one panel: a rescaling per epoch (or ``None``) and one range per axis.

    The ranges span every epoch's points as shown, plus :data:`MARGIN`, so the axes stay put
    while the epoch changes. When some epoch spans less than :data:`FILL` of an axis's range
    (the cloud grew, shrank or moved between epochs), each epoch is shown centred on the latest
    one's centre (the median point) and scaled to its size (the 95th percentile distance from
    that centre): ``factor * x + shift``, given per epoch as ``[factor, *shift]``. Each epoch
    then fills the panel, and its shape is unchanged.

    Args:
        arrays: per epoch, oldest first, an array of shape (n_rows, k), or ``None`` where the view is missing.
    """
    given = [np.asarray(a, dtype=np.float64) for a in arrays if a is not None]
    sizes = [_centre_size(a) for a in given]
    ref = next((cs for cs in reversed(sizes) if cs[1] > 0), None)
    if ref is None or _least_fill(given) >= FILL:
        return None, _ranges(given)
    fits = [(ref[1] / s, ref[0] - c * (ref[1] / s)) if s > 0 else (1.0, np.zeros_like(c)) for c, s in sizes]
    shown = [f * a + shift for a, (f, shift) in zip(given, fits)]
    fit_iter = iter(fits)
    per_epoch = [[1.0] + [0.0] * len(ref[0]) if a is None else _fit_row(*next(fit_iter)) for a in arrays]
    return per_epoch, _ranges(shown)


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
    """The smallest share of an axis's range (over all epochs) that one epoch's points span."""
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


def epoch_record(snapshot: Snapshot, coords: dict[str, np.ndarray]) -> dict[str, Any]:
    """One kept epoch: token ids, predictions, confidences (softmax max of ``emissions``) and coordinates."""
    conf = None
    if "emissions" in snapshot.views and len(snapshot):
        e = np.asarray(snapshot.views["emissions"], dtype=np.float64)
        conf = 1.0 / np.exp(e - e.max(axis=1, keepdims=True)).sum(axis=1)
    return {
        "epoch": int(snapshot.epoch), "step": int(snapshot.step), "ids": np.asarray(snapshot.token_id, dtype=np.int64),
        "pred": np.asarray(snapshot.pred, dtype=np.int16), "conf": conf,
        "coords": {v: _fix_columns(np.asarray(c, dtype=np.float32)) for v, c in coords.items()},
    }


def records_from_payload(data: dict[str, Any], before: int) -> list[dict[str, Any]]:
    """The kept epochs before ``before`` of a page's payload, as :func:`epoch_record` returns them."""
    ids = np.asarray(data["tokens"]["id"], dtype=np.int64)
    return [{
        "epoch": e["epoch"], "step": e["step"], "ids": ids[e["idx"]], "pred": np.asarray(e["pred"], dtype=np.int16),
        "conf": None if e["conf"] is None else np.asarray(e["conf"]),
        "coords": {v: np.asarray(c, dtype=np.float32).reshape(-1, len(data["ranges"][v]))
                   for v, c in e["coords"].items()},
    } for e in data["epochs"] if e["epoch"] < before]


def build_payload(title: str, final: bool, tokens: Cloud, groups: dict[str, Cloud],
                  metrics: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready plain values: the token cloud at the top level, groups below it."""
    page = tokens.payload()
    metric_epochs = sorted(metrics)
    keys = list(dict.fromkeys(k for e in metric_epochs for k in metrics[e]))
    series = {k: [_finite(metrics[e].get(k)) for e in metric_epochs] for k in keys}
    return {
        "format": 1, "title": title, "final": final,
        "written": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        **page, "correct_color": CORRECT_COLOR, "incorrect_color": INCORRECT_COLOR,
        "background": SCENE_BACKGROUND, "markers": MARKERS,
        "groups": {name: group.payload() for name, group in groups.items() if group.records},
        "metrics": {"epochs": metric_epochs, "series": series},
        "charts": _charts(keys, page["views"] + list(groups), dict(zip(page["labels"], page["colors"]))),
    }


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def _mark(sentence: str, word: str, position: int, width: int = 90) -> str:
    """The sentence with ``word`` (one word or several) in «», the occurrence nearest before ``position``, shortened."""
    words, target = sentence.split(" "), word.split(" ")
    n = len(target)
    hits = [i for i in range(len(words) - n + 1) if words[i:i + n] == target]
    if hits:
        i = max([h for h in hits if h <= position] or hits[:1])
        words[i:i + n] = [f"«{word}»"]
        left, right = " ".join(words[:i]), " ".join(words[i + 1:])
        half = max(width - len(words[i]), 0) // 2
        if len(left) > half:
            left = "…" + left[len(left) - half:]
        if len(right) > half:
            right = right[:half] + "…"
        text = " ".join(p for p in (left, words[i], right) if p)
    else:
        text = sentence if len(sentence) <= width else sentence[:width] + "…"
    return _esc(text).replace(f"«{_esc(word)}»", f"<b>«{_esc(word)}»</b>")


def _fix_columns(c: np.ndarray) -> np.ndarray:
    c = np.nan_to_num(c if c.ndim == 2 else c.reshape(len(c), -1), nan=0.0, posinf=0.0, neginf=0.0)
    return c[:, :3] if c.shape[1] >= 2 else np.pad(c, ((0, 0), (0, 2 - c.shape[1])))


def _round(c: np.ndarray) -> np.ndarray:
    """Four significant digits of the largest value: enough for a plot."""
    scale = float(np.abs(c).max()) if c.size else 1.0
    decimals = int(np.clip(3 - math.floor(math.log10(scale)) if scale > 0 else 3, 0, 10))
    return np.round(c.astype(np.float64), decimals)


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 5)


def _charts(keys: list[str], views: list[str], label_color: dict[str, str]) -> list[dict[str, Any]]:
    """Group metric keys into small charts: one per family, views as colours, variants as dashes."""
    dashes = ["solid", "dash", "dot", "dashdot"]
    top = [k for k in keys if "/" not in k and k != "n_tokens"]
    quality = [k for k in top if re.search(r"acc|f1|precision|recall", k)]
    groups = ([("accuracy and F1 on the sample", quality)] if len(quality) > 1 else [(k, [k]) for k in quality]) + [
        (k, [k]) for k in top if k not in quality]
    charts = [{"title": title.replace("_", " "), "lines": [
        {"key": k, "name": k.replace("_", " "), "color": _VIEW_COLORS[i % 5], "dash": "solid"} for i, k in enumerate(ks)
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
            color = _VIEW_COLORS[views.index(view) % 5] if view in views else _VIEW_COLORS[4]
            name = view if len(variants) == 1 else f"{view} · {metric[len(family) + 1:] or metric}"
            lines.append({"key": key, "name": name, "color": color, "dash": dashes[variants.index(metric) % 4]})
        title = _FAMILY_TITLES.get(family, variants[0].replace("_", " ") if len(variants) == 1 else family)
        charts.append({"title": title, "lines": lines})
    for group, members in details.items():
        if len(members) > 12 or len(charts) >= 14:
            continue
        view, metric = group.split("/")
        charts.append({"title": f"{metric.replace('_', ' ')} per label · {view}", "lines": [
            {"key": k, "name": k[len(group) + 1:], "color": label_color.get(k[len(group) + 1:], "#777"),
             "dash": "solid"} for k in members]})
    return charts

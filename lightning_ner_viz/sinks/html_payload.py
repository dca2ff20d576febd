"""The data an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page shows: kept epochs, token table, charts.

Everything here is plain values (NumPy arrays in, JSON-ready lists out); no file is read or written.
"""

from __future__ import annotations

import datetime
import html
import math
import re
from typing import Any

import numpy as np

from lightning_ner_viz.sinks.colors import hex_color, label_colors
from lightning_ner_viz.snapshot import Snapshot

CORRECT_COLOR, INCORRECT_COLOR = "#8fb996", "#d62728"
_VIEW_COLORS = ["#1f4e79", "#e07b00", "#2a9d8f", "#8e44ad", "#7f7f7f"]
_FAMILY_TITLES = {
    "cka": "CKA similarity (1 = same geometry)", "displacement": "cosine displacement vs previous epoch",
    "knn": "kNN label purity", "silhouette": "silhouette by gold label",
    "trustworthiness": "trustworthiness of the projection", "centroid": "label centroid shift",
}


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


def build_payload(title: str, final: bool, labels: list[str], view_dims: dict[str, int],
                  tokens: dict[int, list[Any]], records: list[dict[str, Any]],
                  metrics: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready plain values."""
    token_ids = np.array(sorted(tokens), dtype=np.int64)
    table = [tokens[t] for t in token_ids.tolist()]
    epochs = []
    for r in records:
        epochs.append({
            "epoch": r["epoch"], "step": r["step"], "idx": np.searchsorted(token_ids, r["ids"]).tolist(),
            "pred": r["pred"].tolist(), "conf": None if r["conf"] is None else np.round(r["conf"], 3).tolist(),
            "coords": {v: _round(c).ravel().tolist() for v, c in r["coords"].items()},
        })
    views = list(dict.fromkeys(v for r in records for v in r["coords"]))
    ranges = {}
    for v in views:
        stack = np.concatenate([r["coords"][v] for r in records if v in r["coords"]])
        k = stack.shape[1]
        lo, hi = (stack.min(axis=0), stack.max(axis=0)) if len(stack) else (-np.ones(k), np.ones(k))
        pad = np.maximum((hi - lo) * 0.04, 1e-6)
        ranges[v] = _round(np.stack([lo - pad, hi + pad], axis=1)).tolist()
    metric_epochs = sorted(metrics)
    keys = list(dict.fromkeys(k for e in metric_epochs for k in metrics[e]))
    series = {k: [_finite(metrics[e].get(k)) for e in metric_epochs] for k in keys}
    colors = [hex_color(c) for c in label_colors(labels)]
    return {
        "format": 1, "title": title, "final": final,
        "written": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "labels": labels, "colors": colors, "correct_color": CORRECT_COLOR,
        "incorrect_color": INCORRECT_COLOR, "views": views, "view_dims": view_dims, "ranges": ranges,
        "tokens": {"id": token_ids.tolist(), "text": [t[0] for t in table], "word": [t[1] for t in table],
                   "sent": [t[2] for t in table], "gold": [t[3] for t in table]},
        "epochs": epochs,
        "metrics": {"epochs": metric_epochs, "series": series},
        "charts": _charts(keys, views, dict(zip(labels, colors))),
    }


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)


def _mark(sentence: str, word: str, position: int, width: int = 90) -> str:
    """The sentence with ``word`` in «» (the occurrence nearest before ``position``), shortened."""
    words = sentence.split(" ")
    hits = [i for i, w in enumerate(words) if w == word]
    if hits:
        i = max([h for h in hits if h <= position] or hits[:1])
        words[i] = f"«{word}»"
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

"""HtmlSink: one self-contained, offline HTML report of the clouds, rewritten every epoch."""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.sinks.colors import hex_color, label_colors
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

DEFAULT_FILE = "embeddings.html"
CORRECT_COLOR, INCORRECT_COLOR = "#8fb996", "#d62728"
_VIEW_COLORS = ["#1f4e79", "#e07b00", "#2a9d8f", "#8e44ad", "#7f7f7f"]
_DATA_RE = re.compile(r'<script type="application/json" id="ner-viz-data">(.*?)</script>', re.S)
_FAMILY_TITLES = {
    "cka": "CKA similarity (1 = same geometry)", "displacement": "cosine displacement vs previous epoch",
    "knn": "kNN label purity", "silhouette": "silhouette by gold label",
    "trustworthiness": "trustworthiness of the projection", "centroid": "label centroid shift",
}


class HtmlSink(Sink):
    """Writes one self-contained HTML file (plotly.js inlined: no server, account or network).

    Per view, a 3-D (or 2-D) scatter of every epoch kept, with one epoch slider and a
    play button driving all views (plotly frames); colour by gold label, predicted
    label or correct/incorrect; hover shows the token, its word, its sentence with the
    word in «», gold, predicted and the confidence (softmax max of the ``emissions``
    view). Below: the drift metrics as small line charts per metric family. Axis
    ranges are fixed over all epochs, so points move only when their coordinates do.

    The file is rewritten atomically after every epoch, so it is always complete and
    can be opened mid-training (reload for newer epochs). Open ``#epoch=N`` to start
    at epoch ``N``; in the page, ``nerViz.setEpoch(N)`` and ``nerViz.setColor("pred")``.

    Args:
        path: the HTML file. Relative paths resolve against ``<default_root_dir>/ner_viz``.
        max_epochs_inline: keep at most this many epochs' clouds (first, latest and
            evenly spaced ones between), bounding memory and file size. Metrics of
            every epoch are kept.
        title: the page title.

    Example::

        EmbeddingDriftCallback(sinks=[HtmlSink("embeddings.html")])
    """

    def __init__(
        self, path: str | os.PathLike[str] = DEFAULT_FILE, *, max_epochs_inline: int | None = None,
        title: str = "lightning-ner-viz",
    ) -> None:
        if max_epochs_inline is not None and max_epochs_inline < 1:
            raise ValueError(f"max_epochs_inline must be None or >= 1; got {max_epochs_inline}.")
        self.path = Path(path)
        self.max_epochs_inline = max_epochs_inline
        self.title = title
        self._epochs: list[dict[str, Any]] = []  # ids, pred, conf, coords per kept epoch
        self._tokens: dict[int, list[Any]] = {}  # token id -> [token, word, sentence, gold]
        self._metrics: dict[int, dict[str, float]] = {}
        self._labels: list[str] = []
        self._view_dims: dict[str, int] = {}
        self._final = False
        self._restore = False
        self._plotlyjs: str | None = None

    def setup(self, trainer: pl.Trainer | None) -> None:
        """Resolve a relative ``path`` against ``<default_root_dir>/ner_viz``."""
        if trainer is not None and not self.path.is_absolute():
            self.path = Path(trainer.default_root_dir) / "ner_viz" / self.path

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Remember this epoch and rewrite the file."""
        require("plotly")
        if self._restore:
            self._restore = False
            self._load_previous(before=snapshot.epoch)
        self._labels = list(snapshot.label_names)
        self._view_dims.update({v: int(np.shape(x)[1]) for v, x in snapshot.views.items()})
        ids = np.asarray(snapshot.token_id, dtype=np.int64)
        sentence_cache: dict[tuple[int, int, str], str] = {}
        for i, tid in enumerate(ids.tolist()):
            if tid not in self._tokens:
                sid, pos, word = int(snapshot.sentence_id[i]), int(snapshot.position[i]), snapshot.word[i]
                key = (sid, pos, word)
                if key not in sentence_cache:
                    sentence_cache[key] = _mark(snapshot.sentences.get(sid, ""), word, pos)
                self._tokens[tid] = [_esc(snapshot.token[i]), _esc(word), sentence_cache[key], int(snapshot.gold[i])]
        conf = None
        if "emissions" in snapshot.views and len(snapshot):
            e = np.asarray(snapshot.views["emissions"], dtype=np.float64)
            conf = 1.0 / np.exp(e - e.max(axis=1, keepdims=True)).sum(axis=1)
        record = {
            "epoch": int(snapshot.epoch), "step": int(snapshot.step), "ids": ids,
            "pred": np.asarray(snapshot.pred, dtype=np.int16), "conf": conf,
            "coords": {v: _fix_columns(np.asarray(c, dtype=np.float32)) for v, c in coords.items()},
        }
        self._epochs = sorted([r for r in self._epochs if r["epoch"] != record["epoch"]] + [record],
                              key=lambda r: r["epoch"])
        self._metrics[int(snapshot.epoch)] = {k: float(v) for k, v in metrics.items()}
        self._final = False
        self._thin()
        self._write()

    def close(self) -> None:
        """Rewrite the file once more, marked as complete."""
        if self._epochs:
            self._final = True
            self._write()

    def state_dict(self) -> dict[str, Any]:
        """The file path; a resumed fit reads the earlier epochs back from the file."""
        return {"path": str(self.path)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the file ``state['path']``: its epochs before the resumed one are kept."""
        self.path = Path(state.get("path") or self.path)
        self._restore = True

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_plotlyjs": None}

    def __repr__(self) -> str:
        return f"HtmlSink(path={str(self.path)!r})"

    def _thin(self) -> None:
        """Drop epochs beyond ``max_epochs_inline``, keeping the first, the latest and an even spread."""
        n = self.max_epochs_inline
        while n is not None and len(self._epochs) > n:
            if n < 2:
                del self._epochs[0]
                continue
            ep = [r["epoch"] for r in self._epochs]
            del self._epochs[min(range(1, len(ep) - 1), key=lambda i: (ep[i + 1] - ep[i - 1], i))]
        used = {t for r in self._epochs for t in r["ids"].tolist()}
        self._tokens = {t: v for t, v in self._tokens.items() if t in used}

    def payload(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready plain values."""
        token_ids = np.array(sorted(self._tokens), dtype=np.int64)
        table = [self._tokens[t] for t in token_ids.tolist()]
        epochs = []
        for r in self._epochs:
            epochs.append({
                "epoch": r["epoch"], "step": r["step"], "idx": np.searchsorted(token_ids, r["ids"]).tolist(),
                "pred": r["pred"].tolist(), "conf": None if r["conf"] is None else np.round(r["conf"], 3).tolist(),
                "coords": {v: _round(c).ravel().tolist() for v, c in r["coords"].items()},
            })
        views = list(dict.fromkeys(v for r in self._epochs for v in r["coords"]))
        ranges = {}
        for v in views:
            stack = np.concatenate([r["coords"][v] for r in self._epochs if v in r["coords"]])
            k = stack.shape[1]
            lo, hi = (stack.min(axis=0), stack.max(axis=0)) if len(stack) else (-np.ones(k), np.ones(k))
            pad = np.maximum((hi - lo) * 0.04, 1e-6)
            ranges[v] = _round(np.stack([lo - pad, hi + pad], axis=1)).tolist()
        metric_epochs = sorted(self._metrics)
        keys = list(dict.fromkeys(k for e in metric_epochs for k in self._metrics[e]))
        series = {k: [_finite(self._metrics[e].get(k)) for e in metric_epochs] for k in keys}
        colors = [hex_color(c) for c in label_colors(self._labels)]
        return {
            "format": 1, "title": self.title, "final": self._final,
            "written": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
            "labels": self._labels, "colors": colors, "correct_color": CORRECT_COLOR,
            "incorrect_color": INCORRECT_COLOR, "views": views, "view_dims": self._view_dims, "ranges": ranges,
            "tokens": {"id": token_ids.tolist(), "text": [t[0] for t in table], "word": [t[1] for t in table],
                       "sent": [t[2] for t in table], "gold": [t[3] for t in table]},
            "epochs": epochs,
            "metrics": {"epochs": metric_epochs, "series": series},
            "charts": _charts(keys, views, dict(zip(self._labels, colors))),
        }

    def _write(self) -> None:
        if self._plotlyjs is None:
            self._plotlyjs = require("plotly").offline.get_plotlyjs().replace("</script", "<\\/script")
        data = json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
        parts = {"__TITLE__": html.escape(self.title), "/*__PLOTLY_JS__*/": self._plotlyjs, "__DATA__": data}
        page = re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], _template())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(page)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load_previous(self, before: int) -> None:
        """Read the epochs before ``before`` back from an existing file (after a resume)."""
        try:
            data = read_payload(self.path)
        except (OSError, ValueError):
            return
        tok = data["tokens"]
        for t, *row in zip(tok["id"], tok["text"], tok["word"], tok["sent"], tok["gold"]):
            self._tokens.setdefault(int(t), list(row))
        for e in data["epochs"]:
            if e["epoch"] < before:
                self._epochs.append({
                    "epoch": e["epoch"], "step": e["step"], "ids": np.asarray(tok["id"], dtype=np.int64)[e["idx"]],
                    "pred": np.asarray(e["pred"], dtype=np.int16),
                    "conf": None if e["conf"] is None else np.asarray(e["conf"]),
                    "coords": {v: np.asarray(c, dtype=np.float32).reshape(-1, len(data["ranges"][v]))
                               for v, c in e["coords"].items()},
                })
        series = data["metrics"]["series"]
        for j, e in enumerate(data["metrics"]["epochs"]):
            if e < before:
                self._metrics[e] = {k: v[j] for k, v in series.items() if v[j] is not None}


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data embedded in a file written by :class:`HtmlSink` (for tests and resuming)."""
    match = _DATA_RE.search(Path(path).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{path} is not a lightning-ner-viz HTML report.")
    return json.loads(match.group(1))


def _template() -> str:
    return resources.files("lightning_ner_viz.sinks").joinpath("html_template.html").read_text(encoding="utf-8")


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
    """Four significant digits of the largest value: enough for a plot, a third of the bytes."""
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

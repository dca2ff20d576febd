"""The label issues of each fit validation: ``label_issues.csv`` in the snapshot root and a report for the sinks.

:class:`LabelIssueFinder` runs where the projection runs (off the training thread). It reads the token
dynamics that the capture saved beside each snapshot, folds each fit validation into a
:class:`~.token_dynamics.DynamicsHistory` once (after a resume it rebuilds the history from disk, so no
validation is lost or counted twice), ranks the newest validation's tokens
(:func:`~.label_issues.rank_label_issues`), rewrites the CSV and returns a :class:`LabelIssueReport`.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz.analysis.label_issues import LabelIssueRanking, rank_label_issues
from lightning_ner_viz.analysis.token_dynamics import DynamicsHistory, SentenceText, TokenDynamics
from lightning_ner_viz.analysis.word_pieces import join_word
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.snapshot import Snapshot, split_token_id
from lightning_ner_viz.store import SnapshotStore

CSV_NAME = "label_issues.csv"
CSV_COLUMNS = ("rank", "sentence_id", "position", "token", "word", "given", "suggested", "quality", "confidence",
               "variability", "correctness", "flips", "score", "flagged", "in_sample", "sentence")
CSV_FRACTION = 0.1
"""The CSV lists at least this share of the tokens (the lowest scores), every flagged one, and at least :data:`CSV_MIN_ROWS`."""
CSV_MIN_ROWS = 1000
TOP_ROWS = 50
"""Rows of the issues table the sinks show."""
MAP_POINTS = 3000
"""Points of the data map the sinks draw: the :data:`TOP_ROWS` most suspect, then a fixed hash sample."""


@dataclass
class LabelIssueReport:
    """One fit validation's label issues, plain data (``to_dict`` is JSON-safe).

    Attributes:
        validations: fit validations folded into the dynamics.
        tokens: labelled tokens ranked; ``seen``: labelled tokens the validation saw (more with a subset).
        flagged: tokens cleanlab's ``find_label_issues`` flags.
        source: ``"softmax"`` or ``"crf_marginals"``.
        csv_path: where ``label_issues.csv`` was written (``""`` when it could not be).
        top: the :data:`TOP_ROWS` most suspect tokens, one dict per row (the CSV's columns plus ``token_id``).
        points: the data map: ``confidence``, ``variability``, ``correctness``, ``score``, ``flagged``,
            ``in_sample``, ``token_id`` and ``text`` (the token in its sentence), one list entry per point.
        notes: problems to warn about once (a CSV that could not be written).
    """

    validations: int
    tokens: int
    seen: int
    flagged: int
    source: str
    csv_path: str
    top: list[dict[str, Any]] = field(default_factory=list)
    points: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """Numbers for the metric curves: ``label_issues/flagged``, ``.../flagged_fraction``, ``.../mean_confidence``."""
        conf = self.points.get("confidence", [])
        return {"label_issues/flagged": float(self.flagged),
                "label_issues/flagged_fraction": self.flagged / self.tokens if self.tokens else float("nan"),
                "label_issues/mean_confidence": float(np.mean(conf)) if conf else float("nan")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe values."""
        return {k: v for k, v in vars(self).items() if k != "notes"}


class TokenTextIndex:
    """Token, word and marked sentence text of any labelled token, from the dynamics' sentence texts.

    Each sentence is split into words once (the first time one of its tokens is described), so describing
    many tokens of one sentence costs one pass over it.
    """

    def __init__(self, texts: dict[int, SentenceText]) -> None:
        self.texts = texts
        self._words: dict[int, tuple[list[int], list[str], list[bool]]] = {}

    def _split(self, sid: int, text: SentenceText) -> tuple[list[int], list[str], list[bool]]:
        """The sentence's word ids in order, each word's text, and whether it is a special token."""
        if sid not in self._words:
            pieces: dict[int, list[str]] = {}
            for tok, w in zip(text.tokens, text.words):
                pieces.setdefault(w, []).append(tok)
            self._words[sid] = (list(pieces), [join_word(p) for p in pieces.values()],
                                [_special(p) for p in pieces.values()])
        return self._words[sid]

    def describe(self, token_id: int) -> tuple[str, str, str]:
        """``(token, word, sentence with the word in « »)``; ``?`` when the sentence's text was not kept."""
        sid, pos = (int(x) for x in split_token_id(np.int64(token_id)))
        text = self.texts.get(sid)
        if text is None or pos >= len(text.tokens):
            return "?", "?", ""
        ids, words, special = self._split(sid, text)
        at = ids.index(text.words[pos])
        shown = [f"«{word}»" if i == at else word for i, word in enumerate(words) if not special[i]]
        return text.tokens[pos], words[at], " ".join(shown)


_SPECIAL = re.compile(r"\[[A-Z_]+\]|</?[a-z_]+>")
"""A tokenizer's special token: ``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``, ``<pad>`` (not user text such as ``<img src=x>``)."""


def _special(pieces: list[str]) -> bool:
    return len(pieces) == 1 and _SPECIAL.fullmatch(pieces[0]) is not None


def _rows(ranking: LabelIssueRanking, order: np.ndarray, names: list[str], index: TokenTextIndex,
          sample: set[int]) -> list[dict[str, Any]]:
    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else "?"

    rows = []
    for i in order.tolist():
        tid = int(ranking.token_id[i])
        sid, pos = (int(x) for x in split_token_id(np.int64(tid)))
        token, word, sentence = index.describe(tid)
        rows.append({"rank": i + 1, "sentence_id": sid, "position": pos, "token": token, "word": word,
                     "given": name(int(ranking.given[i])), "suggested": name(int(ranking.suggested[i])),
                     "quality": round(float(ranking.quality[i]), 4), "confidence": round(float(ranking.confidence[i]), 4),
                     "variability": round(float(ranking.variability[i]), 4),
                     "correctness": round(float(ranking.correctness[i]), 4), "flips": int(ranking.flips[i]),
                     "score": round(float(ranking.score[i]), 4), "flagged": bool(ranking.flagged[i]),
                     "in_sample": tid in sample, "sentence": sentence, "token_id": tid})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows atomically (a temporary sibling renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def csv_rows(n: int, flagged: int) -> int:
    """How many rows the CSV lists for ``n`` ranked tokens of which ``flagged`` are flagged."""
    return min(n, max(math.ceil(CSV_FRACTION * n), flagged, CSV_MIN_ROWS))


def map_points(ranking: LabelIssueRanking, index: TokenTextIndex, names: list[str], sample: set[int]) -> dict[str, list[Any]]:
    """The data map's points: the most suspect :data:`TOP_ROWS`, then the rest by a fixed hash, :data:`MAP_POINTS` in all."""
    n = len(ranking)
    ids = ranking.token_id.astype(np.uint64)
    spread = np.argsort((ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11), kind="stable")
    chosen = np.r_[np.arange(min(TOP_ROWS, n)), spread[spread >= TOP_ROWS]][:MAP_POINTS]
    texts = []
    for i in chosen.tolist():
        token, word, sentence = index.describe(int(ranking.token_id[i]))
        given, suggested = names[int(ranking.given[i])], names[int(ranking.suggested[i])]
        texts.append(f"#{i + 1} {word}: given {given}, suggested {suggested} | {sentence}")
    return {"rank": (chosen + 1).tolist(), "confidence": ranking.confidence[chosen].round(4).tolist(),
            "variability": ranking.variability[chosen].round(4).tolist(),
            "correctness": ranking.correctness[chosen].round(4).tolist(),
            "score": ranking.score[chosen].round(4).tolist(), "flagged": ranking.flagged[chosen].tolist(),
            "in_sample": [int(ranking.token_id[i]) in sample for i in chosen.tolist()],
            "token_id": ranking.token_id[chosen].tolist(), "text": texts}


class LabelIssueFinder:
    """Keeps the fit validations' dynamics and ranks each new one's tokens.

    Args:
        store: the snapshots (the dynamics are saved beside them), or a folder of training-set records.
        csv_path: where the ranking goes (default: ``label_issues.csv`` in the store's root).
    """

    def __init__(self, store: SnapshotStore | None, csv_path: Path | None = None) -> None:
        self.store = store
        self.csv_path = csv_path if csv_path is not None or store is None else store.root / CSV_NAME
        self.history = DynamicsHistory()
        self._texts: dict[int, SentenceText] = {}
        self._texts_read: set[str] = set()
        self.last: LabelIssueRanking | None = None

    def update(self, snapshot: Snapshot) -> LabelIssueReport | None:
        """The label issues after the fit snapshot ``snapshot`` (``None`` for a validate snapshot, or without dynamics)."""
        return self.update_key(snapshot.key, snapshot.label_names, snapshot.token_id)

    def update_key(self, key: SnapshotKey, label_names: list[str], sample: np.ndarray | None = None
                   ) -> LabelIssueReport | None:
        """The label issues after the record ``key`` (``sample``: the token ids drawn in the cloud)."""
        store = self.store
        if store is None or key.stage != "fit" or not TokenDynamics.exists(store.directory(key.name)):
            return None
        earlier = [k for k in store.keys() if k.order() < key.order() and TokenDynamics.exists(store.directory(k.name))]
        folded = [k.name for k in earlier if k.stage == "fit"]
        rebuild = self.history.names != folded  # a resume (or a first call): rebuild from disk, each validation once
        if rebuild:
            self.history = DynamicsHistory()
        for k in earlier:  # each earlier record is read at most once here: for the history, its texts, or both
            if (rebuild and k.stage == "fit") or k.name not in self._texts_read:
                record = TokenDynamics.load(store.directory(k.name), probs=False)
                if rebuild and k.stage == "fit":
                    self.history.add(k.name, record)
                self._texts.update(record.texts)
                self._texts_read.add(k.name)
        newest = TokenDynamics.load(store.directory(key.name))
        self.history.add(key.name, newest)
        self._texts.update(newest.texts)
        self._texts_read.add(key.name)
        if newest.probs is None:  # re-rendering an older epoch: a newer one's ranking replaced its rows
            return None
        ranking = rank_label_issues(self.history, newest)
        store.drop_label_probs(before=key)
        self.last = ranking
        index = TokenTextIndex(self._texts)
        drawn = set() if sample is None else set(np.asarray(sample).tolist())
        flagged = int(ranking.flagged.sum())
        rows = _rows(ranking, np.arange(csv_rows(len(ranking), flagged)), label_names, index, drawn)
        path, notes = self.csv_path, []
        try:
            write_csv(path, rows)
        except OSError as err:
            notes.append(f"Could not write {path} ({err}); the label issues are in the sinks only this epoch.")
            path = Path("")
        return LabelIssueReport(
            validations=len(self.history.names), tokens=len(ranking), seen=max(newest.seen, len(ranking)),
            flagged=flagged, source=newest.source, csv_path=str(path),
            top=rows[:TOP_ROWS],  # the CSV lists at least min(n, 1,000) rows, so these are its first
            points=map_points(ranking, index, label_names, drawn), notes=notes)

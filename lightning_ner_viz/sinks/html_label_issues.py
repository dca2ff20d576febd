"""A fit snapshot's label issues as an :class:`~lightning_ner_viz.sinks.html.HtmlSink` page carries them.

One part of the snapshot's record (``analysis["label_issues"]``), so thinning and resuming treat it as the
snapshot's cloud. It holds the report's numbers (``validations``, ``tokens``, ``seen``, ``flagged``,
``source``, ``csv_path``), the issues table (``top``: the most suspect tokens, one dict per row) and the data
map (``points``: equal-length lists ``rank``, ``confidence``, ``variability``, ``correctness``, ``flagged`` and
``in_sample`` as 0/1, ``token_id`` and ``text``; the points' ``score`` is left out, the table has it).

Unlike the cloud's row table, the strings here are **raw** text (not HTML-escaped): the page puts them in the
document with ``textContent`` only, and escapes them itself where plotly reads markup (hover labels).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lightning_ner_viz.analysis.label_issue_report import LabelIssueReport

TOP_KEYS = ("rank", "token", "word", "given", "suggested", "quality", "confidence", "variability", "correctness",
            "flips", "score", "flagged", "in_sample", "sentence", "token_id")
"""The issues table's fields the page uses."""
POINT_NUMBERS = ("confidence", "variability", "correctness")
POINT_FLAGS = ("flagged", "in_sample")


def label_issues_part(report: LabelIssueReport) -> dict[str, Any]:
    """The report as compact, JSON-safe plain values (NaN as ``None``, raw strings; see the module docstring)."""
    points = report.points
    n = len(points.get("token_id", []))
    return {
        "validations": int(report.validations), "tokens": int(report.tokens), "seen": int(report.seen),
        "flagged": int(report.flagged), "source": str(report.source),
        "csv_path": "" if str(report.csv_path) in ("", ".") else str(report.csv_path),  # str(Path("")): not written
        "top": [{k: _plain(row.get(k)) for k in TOP_KEYS} for row in report.top],
        "points": {
            "rank": [int(x) for x in points.get("rank", range(1, n + 1))],
            **{k: [_num(x) for x in points.get(k, [None] * n)] for k in POINT_NUMBERS},
            **{k: [int(bool(x)) for x in points.get(k, [False] * n)] for k in POINT_FLAGS},
            "token_id": [int(x) for x in points.get("token_id", [])],
            "text": [str(x) for x in points.get("text", [""] * n)],
        },
    }


def _plain(x: Any) -> Any:
    """A JSON-safe copy of one table cell: bools and ints as they are, floats rounded (``None`` if not finite),
    anything else as text."""
    if x is None or isinstance(x, (bool, np.bool_)):
        return None if x is None else bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return _num(x)
    return str(x)


def _num(x: Any, digits: int = 4) -> float | None:
    """``x`` rounded, or ``None`` when it is not a finite number (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None

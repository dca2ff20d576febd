"""The label issues as words, shared by the Rerun, W&B and TensorBoard sinks: the markdown table of the most
suspect tokens, and the data map's title, axis titles and region names (Dataset Cartography: x = variability,
y = confidence, colour = correctness)."""

from __future__ import annotations

import os
from typing import Any

from lightning_ner_viz.analysis.label_issue_report import LabelIssueReport
from lightning_ner_viz.sinks.analysis_text import excerpt

X_TITLE = "variability (std of that probability across validations)"
Y_TITLE = "confidence (mean probability of the given label)"
COLOR_TITLE = "correctness (share of validations predicting the given label)"
X_MAX = 0.5
"""The variability axis ends here: a population std of values in [0, 1] is at most 0.5."""
REGIONS = (("easy to learn: confident all along", 0.0, 1.0), ("hard to learn: wrong labels sit here", 0.0, 0.0),
           ("ambiguous", 0.5, 0.5))
"""The data map's regions: (name, variability, confidence) of the corner or edge each name belongs to."""
EASY, HARD = 0.75, 0.25
"""Confidence above :data:`EASY` / below :data:`HARD`: the points counted in :func:`region_names`."""
TOP_MARKDOWN_ROWS = 50
"""Rows of the Rerun table; TensorBoard's text shows 10."""

_MARKDOWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_",
                     "[": "\\[", "]": "\\]", "|": "\\|"}


def md(text: Any) -> str:
    """``text`` as literal markdown: HTML characters as entities, markdown punctuation and ``|`` backslash-escaped,
    line breaks as spaces (a token never opens a tag, a code span or a table cell)."""
    return "".join(_MARKDOWN_ESCAPES.get(c, c) for c in " ".join(str(text).splitlines()))


def region_names(report: LabelIssueReport, short: bool = False) -> tuple[tuple[str, float, float], ...]:
    """:data:`REGIONS` with the drawn points above :data:`EASY` and below :data:`HARD` confidence counted, since
    points on one spot hide each other (hundreds of wrong labels can sit on one pixel at confidence 0)."""
    conf = [float(c) for c in report.points.get("confidence", [])]
    easy, hard = sum(c > EASY for c in conf), sum(c < HARD for c in conf)
    above, below = f"above {str(EASY)[1:]}", f"below {str(HARD)[1:]}"
    if short:
        return ((f"easy to learn: {easy} {above}", 0.0, 1.0),
                (f"hard to learn, wrong labels: {hard} {below}", 0.0, 0.0), REGIONS[2])
    return ((f"easy to learn ({easy} tokens {above}): confident all along", 0.0, 1.0),
            (f"hard to learn ({hard} tokens {below}): wrong labels sit here", 0.0, 0.0), REGIONS[2])


def data_map_title(label: str) -> str:
    """``label issues · data map · epoch 2 · step 30``."""
    return f"label issues · data map · {label}"


def data_map_subtitle(report: LabelIssueReport) -> str:
    """How many tokens are flagged and drawn, over how many validations (and why variability is 0 after one)."""
    n = len(report.points.get("rank", []))
    drawn = "all drawn" if n >= report.tokens else f"{n} drawn (the most suspect, then a sample)"
    n_val = report.validations
    text = f"{report.flagged} of {report.tokens} tokens flagged · {drawn} · {n_val} validation{'s' * (n_val != 1)}"
    return text + (" (variability needs two)" if n_val < 2 else "")


def issues_markdown(report: LabelIssueReport, label: str, limit: int = TOP_MARKDOWN_ROWS) -> str:
    """The ``limit`` most suspect tokens as a markdown table under a heading and a line saying what was ranked."""
    rows = report.top[:limit]
    csv = md(os.path.basename(report.csv_path))
    where = f" Every ranked token: {csv} in the snapshot root." if report.csv_path else ""
    lines = [f"## Label issues · {md(label)}", "",
             f"{report.flagged} of {report.tokens} labelled validation tokens flagged by cleanlab "
             f"({md(report.source)} probabilities), ranked over {report.validations} fit "
             f"validation{'s' * (report.validations != 1)}; "
             f"the {len(rows)} most suspect first (low score: the model kept preferring another label).{where}"]
    if not rows:
        return "\n".join([*lines, "", "No labelled tokens were ranked."])
    lines += ["",
              "| # | token | given | suggested | score | flagged | confidence | variability | correctness | sentence |",
              "| ---: | --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        token = r["token"] if r["token"] == r["word"] else f"{r['token']} ({r['word']})"
        lines.append(f"| {r['rank']} | {md(token)} | {md(r['given'])} | {md(r['suggested'])} | {r['score']:.3f} | "
                     f"{'yes' if r['flagged'] else ''} | {r['confidence']:.3f} | {r['variability']:.3f} | "
                     f"{r['correctness']:.2f} | {md(excerpt(r['sentence']))} |")
    return "\n".join(lines)

"""The comparison report: one self-contained, offline HTML file (plotly.js inlined, as the HTML sink does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_ner_viz.comparison.compare import Comparison
from lightning_ner_viz.comparison.payload import build_payload
from lightning_ner_viz.sinks.html_page import plotly_js, read_embedded, render_page, template, write_atomically


def default_title(comparison: Comparison) -> str:
    """``run comparison: A vs B, C``."""
    names = comparison.names
    return f"Run comparison: {names[0]} vs {', '.join(names[1:])}"


def render(payload: dict[str, Any]) -> str:
    """The report's HTML for ``payload`` (see :func:`~lightning_ner_viz.comparison.payload.build_payload`): the
    page of :func:`~lightning_ner_viz.sinks.html_page.render_page`, which shows every text from the data as text."""
    return render_page(template("lightning_ner_viz.comparison", "template.html"), payload["title"], payload, plotly_js())


def write_report(comparison: Comparison, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the report to ``path`` atomically (a partial file never stays behind); returns the path."""
    target = Path(path)
    write_atomically(target, render(build_payload(comparison, title or default_title(comparison))))
    return target


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data embedded in a report written by :func:`write_report` (for tests)."""
    return read_embedded(path, "compare-data", "a lightning-ner-viz comparison report")

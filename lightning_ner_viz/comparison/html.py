"""The comparison report: one self-contained, offline HTML file (plotly.js inlined, as the HTML sink does)."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from lightning_ner_viz._imports import require
from lightning_ner_viz.comparison.compare import Comparison
from lightning_ner_viz.comparison.payload import build_payload

_DATA_RE = re.compile(r'<script type="application/json" id="compare-data">(.*?)</script>', re.DOTALL)


def default_title(comparison: Comparison) -> str:
    """``run comparison: A vs B, C``."""
    names = comparison.names
    return f"Run comparison: {names[0]} vs {', '.join(names[1:])}"


def render_page(payload: dict[str, Any]) -> str:
    """The report's HTML for ``payload`` (see :func:`~lightning_ner_viz.comparison.payload.build_payload`).

    The data is embedded as JSON that cannot close its ``<script>`` element (``</`` and ``<!--`` are escaped),
    and the page shows every text from it as text.
    """
    plotlyjs = require("plotly").offline.get_plotlyjs().replace("</script", "<\\/script")
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
    parts = {"__TITLE__": html.escape(payload["title"]), "/*__PLOTLY_JS__*/": plotlyjs, "__DATA__": data}
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], _template())


def write_report(comparison: Comparison, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the report to ``path`` atomically (a partial file never stays behind); returns the path."""
    target = Path(path)
    page = render_page(build_payload(comparison, title or default_title(comparison)))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data embedded in a report written by :func:`write_report` (for tests)."""
    match = _DATA_RE.search(Path(path).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{path} is not a lightning-ner-viz comparison report.")
    return json.loads(match.group(1))


def _template() -> str:
    return resources.files("lightning_ner_viz.comparison").joinpath("template.html").read_text(encoding="utf-8")

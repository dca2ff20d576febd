"""One self-contained offline HTML page from a template and a JSON payload: plotly.js inlined, the data embedded so
that it cannot close its ``<script>``, the file replaced atomically; and the payload read back. The report
(:class:`~lightning_ner_viz.sinks.html.HtmlSink`) and the run comparison both write their pages with it."""

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
from lightning_ner_viz.sinks.packed_arrays import unpack_tree


def plotly_js() -> str:
    """plotly.js, made safe to inline in a ``<script>`` element (about 4.6 MB: callers keep it)."""
    return require("plotly").offline.get_plotlyjs().replace("</script", "<\\/script")


def template(package: str, name: str) -> str:
    """The text of the template file ``name`` shipped in ``package``."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def render_page(page_template: str, title: str, payload: dict[str, Any], plotlyjs: str) -> str:
    """``page_template`` with ``__TITLE__`` (escaped), ``/*__BASE_CSS__*/`` (the pages' shared ``page_base.css``),
    ``/*__PLOTLY_JS__*/`` and ``__DATA__`` filled in.

    The data is embedded as JSON that cannot close its ``<script>`` element (``</`` and ``<!--`` are escaped); the
    page shows every text from it as text.
    """
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
    parts = {"__TITLE__": html.escape(title), "/*__BASE_CSS__*/": template("lightning_ner_viz.sinks", "page_base.css"),
             "/*__PLOTLY_JS__*/": plotlyjs, "__DATA__": data}
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], page_template)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, flush it to disk and rename it over ``path``: a full disk or a file size
    limit never leaves a partial file under the final name (the temporary one is removed, and the error raised)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        raise


def read_embedded(path: str | os.PathLike[str], element_id: str, what: str) -> dict[str, Any]:
    """The JSON payload embedded in ``<script type="application/json" id="element_id">`` of the page at ``path``, with
    its packed arrays unpacked (:mod:`~lightning_ner_viz.sinks.packed_arrays`).

    Raises:
        ValueError: when the page has none (``what`` names the kind of page expected).
    """
    pattern = re.compile(rf'<script type="application/json" id="{re.escape(element_id)}">(.*?)</script>', re.DOTALL)
    match = pattern.search(Path(path).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{path} is not {what}.")
    return unpack_tree(json.loads(match.group(1)))

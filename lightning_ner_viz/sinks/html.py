"""HtmlSink: one self-contained, offline HTML report of the clouds, rewritten every epoch."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.base import Sink, check_writable_file, output_root, resolve_under
from lightning_ner_viz.sinks.html_payload import Cloud, build_payload
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

DEFAULT_FILE = "embeddings.html"
_DATA_RE = re.compile(r'<script type="application/json" id="ner-viz-data">(.*?)</script>', re.DOTALL)


class HtmlSink(Sink):
    """Writes one self-contained HTML file (plotly.js inlined: no server, account or network).

    Per view, a 3-D (or 2-D) scatter of every epoch kept, then one per group of the
    snapshot (``entities``, and ``cls`` when captured: coloured by entity type), with
    one epoch slider and a play button driving all panels (plotly frames); colour by
    gold label, predicted label or correct/incorrect; hover shows the token (or
    entity), its word, its sentence with the word in «», gold, predicted and the
    confidence (softmax max of the ``emissions`` view). Below: the drift metrics as
    small line charts per metric family. Each panel's axis ranges are fixed over all
    epochs and fit the points, so the cloud fills the panel and the axes never jump;
    when the cloud's size or place changes between epochs, each epoch is centred and
    scaled to the latest one's size for display (see
    :func:`~lightning_ner_viz.sinks.html_payload.fit_to_panel`), and the panel says so.

    The file is rewritten atomically after every epoch, so it is always complete and
    can be opened mid-training (reload for newer epochs). Open ``#epoch=N`` to start
    at epoch ``N``; in the page, ``nerViz.setEpoch(N)`` and ``nerViz.setColor("pred")``.

    Args:
        path: the HTML file. Relative paths resolve under the callback's snapshot root
            (``<default_root_dir>/ner_viz`` by default).
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
        self._path = Path(path)
        self._output_root: Path | None = None
        self.max_epochs_inline = max_epochs_inline
        self.title = title
        self._tokens = Cloud()
        self._groups: dict[str, Cloud] = {}
        self._groups_due: set[str] = set()
        self._metrics: dict[int, dict[str, float]] = {}
        self._final = False
        self._restore = False
        self._plotlyjs: str | None = None

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None = None) -> None:
        """A relative ``path`` resolves under ``save_dir``."""
        self._output_root = output_root(trainer, save_dir)

    def check_target(self) -> None:
        """The report's directory is writable (raises :class:`~lightning_ner_viz.sinks.base.SinkTargetError`)."""
        check_writable_file(self.path, repr(self))

    @property
    def path(self) -> Path:
        """The HTML file (resolved by :meth:`setup`)."""
        return resolve_under(self._path, self._output_root)

    @property
    def output_path(self) -> Path | None:
        """The HTML file."""
        return self.path

    @property
    def location(self) -> str | None:
        """The HTML file."""
        return str(self.path)

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Remember this epoch and rewrite the file (after the epoch's groups, when it has some)."""
        require("plotly")
        if self._restore:
            self._restore = False
            self._load_previous(before=snapshot.epoch)
        self._tokens.add(snapshot, coords)
        self._metrics[int(snapshot.epoch)] = {k: float(v) for k, v in metrics.items()}
        self._final = False
        self._thin()
        self._groups_due = set(snapshot.groups)
        if not self._groups_due:
            self._write()

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Add a group's cloud (``entities``, ``cls``) to its epoch; rewrite the file once every group came."""
        if not any(r["epoch"] == group.epoch for r in self._tokens.records):
            return  # an epoch thinned away or never logged
        self._groups.setdefault(name, Cloud()).add(group, {name: coords})
        self._groups_due.discard(name)
        if not self._groups_due:
            self._write()

    def close(self) -> None:
        """Rewrite the file once more, marked as complete."""
        if self._tokens.records:
            self._final = True
            self._write()

    def state_dict(self) -> dict[str, Any]:
        """The file path; a resumed fit reads the earlier epochs back from the file."""
        return {"path": str(self.path)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the file ``state['path']``: its epochs before the resumed one are kept."""
        self._path = Path(state.get("path") or self._path)
        self._restore = True

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_plotlyjs": None}

    def __repr__(self) -> str:
        return f"HtmlSink(path={str(self.path)!r})"

    def _thin(self) -> None:
        """Drop epochs beyond ``max_epochs_inline``, keeping the first, the latest and an even spread."""
        n, ep = self.max_epochs_inline, [r["epoch"] for r in self._tokens.records]
        while n is not None and len(ep) > n:
            del ep[0 if n < 2 else min(range(1, len(ep) - 1), key=lambda i: (ep[i + 1] - ep[i - 1], i))]
        for cloud in (self._tokens, *self._groups.values()):
            cloud.keep(set(ep))

    def payload(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready plain values."""
        return build_payload(self.title, self._final, self._tokens, self._groups, self._metrics)

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
        except BaseException:  # a full disk, a file size limit: never leave the partial file
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
            raise

    def _load_previous(self, before: int) -> None:
        """Read the epochs before ``before`` back from an existing file (after a resume)."""
        try:
            data = read_payload(self.path)
        except (OSError, ValueError):
            return
        self._tokens.restore(data, before)
        for name, part in data.get("groups", {}).items():
            self._groups.setdefault(name, Cloud()).restore(part, before)
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

"""HtmlSink: one self-contained, offline HTML report of the clouds, rewritten after every snapshot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.sinks.base import Sink, check_writable_file, output_root, resolve_under
from lightning_ner_viz.sinks.html_analysis import group_analysis, token_analysis
from lightning_ner_viz.sinks.html_charts import Metrics
from lightning_ner_viz.sinks.html_order import entry_key, in_order, is_before, thin
from lightning_ner_viz.sinks.html_page import plotly_js, read_embedded, render_page, template, write_atomically
from lightning_ner_viz.sinks.html_payload import Cloud, build_payload
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis

DEFAULT_FILE = "embeddings.html"


class HtmlSink(Sink):
    """Writes one self-contained HTML file (plotly.js inlined: no server, account or network).

    Every captured validation is one snapshot of the report, keyed by its name (see
    :mod:`lightning_ner_viz.keys`) and shown in capture order: a ``validate()`` baseline
    at step 0, then fit's validations (several per epoch with ``val_check_interval``), and
    any later ``validate()`` runs, all in one file.

    Per view, a 3-D (or 2-D) scatter of every snapshot kept, then one per group of the
    snapshot (``entities``, and ``cls`` when captured: coloured by entity type), with
    one slider over the snapshots and a play button driving all panels (plotly frames);
    colour by gold label, predicted label or correct/incorrect; hover shows the token (or
    entity), its word, its sentence with the word in «», gold, predicted and the
    confidence (softmax max of the ``emissions`` view). Below: the drift metrics as
    small line charts per metric family, one point per snapshot in the slider's order
    (``validate()`` runs as diamonds, a baseline on a shaded band). Each panel's axis
    ranges are fixed over all snapshots and fit the points, so the cloud fills the panel
    and the axes never jump; when the cloud's size or place changes between snapshots,
    each is centred and scaled to the latest one's size for display (see
    :func:`~lightning_ner_viz.sinks.html_payload.fit_to_panel`), and the panel says so.

    Under the clouds, the snapshot's analyses (:meth:`log_analysis`), following the slider: the
    confusion heatmap and the span errors per entity type with entity F1 (both over the whole
    validation set), the class-similarity heatmap of a view or group, the misclassified sampled
    tokens most attracted to another class first (the first
    :data:`~lightning_ner_viz.sinks.html_analysis.ERROR_ROWS`; click a row to ring the token in the
    clouds, click a confusion cell to list only its tokens), and the sub-clusters of each label with
    this snapshot's splits, merges, new and vanished ones. Two more colour modes: ``knn`` (each
    misclassified token by its neighbours' majority label) and ``cluster`` (by sub-cluster); hover
    shows a misclassified token's kNN vote, nearest class and margin.

    In the bar, a search (plain text in any case, or a regular expression: the ``.*`` toggle or ``/pattern/flags``;
    in the token, word, sentence or all of them) and a filter (gold and predicted labels, right or wrong, confidence
    range, sub-cluster), both evaluated on each snapshot's own predictions as the slider moves or plays: matches are
    drawn larger over a dimmed cloud and listed under the token clouds, filtered-out tokens as small grey dots. In a
    2-D token cloud (``n_components=2``) a box or lasso selects tokens (in 3-D: shift-click); the selection is
    followed across snapshots, each token's path drawn as a thin line, listed with an "Export CSV" button (cells
    starting with ``= + - @`` get a ``'``). ``&q=``, ``&re=1``, ``&in=``, ``&gold=``, ``&pred=``, ``&ok=``, ``&conf=``
    and ``&cl=`` carry the search and filter in the link.

    The file is rewritten atomically after every snapshot (once its groups and analysis came), so it
    is always complete and can be opened mid-training (reload for newer ones). Open
    ``#snapshot=<name>`` (e.g. ``#snapshot=epoch=0002-step=0000120``) to start there, or ``#epoch=N``
    for the last snapshot of epoch ``N``, and ``&color=knn`` for a colour mode; in the page,
    ``nerViz.setSnapshot(name)``, ``nerViz.setEpoch(N)``, ``nerViz.setColor("pred")`` (``gold``,
    ``pred``, ``correct``, ``knn``, ``cluster``), ``nerViz.selectError(i)``, ``nerViz.search(query, {regex, in})``,
    ``nerViz.filter({gold, pred, correct, conf, cluster})``, ``nerViz.select(ids)``, ``nerViz.selectBox(view, x0, x1,
    y0, y1)``, ``nerViz.selected()``, ``nerViz.matches()`` and ``nerViz.csv()``.

    Args:
        path: the HTML file. Relative paths resolve under the callback's snapshot root
            (``<default_root_dir>/ner_viz`` by default).
        max_epochs_inline: keep at most this many snapshots' clouds and analyses (the first, the
            latest and an even spread between, by position in capture order), bounding memory and
            file size. Metrics of every snapshot are kept.
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
        self._expect_analysis = False  # the caller sends log_analysis after each snapshot's groups
        self._pending = False  # logged but not yet written: waiting for the analysis
        self._metrics: Metrics = {}
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
        """Remember this snapshot (by name) and rewrite the file (after its groups, when it has some, and after
        its analysis, once the caller has sent one)."""
        require("plotly")
        key = snapshot.key
        if self._pending:  # the previous snapshot's analysis never came: this caller sends none, write as it comes
            self._expect_analysis = False
        if self._restore:
            self._restore = False
            self._load_previous(before=key)
        self._tokens.add(snapshot, coords)
        self._metrics[key.name] = (key, {k: float(v) for k, v in metrics.items()})
        self._final = False
        self._thin()
        self._groups_due = set(snapshot.groups)
        if not self._groups_due:
            self._settled()

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Add a group's cloud (``entities``, ``cls``) to its snapshot (the one of the same name);
        rewrite the file once every group came (or wait for the analysis, see :meth:`log_analysis`)."""
        if any(r["key"].name == group.key.name for r in self._tokens.records):  # else thinned away or never logged
            self._groups.setdefault(name, Cloud()).add(group, {name: coords})
        if name in self._groups_due:
            self._groups_due.discard(name)
            if not self._groups_due:
                self._settled()

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:
        """Add the snapshot's analyses (errors, class similarity, sub-clusters) to its record and rewrite the file.

        It comes after the snapshot's :meth:`log_epoch` and groups; once one has come, the file is written
        here only (one write per snapshot, holding everything). A caller that sends none gets the file
        written after each snapshot's groups, as before.
        """
        name = snapshot.key.name
        self._tokens.annotate(name, token_analysis(analysis, list(snapshot.views)))
        for group, cloud in self._groups.items():
            part = group_analysis(analysis, group)
            if part is not None:
                cloud.annotate(name, part)
        self._expect_analysis = True
        self._groups_due = set()
        if self._tokens.records:
            self._write()

    def _settled(self) -> None:
        """The snapshot and its groups are in: write now, or mark it pending when its analysis will follow."""
        if self._expect_analysis:
            self._pending = True
        else:
            self._write()

    def flush(self) -> None:
        """Write the file now, not marked as complete (e.g. after ``trainer.validate()``, before ``fit``),
        even when some group of the latest snapshot did not come."""
        if self._tokens.records:
            self._groups_due = set()
            self._write()

    def close(self) -> None:
        """Rewrite the file once more, marked as complete; a second close with nothing logged since writes nothing."""
        if self._tokens.records and not self._final:
            self._final = True
            self._write()

    def state_dict(self) -> dict[str, Any]:
        """The file path; a resumed fit reads the earlier snapshots back from the file."""
        return {"path": str(self.path)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the file ``state['path']``: its snapshots captured before the resumed one are kept."""
        self._path = Path(state.get("path") or self._path)
        self._restore = True

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_plotlyjs": None}

    def __repr__(self) -> str:
        return f"HtmlSink(path={str(self.path)!r})"

    def _thin(self) -> None:
        """Drop snapshots beyond ``max_epochs_inline``: keep the first, the latest and an even spread,
        by position among every snapshot logged (in capture order)."""
        records = [r["key"] for r in self._tokens.records]
        order = [k.name for k in in_order([*records, *(k for k, _ in self._metrics.values())])]
        position = {name: i for i, name in enumerate(order)}
        kept = {order[i] for i in thin([position[k.name] for k in records], self.max_epochs_inline)}
        for cloud in (self._tokens, *self._groups.values()):
            cloud.keep(kept)

    def payload(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready plain values."""
        return build_payload(self.title, self._final, self._tokens, self._groups, self._metrics)

    def _write(self) -> None:
        if self._plotlyjs is None:
            self._plotlyjs = plotly_js()
        write_atomically(self.path, render_page(_template(), self.title, self.payload(), self._plotlyjs))
        self._pending = False

    def _load_previous(self, before: SnapshotKey) -> None:
        """Read the snapshots captured before ``before`` back from an existing file (after a resume)."""
        try:
            data = read_payload(self.path)
        except (OSError, ValueError):
            return
        self._tokens.restore(data, before)
        for name, part in data.get("groups", {}).items():
            self._groups.setdefault(name, Cloud()).restore(part, before)
        metrics = data["metrics"]
        points = metrics.get("snapshots") or [{"epoch": e} for e in metrics["epochs"]]
        for j, point in enumerate(points):
            key = entry_key(point)
            if is_before(key, before):
                self._metrics[key.name] = (key, {k: v[j] for k, v in metrics["series"].items() if v[j] is not None})


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data embedded in a file written by :class:`HtmlSink` (for tests and resuming)."""
    return read_embedded(path, "ner-viz-data", "a lightning-ner-viz HTML report")


def _template() -> str:
    return template("lightning_ner_viz.sinks", "html_template.html")

"""The interactive HTML report in W&B: what :class:`~lightning_ner_viz.sinks.WandbSink` logs as a ``wandb.Html``.

**Once, at the end.** The report (:class:`~lightning_ner_viz.sinks.HtmlSink`'s page) holds every snapshot
behind its own slider and play button, and it is a 5-6 MB self-contained file (plotly.js inlined, about
4.6 MB of it). W&B stores every ``wandb.Html`` it is given as a new file (``media/html/<key>_<step>_<hash>.html``)
and uploads it, so logging the page after every snapshot would store 5 MB per epoch, each version a subset of
the last one. It is logged once, from :meth:`WandbReport.log_to` in the sink's ``close()`` (the end of
``fit``), when the report is complete. A run stopped before ``close`` has the per-snapshot tables and plots
but no report panel.

**As it is.** ``wandb.Html(path, inject=False)``: the default ``inject=True`` adds
``<base target="_blank">`` and a stylesheet from ``app.wandb.ai`` to the page's ``<head>``, which restyles the
report and makes it fetch a file from the network; ``inject=False`` passes the page through byte for byte, and
the page needs nothing outside itself (no server, no network: it works in an offline run's files too).

**Where the page comes from** (``WandbSink(report=...)``), without sinks calling each other:

- ``True`` (default): at the first snapshot, the sink looks at the sinks of the
  :class:`~lightning_ner_viz.EmbeddingDriftCallback` that holds it (the Trainer's callbacks, read through the
  public ``resolved_sinks``); when one is an ``HtmlSink``, its file is logged at ``close`` (no second copy
  of the work). Otherwise the sink keeps its own copy: a private ``HtmlSink`` that receives the same
  ``log_epoch``/``log_group``/``log_analysis`` calls and writes ``ner_viz-report.html`` next to the W&B
  run's files (not inside ``files/``, so it is uploaded once, as the media file).
- a path: that report file (relative paths resolve under the snapshot root, like the sinks' own), logged at
  ``close``; e.g. the file of an ``HtmlSink`` in another callback.
- an ``HtmlSink``: that sink's file.
- ``False``: no report.

An ``HtmlSink`` listed after the ``WandbSink`` is closed after it: its page is complete, but its footer
then says training may still run (the automatic sinks list the ``HtmlSink`` first).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lightning_ner_viz.sinks.base import Sink, resolve_under
from lightning_ner_viz.sinks.html import HtmlSink

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import numpy as np

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
    from lightning_ner_viz.snapshot import Snapshot

ReportSource = Union[bool, str, "os.PathLike[str]", HtmlSink]
"""What ``WandbSink(report=...)`` accepts."""

COPY_NAME = "ner_viz-report.html"
"""The private copy's file name, in the W&B run's directory."""


def report_key(prefix: str) -> str:
    """The report's key: ``<prefix>_report/embeddings``, its own section in the W&B workspace. Not under
    ``<prefix>/``, whose keys W&B plots against ``<prefix>/epoch`` and fills that in for every row: the report's
    row would then look like one more snapshot."""
    return f"{prefix}_report/embeddings"


class WandbReport:
    """Finds, or builds, the HTML report a :class:`~lightning_ner_viz.sinks.WandbSink` logs at ``close``.

    Args:
        report: see the module's docstring.
    """

    def __init__(self, report: ReportSource = True) -> None:
        if not isinstance(report, (bool, str, os.PathLike, HtmlSink)):
            raise TypeError(f"report={report!r}: pass True, False, a report's path or an HtmlSink.")
        self.report = report
        self._root: Path | None = None
        self._trainer: Any = None  # a weak reference, dropped at the first snapshot
        self._source: HtmlSink | Path | None = None  # decided at the first snapshot
        self._copy: HtmlSink | None = None
        self._copy_path: str | None = None  # restored from a checkpoint
        self._decided = False

    @property
    def enabled(self) -> bool:
        """Whether a report is logged at all."""
        return self.report is not False

    @property
    def copy(self) -> HtmlSink | None:
        """The private copy, when this sink keeps one."""
        return self._copy

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None) -> None:
        """Remember the snapshot root (relative paths) and the Trainer (to find an ``HtmlSink`` beside this sink)."""
        self._root = Path(save_dir) if save_dir is not None else None
        try:
            self._trainer = weakref.ref(trainer) if trainer is not None else None
        except TypeError:  # a stand-in that cannot be weakly referenced
            self._trainer = None

    def log_epoch(self, owner: Sink, run_dir: Path | None, snapshot: Snapshot, coords: dict[str, np.ndarray],
                  metrics: dict[str, float]) -> None:
        """Decide where the report comes from (at the first snapshot); pass the snapshot to the private copy."""
        if not self._decided:
            self._decided = True
            self._source = self._find_source(owner, run_dir)
        self._to_copy("log_epoch", snapshot, coords, metrics)

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Pass a group to the private copy."""
        self._to_copy("log_group", name, group, coords)

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:
        """Pass the analyses to the private copy."""
        self._to_copy("log_analysis", snapshot, analysis)

    def _to_copy(self, method: str, *args: Any) -> None:
        """Call the private copy; when it fails (a full disk), warn once and go on without a report: the
        tables and plots of the W&B run do not depend on it."""
        if self._copy is None:
            return
        try:
            getattr(self._copy, method)(*args)
        except Exception as err:
            from lightning_ner_viz._warnings import warn

            warn(f"W&B's copy of the HTML report ({self._copy.path}) failed ({type(err).__name__}: {err}); the run "
                 "gets no report panel, its tables and plots go on.")
            self._copy = self._source = None

    def log_to(self, run: Any, key: str) -> Path | None:
        """Log the report in ``run`` as one ``wandb.Html`` under ``key`` and return its file; ``None`` when there is
        no report (off, or nothing logged). A missing file or a failure warns: the run still finishes."""
        if not self._decided or self._source is None:
            return None
        from lightning_ner_viz._warnings import warn

        path = self._source.path if isinstance(self._source, HtmlSink) else self._source
        try:
            if self._copy is not None:
                self._copy.close()  # rewritten once more, marked complete
            if not path.is_file():
                warn(f"The HTML report {path} is not there, so W&B gets no report panel ({key}).")
                return None
            import wandb

            run.log({key: wandb.Html(str(path), inject=False)})
        except Exception as err:
            warn(f"Logging the HTML report {path} to W&B failed ({type(err).__name__}: {err}).")
            return None
        return path

    def _find_source(self, owner: Sink, run_dir: Path | None) -> HtmlSink | Path | None:
        if self.report is False:
            return None
        if isinstance(self.report, HtmlSink):
            return self.report
        if self.report is not True:
            return resolve_under(Path(self.report), self._root)
        beside = _html_sink_beside(owner, self._trainer() if self._trainer is not None else None)
        self._trainer = None
        if beside is not None:
            return beside
        from lightning_ner_viz._imports import _PLOTLY_AVAILABLE

        if not _PLOTLY_AVAILABLE:
            return None  # the wandb extra brings plotly; without it there is no report to build
        path = Path(self._copy_path) if self._copy_path else _copy_path(run_dir)
        self._copy = HtmlSink(path=path, title="lightning-ner-viz (W&B run)")
        if self._copy_path:
            self._copy.load_state_dict({"path": self._copy_path})  # a resumed fit: keep the earlier snapshots
        return self._copy

    def state_dict(self) -> dict[str, Any]:
        """The private copy's path, so a resumed fit continues it."""
        return {"report_copy": str(self._copy.path)} if self._copy is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the private copy of a checkpoint."""
        self._copy_path = state.get("report_copy") or self._copy_path

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_trainer": None}


def _html_sink_beside(owner: Sink, trainer: Any) -> HtmlSink | None:
    """The first ``HtmlSink`` among the sinks of the Trainer's callback that holds ``owner``."""
    for callback in getattr(trainer, "callbacks", None) or []:
        sinks = list(getattr(callback, "resolved_sinks", None) or [])
        if any(s is owner for s in sinks):
            return next((s for s in sinks if isinstance(s, HtmlSink)), None)
    return None


def _copy_path(run_dir: Path | None) -> Path:
    """``<run dir>/ner_viz-report.html`` (beside ``files/``: W&B uploads only ``files/``); a temporary directory
    when the run has no local directory."""
    where = run_dir if run_dir is not None else Path(tempfile.mkdtemp(prefix="ner-viz-wandb-report-"))
    return where / COPY_NAME

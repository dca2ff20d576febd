"""WandbSink: per-snapshot tables, plots and scalars in a W&B run."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.base import Sink, check_writable_dir, resolve_under
from lightning_ner_viz.sinks.snapshot_keys import scalar_prefix
from lightning_ner_viz.sinks.wandb_finish import wait_before_finish
from lightning_ner_viz.sinks.wandb_tables import scatter_figure, token_table
from lightning_ner_viz.sinks.wandb_analysis import analysis_entries
from lightning_ner_viz.sinks.wandb_report import ReportSource, WandbReport, report_key
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis


class WandbSink(Sink):
    """Logs each snapshot (every captured validation) to W&B as one history row.

    Each row carries ``<prefix>/epoch`` and ``<prefix>/global_step`` (the trainer's step);
    ``<prefix>/*`` is plotted against ``<prefix>/epoch`` (``define_metric``); with several
    validations per epoch pick ``<prefix>/global_step`` as the x-axis in the W&B UI.
    Per view it logs ``<prefix>/<view>/table`` (a ``wandb.Table`` with token, word, gold,
    predicted, correct, the snapshot's name, epoch and global step, the projected coordinates
    and the raw vector as ``embedding``, so W&B's Embedding Projector works on it) and
    ``<prefix>/<view>/scatter`` (a plotly scatter coloured by gold label, titled with the
    snapshot's label, e.g. "hidden embeddings, epoch 2 · step 120"). The snapshot's analyses
    (:meth:`log_analysis`) join the same row: ``<prefix>/confusion`` and
    ``<prefix>/class_similarity/<view>`` (plotly heatmaps), ``<prefix>/errors``, ``<prefix>/clusters``,
    ``<prefix>/cluster_events`` (when there are any) and ``<prefix>/span_errors`` (tables); see
    :mod:`~lightning_ner_viz.sinks.wandb_analysis`. At :meth:`close` it logs the interactive HTML report (slider,
    play, drift and analysis panels) once, complete, as a ``wandb.Html`` (``<prefix>_report/embeddings``):
    a 5 MB page per epoch would be stored per epoch (see :mod:`~lightning_ner_viz.sinks.wandb_report`).

    How snapshots are kept apart:

    - Scalars (``n_tokens`` and every metric) of the fit's validations are ``<prefix>/<name>``;
      a baseline's (``validate()`` before training) are ``<prefix>/baseline/<name>`` and
      another ``validate()``'s ``<prefix>/validate/<name>``, so a baseline at epoch 0 is never
      a point of the fit's curves (see :mod:`lightning_ner_viz.sinks.snapshot_keys`).
    - Tables, scatters and heatmaps keep one key per view for every snapshot, the baseline's too
      (W&B's media slider then runs from the baseline through training); each is logged in its
      own row, so W&B keeps every version and none overwrites another.
    - A snapshot's row is sent once its analyses arrive (the renderer calls :meth:`log_analysis`
      after ``log_epoch`` and ``log_group``), else by the next snapshot, :meth:`flush` or :meth:`close`.
    - The sink never passes ``step=``: W&B's own step counts the rows, so it only grows,
      whatever the snapshots' epochs and global steps and whatever a ``WandbLogger`` logs in
      between (no "steps must be monotonically increasing" warning).

    The run is the Trainer's ``WandbLogger`` run if there is one, else the active
    ``wandb.run``, else a new run started with ``init_kwargs``.

    Args:
        prefix: the key prefix.
        log_table: log the per-token table.
        log_plot: log the plotly scatter.
        init_kwargs: passed to ``wandb.init`` when this sink starts the run. A relative
            ``dir`` resolves under the callback's snapshot root when the callback passes one.
        report: the report to log at :meth:`close`: ``True``, the callback's ``HtmlSink`` file, else this
            sink's own copy; a path or an ``HtmlSink``: that file; ``False``: none.

    Example::

        trainer = Trainer(logger=WandbLogger(project="ner"), callbacks=[EmbeddingDriftCallback(sinks=[WandbSink()])])
    """

    def __init__(
        self,
        prefix: str = "ner_viz",
        *,
        log_table: bool = True,
        log_plot: bool = True,
        init_kwargs: dict[str, Any] | None = None,
        report: ReportSource = True,
    ) -> None:
        self.prefix = prefix.strip("/")
        self.log_table = log_table
        self.log_plot = log_plot
        self.init_kwargs = dict(init_kwargs or {})
        self._report = WandbReport(report)
        self.run_id: str | None = None
        self._restored_run_id: str | None = None
        self._run_dir: Path | None = None
        self._output_root: Path | None = None
        self._logger: Any = None
        self._run: Any = None
        self._owns_run = False
        self._pending: dict[str, Any] | None = None
        self._pending_name: str | None = None  # the snapshot whose row is pending
        self._before_finish: Callable[[], None] | None = None  # a detached end of fit's wait

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None = None) -> None:
        """Remember the Trainer's ``WandbLogger``, if any, and the snapshot root ``save_dir``."""
        from lightning.pytorch.loggers import WandbLogger

        self._output_root = Path(save_dir) if save_dir is not None else None
        self._report.setup(trainer, save_dir)
        loggers = trainer.loggers if trainer is not None else []
        self._logger = next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
        if self._logger is not None:
            self._check_logger_continues(self._restored_run_id)
            self.run_id = self._logger.version
        else:  # fixed now so a checkpoint taken before the first epoch is logged still names the run
            self.run_id = self.run_id or uuid.uuid4().hex[:8]

    def _check_logger_continues(self, saved_run_id: str | None) -> None:
        """Warn when a resumed fit's ``WandbLogger`` logs to another run than the checkpoint's."""
        if self._logger is None or saved_run_id is None:
            return
        current = self._logger.version or self._logger.experiment.id  # the logger would start its run anyway
        if current != saved_run_id:
            from lightning_ner_viz._warnings import warn

            warn(f"The checkpoint's W&B run is {saved_run_id!r}, but the Trainer's WandbLogger logs to the run "
                 f"{current!r}, so the resumed epochs land in another run. To continue the same run, pass "
                 f"WandbLogger(id={saved_run_id!r}, resume='allow', ...).")
        self._restored_run_id = None

    def check_target(self) -> None:
        """When this sink starts its own run in ``init_kwargs['dir']``, that directory is writable.

        Raises:
            SinkTargetError: naming the directory.
        """
        if self._logger is None and self.init_kwargs.get("dir") is not None:
            check_writable_dir(resolve_under(Path(self.init_kwargs["dir"]), self._output_root), repr(self))

    def _get_run(self) -> Any:
        if self._run is None:
            wandb = require("wandb")
            if self._logger is not None:
                self._run = self._logger.experiment
            elif wandb.run is not None:
                self._run = wandb.run
            else:
                kwargs = {"project": "lightning-ner-viz", **self.init_kwargs}
                if kwargs.get("dir") is not None:
                    run_root = resolve_under(Path(kwargs["dir"]), self._output_root)
                    run_root.mkdir(parents=True, exist_ok=True)
                    kwargs["dir"] = str(run_root)
                if self.run_id:
                    kwargs.setdefault("id", self.run_id)
                    kwargs.setdefault("resume", "allow")
                self._run = wandb.init(**kwargs)
                self._owns_run = True
            self.run_id = self._run.id
            run_files = getattr(self._run, "dir", None)
            self._run_dir = Path(run_files).parent if run_files else None
            if self._before_finish is not None:
                wait_before_finish(self._run, self._before_finish)
            self._run.define_metric(f"{self.prefix}/epoch")
            self._run.define_metric(f"{self.prefix}/global_step")
            self._run.define_metric(f"{self.prefix}/*", step_metric=f"{self.prefix}/epoch")
        return self._run

    @property
    def run_dir(self) -> Path | None:
        """The run's local directory (e.g. ``wandb/offline-run-...``), once the run is open."""
        return self._run_dir

    @property
    def location(self) -> str | None:
        """The run's local directory, once the run is open."""
        return str(self._run_dir) if self._run_dir is not None else None

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Log one snapshot's tables, plots and metrics in one history row."""
        wandb = require("wandb")
        self._get_run()  # starts or joins the run
        scalars = scalar_prefix(self.prefix, snapshot.key)
        row = self._axes(snapshot)
        row[f"{scalars}/n_tokens"] = len(snapshot)
        row.update({f"{scalars}/{k}": float(v) for k, v in metrics.items()})
        gold, pred = snapshot.gold_names(), snapshot.pred_names()
        for view, xyz in coords.items():
            if self.log_table:
                row[f"{self.prefix}/{view}/table"] = token_table(wandb, snapshot, view, xyz, gold, pred)
            if self.log_plot:
                row[f"{self.prefix}/{view}/scatter"] = wandb.Plotly(scatter_figure(snapshot, view, xyz))
        self._flush_pending()
        self._pending, self._pending_name = row, snapshot.key.name  # groups and analyses join it: one row
        self._report.log_epoch(self, self._run_dir, snapshot, coords, metrics)

    def _axes(self, snapshot: Snapshot) -> dict[str, Any]:
        """The row's x-axis values: the snapshot's epoch and global step."""
        return {f"{self.prefix}/epoch": snapshot.epoch, f"{self.prefix}/global_step": snapshot.step}

    def _flush_pending(self) -> None:
        if self._pending is not None:
            row, self._pending, self._pending_name = self._pending, None, None
            self._get_run().log(row)

    def _row_of(self, snapshot: Snapshot) -> dict[str, Any]:
        """The pending row when it is ``snapshot``'s; else (after sending another's) a new row with its axes."""
        if self._pending is None or self._pending_name != snapshot.key.name:
            self._flush_pending()
            self._pending, self._pending_name = self._axes(snapshot), snapshot.key.name
        return self._pending

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Add a group's (``entities``, ``cls``) table and scatter to the snapshot's history row."""
        wandb = require("wandb")
        self._report.log_group(name, group, coords)
        row = self._row_of(group)
        if self.log_table:
            row[f"{self.prefix}/{name}/table"] = token_table(wandb, group, name, coords, group.gold_names(), group.pred_names())
        if self.log_plot:
            row[f"{self.prefix}/{name}/scatter"] = wandb.Plotly(scatter_figure(group, name, coords))

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:
        """Add the snapshot's heatmaps and analysis tables to its history row, and send the row."""
        self._get_run()
        self._report.log_analysis(snapshot, analysis)
        self._row_of(snapshot).update(analysis_entries(snapshot, analysis, self.prefix))
        self._flush_pending()

    def on_detached(self, wait: Callable[[], None]) -> None:
        """Have ``wandb.finish()`` on this sink's run (the logger's, ``wandb.run`` or its own) call ``wait`` first,
        so a script that finishes the run right after ``fit`` still gets every epoch (:mod:`.wandb_finish`)."""
        self._before_finish = wait
        experiment = getattr(self._logger, "_experiment", None)  # the logger's run, if it started one
        run = self._run or experiment or getattr(sys.modules.get("wandb"), "run", None)
        if run is not None:
            wait_before_finish(run, wait)

    def flush(self) -> None:
        """Send the pending row (a snapshot whose analyses did not come)."""
        if self._run is not None or self._pending is not None:
            self._flush_pending()

    def close(self) -> None:
        """Log the HTML report (once, complete), then finish the run if this sink started it (not a logger's run)."""
        if self._run is not None or self._pending is not None:
            self._flush_pending()
        if self._run is not None:
            self._report.log_to(self._run, report_key(self.prefix))
        if self._run is not None and self._owns_run:
            self._run.finish()
        self._run = None

    def state_dict(self) -> dict[str, Any]:
        """The run id, so a resumed fit continues the same run."""
        return {"run_id": self.run_id, **self._report.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the run ``state['run_id']`` when this sink starts its own run; with a
        ``WandbLogger``, warn when the logger's run is another one (it cannot be switched)."""
        saved = state.get("run_id")
        self._report.load_state_dict(state)
        if self._logger is not None:  # restored after setup: the logger decides the run
            self._check_logger_continues(saved)
        else:
            self._restored_run_id = saved
            self.run_id = saved or self.run_id

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None
        state["_pending"] = state["_pending_name"] = state["_before_finish"] = None
        return state

    def __repr__(self) -> str:
        return f"WandbSink(prefix={self.prefix!r})"

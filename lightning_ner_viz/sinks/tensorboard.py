"""TensorBoardSink: each snapshot's vectors in TensorBoard's Embedding Projector, plus scalars."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lightning_utilities.core.imports import RequirementCache

from lightning_ner_viz.sinks.base import (
    DEFAULT_SUBDIR, Sink, check_writable_dir, output_root, renamed_attribute, renamed_keyword, resolve_under,
)
from lightning_ner_viz.sinks.snapshot_keys import scalar_prefix
from lightning_ner_viz.sinks.tensorboard_analysis import log_analysis
from lightning_ner_viz.sinks.tensorboard_projector import PROJECTOR_CONFIG as PROJECTOR_CONFIG  # re-exported
from lightning_ner_viz.sinks.tensorboard_projector import add_embedding, restore_projector_config
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis

_TENSORBOARD_AVAILABLE = RequirementCache("tensorboard>=2.10", "tensorboard")

DEFAULT_DIR = "tensorboard"
METADATA_HEADER = ["token", "gold", "predicted", "correct"]


def _require_tensorboard() -> None:
    if not _TENSORBOARD_AVAILABLE:
        raise ModuleNotFoundError(
            f"{_TENSORBOARD_AVAILABLE!s}. Install it with `pip install 'lightning-ner-viz[tensorboard]'`."
        )


class TensorBoardSink(Sink):
    """Logs each snapshot's raw vectors to TensorBoard's Embedding Projector, and the metrics as scalars.

    Per snapshot (every captured validation) and view it writes the view's raw vectors
    (not the 2-D/3-D projection: the projector runs its own PCA, t-SNE and UMAP) as one
    projector tensor named ``<prefix>/<view>:<snapshot name>``, e.g.
    ``ner_viz/hidden:epoch=0003-step=0000120`` or ``ner_viz/hidden:validate=00-step=0000000``
    (a baseline), so several validations of one epoch each get their own tensor (see
    :mod:`lightning_ner_viz.sinks.tensorboard_projector`). Each point carries the metadata
    columns ``token``, ``gold``, ``predicted`` and ``correct`` (colour by ``gold``, search by
    ``token``).

    Every metric is logged with ``add_scalar`` at ``global_step`` = the trainer's global step
    (``snapshot.step``), like the Trainer's own metrics: as ``<prefix>/<name>`` for the fit's
    validations, ``<prefix>/baseline/<name>`` for a baseline (``validate()`` before training)
    and ``<prefix>/validate/<name>`` for another ``validate()`` call, so a baseline at step 0
    is not drawn as the first point of the fit's curve (see
    :mod:`lightning_ner_viz.sinks.snapshot_keys`).

    The snapshot's analyses (:meth:`log_analysis`) go at the same step under the same prefix: the
    confusion matrix and class similarities as heatmap images (``<prefix>/confusion``,
    ``<prefix>/class_similarity/<view>``), the errors, sub-clusters and span errors as markdown
    text (``<prefix>/errors``, ``<prefix>/clusters``, ``<prefix>/span_errors``); see
    :mod:`~lightning_ner_viz.sinks.tensorboard_analysis`.

    The writer is the Trainer's ``TensorBoardLogger`` writer (``logger.experiment``,
    so everything lands in that logger's ``version_N`` directory) when the Trainer
    has one and ``save_dir`` is not given; otherwise this sink opens its own
    ``SummaryWriter`` on ``save_dir`` at the first epoch.

    Open it with ``tensorboard --logdir <dir>`` and pick the "Projector" tab.

    Args:
        save_dir: write to this directory with an own writer. Relative paths resolve
            under the callback's snapshot root (``<default_root_dir>/ner_viz`` by default).
            ``None``: the Trainer's ``TensorBoardLogger`` if any, else ``tensorboard``
            under the snapshot root.
        prefix: the prefix of every tag.
        log_dir: deprecated name of ``save_dir``.
        tag_prefix: deprecated name of ``prefix``.

    Example::

        trainer = Trainer(logger=TensorBoardLogger("runs"), callbacks=[EmbeddingDriftCallback(sinks=[TensorBoardSink()])])
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str] | None = None,
        *,
        prefix: str = "ner_viz",
        log_dir: str | os.PathLike[str] | None = None,
        tag_prefix: str | None = None,
    ) -> None:
        save_dir = renamed_keyword("TensorBoardSink", "log_dir", "save_dir", log_dir, save_dir, None)
        prefix = renamed_keyword("TensorBoardSink", "tag_prefix", "prefix", tag_prefix, prefix, "ner_viz")
        self._save_dir = Path(save_dir) if save_dir is not None else None
        self.prefix = prefix.strip("/")
        if not self.prefix:
            raise ValueError("prefix must be a non-empty string, e.g. 'ner_viz'.")
        self._own_dir: Path | None = self._save_dir
        self._logger: Any = None
        self._writer: Any = None
        self._owns_writer = False
        self._written_dir: str | None = None

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None = None) -> None:
        """Pick the Trainer's ``TensorBoardLogger`` (when ``save_dir`` was not given), else resolve
        this sink's directory under the snapshot root ``save_dir``.

        Raises:
            ModuleNotFoundError: when this sink needs its own writer and tensorboard is missing.
        """
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers = trainer.loggers if trainer is not None else []
        root = output_root(trainer, save_dir)
        self._logger = None
        if self._save_dir is None:
            self._logger = next((lg for lg in loggers if isinstance(lg, TensorBoardLogger)), None)
            self._own_dir = None if self._logger is not None else _default_dir(root)
        else:
            self._own_dir = resolve_under(self._save_dir, root)
        if self._logger is None:
            _require_tensorboard()

    def check_target(self) -> None:
        """This sink's own directory is writable (a ``TensorBoardLogger``'s directory is the logger's to check).

        Raises:
            SinkTargetError: naming the directory.
        """
        if self._logger is None and self._own_dir is not None:
            check_writable_dir(self._own_dir, repr(self))

    @property
    def save_dir(self) -> Path | None:
        """The directory events go to: this sink's own (resolved by :meth:`setup`), or the
        Trainer's ``TensorBoardLogger`` directory when writing through it."""
        if self._logger is not None:
            return Path(self._logger.log_dir)
        return self._own_dir

    @property
    def output_path(self) -> Path | None:
        """This sink's own directory (``None`` when it writes through the Trainer's logger)."""
        return self._own_dir if self._logger is None else None

    @property
    def location(self) -> str | None:
        """The directory events go to."""
        return self._written_dir or (str(self.save_dir) if self.save_dir is not None else None)

    @property
    def log_dir(self) -> Path | None:
        """Deprecated: the ``save_dir`` given to the constructor."""
        warnings.warn("TensorBoardSink.log_dir is deprecated; read `.save_dir` instead.", DeprecationWarning,
                      stacklevel=2)
        return self._save_dir

    @property
    def resolved_log_dir(self) -> Path | None:
        """Deprecated name of this sink's own directory (``None`` when writing through a logger)."""
        warnings.warn("TensorBoardSink.resolved_log_dir is deprecated; read `.save_dir` instead.",
                      DeprecationWarning, stacklevel=2)
        return self._own_dir

    @property
    def tag_prefix(self) -> str:
        """Deprecated name of :attr:`prefix`."""
        return renamed_attribute(self, "tag_prefix", "prefix")

    @property
    def writer_log_dir(self) -> str | None:
        """The directory the events and projector config went to: the own ``save_dir`` or the
        logger's ``version_N`` directory (``None`` before the first epoch)."""
        return self._written_dir

    def _get_writer(self) -> Any:
        if self._writer is None:
            if self._logger is not None:
                self._writer = self._logger.experiment
                self._owns_writer = False
            else:
                _require_tensorboard()
                from torch.utils.tensorboard import SummaryWriter

                log_dir = self._own_dir or _default_dir(None)
                log_dir.mkdir(parents=True, exist_ok=True)
                self._writer = SummaryWriter(log_dir=str(log_dir))
                self._owns_writer = True
            self._written_dir = str(self._writer.get_logdir())
            restore_projector_config(self._writer)
        return self._writer

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Add one projector tensor per view (named by the snapshot) and one scalar per metric (at its global step)."""
        writer = self._get_writer()
        gold, pred = snapshot.gold_names(), snapshot.pred_names()
        metadata = [
            [_cell(snapshot.token[i]), _cell(gold[i]), _cell(pred[i]), str(bool(snapshot.correct[i]))]
            for i in range(len(snapshot))
        ]
        for view in snapshot.views:
            vectors = np.asarray(snapshot.views[view], dtype=np.float32)
            if len(vectors) == 0:
                continue
            add_embedding(writer, f"{self.prefix}/{view}", snapshot.key.name, vectors, metadata, METADATA_HEADER)
        scalars = scalar_prefix(self.prefix, snapshot.key)
        for name, value in metrics.items():
            if math.isfinite(value):
                writer.add_scalar(f"{scalars}/{name}", float(value), global_step=snapshot.step)
        writer.flush()

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:
        """Add the snapshot's heatmap images and analysis texts at its global step."""
        writer = self._get_writer()
        log_analysis(writer, self.prefix, snapshot, analysis)
        writer.flush()

    @property
    def outlives_fit(self) -> bool:
        """``False`` with a ``TensorBoardLogger``'s writer: Lightning closes it right after ``fit``, so ``fit`` waits
        for the pictures (an own writer, ``save_dir=...``, lets ``fit`` return first)."""
        return self._logger is None

    def close(self) -> None:
        """Flush; close the writer only if this sink opened it (a logger's writer is the logger's)."""
        if self._writer is not None:
            self._writer.flush()
            if self._owns_writer:
                self._writer.close()
        self._writer = None
        self._owns_writer = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_writer=None, _owns_writer=False)
        return state

    def __repr__(self) -> str:
        target = str(self._save_dir) if self._save_dir is not None else None
        return f"TensorBoardSink(save_dir={target!r}, prefix={self.prefix!r})"


def _default_dir(root: Path | None) -> Path:
    """``tensorboard`` under the snapshot root, or under ``./ner_viz`` without one."""
    return (root or Path.cwd() / DEFAULT_SUBDIR) / DEFAULT_DIR


def _cell(text: str) -> str:
    """A metadata cell: tabs and line breaks would split the TSV, so they become spaces."""
    return " ".join(str(text).replace("\t", " ").splitlines()) if text else ""

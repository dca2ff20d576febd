"""Turn the callback's ``sinks`` argument into a list of Sink objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lightning_ner_viz._imports import _PLOTLY_AVAILABLE, _RERUN_AVAILABLE, _WANDB_AVAILABLE
from lightning_ner_viz._warnings import warn
from lightning_ner_viz.sinks.base import Sink

if TYPE_CHECKING:
    import lightning.pytorch as pl


def auto_sinks(trainer: pl.Trainer | None) -> list[Sink]:
    """A Rerun file and an HTML report always (when rerun / plotly are installed), a W&B sink for
    a ``WandbLogger`` and a TensorBoard sink for a ``TensorBoardLogger``."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink

    sinks: list[Sink] = []
    if _RERUN_AVAILABLE:
        sinks.append(RerunSink())
    else:
        warn("rerun-sdk is not installed, so no .rrd recording is written: `pip install 'lightning-ner-viz[rerun]'`.")
    if _PLOTLY_AVAILABLE:
        sinks.append(HtmlSink())
    else:
        warn("plotly is not installed, so no HTML report is written: `pip install 'lightning-ner-viz[html]'`.")
    loggers = trainer.loggers if trainer is not None else []
    if any(isinstance(lg, WandbLogger) for lg in loggers) and _WANDB_AVAILABLE:
        sinks.append(WandbSink())
    if any(isinstance(lg, TensorBoardLogger) for lg in loggers):
        sinks.append(TensorBoardSink())
    return sinks


def resolve_sinks(sinks: Sink | Sequence[Sink] | str | None, trainer: pl.Trainer | None) -> list[Sink]:
    """``None``/``"auto"`` -> :func:`auto_sinks`; a sink -> ``[sink]``; a list is checked.

    Raises:
        ValueError: for an unknown string.
        TypeError: for an item that is not a :class:`Sink`.
    """
    if sinks is None or sinks == "auto":
        return auto_sinks(trainer)
    if isinstance(sinks, str):
        raise ValueError(f"sinks={sinks!r}: pass 'auto', a Sink, or a list of Sinks (RerunSink, WandbSink, ...).")
    items = [sinks] if isinstance(sinks, Sink) else list(sinks)
    wrong = [type(s).__name__ for s in items if not isinstance(s, Sink)]
    if wrong:
        raise TypeError(f"Every sink must be a lightning_ner_viz.sinks.Sink; got {wrong}.")
    return items

"""The one sink registry: sink names, building sinks, setting them up, and their checkpoint state.

Importing this module imports no sink backend and none of torch, Lightning or NumPy, so the
command line can list :data:`SINK_NAMES` in ``--help`` quickly.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from lightning_ner_viz.sinks.base import Sink, SinkTargetError

if TYPE_CHECKING:
    import lightning.pytorch as pl

SinkName = Literal["rerun", "wandb", "html", "tensorboard"]
"""A sink's registry name."""

SINK_NAMES: tuple[str, ...] = get_args(SinkName)
"""Every name :func:`make_sink` accepts, in the order the command line lists them."""

_CLASS_PATHS: dict[str, str] = {
    "rerun": "lightning_ner_viz.sinks.rerun.RerunSink",
    "wandb": "lightning_ner_viz.sinks.wandb.WandbSink",
    "html": "lightning_ner_viz.sinks.html.HtmlSink",
    "tensorboard": "lightning_ner_viz.sinks.tensorboard.TensorBoardSink",
}


def sink_class(name: str) -> type[Sink]:
    """The sink class registered as ``name`` (imported on first use).

    Raises:
        ValueError: for a name not in :data:`SINK_NAMES`.
    """
    if name not in SINK_NAMES:
        raise ValueError(f"Unknown sink {name!r}; choose one of {list(SINK_NAMES)}.")
    module, _, cls = _CLASS_PATHS[name].rpartition(".")
    return getattr(importlib.import_module(module), cls)


def make_sink(name: str, out: Path) -> Sink:
    """A sink by name, writing to ``out``: a file for ``rerun``/``html``, a directory for the others.

    Raises:
        ValueError: for a name not in :data:`SINK_NAMES`.
    """
    cls: Any = sink_class(name)
    if name in ("rerun", "html"):
        return cls(path=out)
    if name == "tensorboard":
        return cls(save_dir=out)
    return cls(init_kwargs={"dir": str(out), "project": "lightning-ner-viz-render"})


def auto_sinks(trainer: pl.Trainer | None) -> list[Sink]:
    """A Rerun file and an HTML report always (when rerun / plotly are installed), a W&B sink for
    a ``WandbLogger`` and a TensorBoard sink for a ``TensorBoardLogger``."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from lightning_ner_viz._imports import _PLOTLY_AVAILABLE, _RERUN_AVAILABLE, _WANDB_AVAILABLE
    from lightning_ner_viz._warnings import warn

    sinks: list[Sink] = []
    if _RERUN_AVAILABLE:
        sinks.append(sink_class("rerun")())
    else:
        warn("rerun-sdk is not installed, so no .rrd recording is written: `pip install 'lightning-ner-viz[rerun]'`.")
    if _PLOTLY_AVAILABLE:
        sinks.append(sink_class("html")())
    else:
        warn("plotly is not installed, so no HTML report is written: `pip install 'lightning-ner-viz[html]'`.")
    loggers = trainer.loggers if trainer is not None else []
    if any(isinstance(lg, WandbLogger) for lg in loggers) and _WANDB_AVAILABLE:
        sinks.append(sink_class("wandb")())
    if any(isinstance(lg, TensorBoardLogger) for lg in loggers):
        sinks.append(sink_class("tensorboard")())
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


def setup_sinks(sinks: Sequence[Sink], trainer: pl.Trainer | None, save_dir: Path | None,
                strict: bool | None = None) -> list[Sink]:
    """Call every sink's ``setup(trainer, save_dir)``, then check its target (:meth:`Sink.check_target`).

    A user sink whose ``setup`` takes only the Trainer is called as ``setup(trainer)``, with a
    :class:`DeprecationWarning`.

    Args:
        strict: what an unusable target does: ``None`` or ``True`` raise (before any training
            time is spent); ``False`` warns and leaves that sink out.

    Returns:
        The sinks that can be used.

    Raises:
        SinkTargetError: for an unusable target, unless ``strict=False``.
    """
    usable = []
    for sink in sinks:
        _setup_one(sink, trainer, save_dir)
        try:
            sink.check_target()
        except SinkTargetError as err:
            if strict is not False:
                raise SinkTargetError(f"{err} (Pass strict=False to the callback to warn instead and train "
                                      "without this sink.)") from err
            from lightning_ner_viz._warnings import warn

            warn(f"{err} Training goes on without {sink!r}; the snapshots are still saved.")
            continue
        usable.append(sink)
    return usable


def _setup_one(sink: Sink, trainer: pl.Trainer | None, save_dir: Path | None) -> None:
    try:
        inspect.signature(sink.setup).bind(trainer, save_dir)
    except TypeError:
        warnings.warn(f"{type(sink).__name__}.setup(trainer) should accept `save_dir` as well: "
                      "setup(trainer, save_dir=None).", DeprecationWarning, stacklevel=3)
        sink.setup(trainer)  # type: ignore[call-arg]
        return
    except ValueError:  # no signature (a C extension): call as documented
        pass
    sink.setup(trainer, save_dir)


def state_keys(sinks: Sequence[Sink]) -> list[str]:
    """One checkpoint key per sink: its type name, then ``<type>#2``, ``<type>#3`` for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for sink in sinks:
        name = type(sink).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def sink_states(sinks: Sequence[Sink]) -> dict[str, dict[str, Any]]:
    """Every sink's :meth:`~Sink.state_dict`, keyed by :func:`state_keys` (``RerunSink``, ``RerunSink#2``)."""
    return {key: sink.state_dict() for key, sink in zip(state_keys(sinks), sinks)}


def restore_sink_states(
    sinks: Sequence[Sink], states: Mapping[str, dict[str, Any]] | Sequence[dict[str, Any]] | None
) -> None:
    """Hand each sink its saved state: by key (:func:`sink_states`), or by position for a list
    (checkpoints written before states were keyed). Sinks without a saved state are left alone."""
    if not states:
        return
    if isinstance(states, Mapping):
        pairs = [(sink, states[key]) for key, sink in zip(state_keys(sinks), sinks) if key in states]
    else:
        pairs = list(zip(sinks, states))
    for sink, state in pairs:
        if state is not None:
            sink.load_state_dict(dict(state))

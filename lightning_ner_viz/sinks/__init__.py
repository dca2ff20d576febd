"""Where the clouds go. Each backend is one module; all share :class:`Sink`.

The sink classes are imported on first use, so importing :mod:`lightning_ner_viz.sinks.registry`
(the command line's ``--help``) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_ner_viz.sinks.base import Sink
    from lightning_ner_viz.sinks.html import HtmlSink
    from lightning_ner_viz.sinks.rerun import RerunSink
    from lightning_ner_viz.sinks.tensorboard import TensorBoardSink
    from lightning_ner_viz.sinks.wandb import WandbSink

__all__ = ["HtmlSink", "RerunSink", "Sink", "TensorBoardSink", "WandbSink"]

_MODULE_OF = {"Sink": "base", "HtmlSink": "html", "RerunSink": "rerun", "TensorBoardSink": "tensorboard",
              "WandbSink": "wandb"}


def __getattr__(name: str) -> Any:
    """Import a sink class on first access (PEP 562)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

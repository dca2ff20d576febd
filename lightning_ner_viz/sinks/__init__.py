"""Where the clouds go. Each backend is one module; all share :class:`Sink`."""

from lightning_ner_viz.sinks.base import Sink
from lightning_ner_viz.sinks.html import HtmlSink
from lightning_ner_viz.sinks.rerun import RerunSink
from lightning_ner_viz.sinks.tensorboard import TensorBoardSink
from lightning_ner_viz.sinks.wandb import WandbSink

__all__ = ["HtmlSink", "RerunSink", "Sink", "TensorBoardSink", "WandbSink"]

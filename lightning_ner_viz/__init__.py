"""lightning-ner-viz: watch a token-classification model's embeddings evolve during fine-tuning.

Public names only. They are imported on first use, so ``import lightning_ner_viz`` (and the
command line's ``--help``) imports neither torch nor Lightning, nor any optional dependency.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from lightning_ner_viz._warnings import NerVizWarning

if TYPE_CHECKING:
    from lightning_ner_viz.callback import EmbeddingDriftCallback
    from lightning_ner_viz.notebook import show
    from lightning_ner_viz.snapshot import Snapshot
    from lightning_ner_viz.store import load_snapshots

__all__ = ["EmbeddingDriftCallback", "NerVizWarning", "Snapshot", "load_snapshots", "show"]

try:
    __version__ = version("lightning-ner-viz")  # the one source: pyproject.toml
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

_LAZY = {
    "EmbeddingDriftCallback": "lightning_ner_viz.callback",
    "Snapshot": "lightning_ner_viz.snapshot",
    "load_snapshots": "lightning_ner_viz.store",
    "show": "lightning_ner_viz.notebook",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightning_ner_viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAZY))

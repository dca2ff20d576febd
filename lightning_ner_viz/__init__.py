"""lightning-ner-viz: watch a token-classification model's embeddings evolve during fine-tuning.

Public names only. Importing this package imports no optional dependency and never warns.
"""

from lightning_ner_viz.callback import EmbeddingDriftCallback
from lightning_ner_viz.snapshot import Snapshot, load_snapshots

__all__ = ["EmbeddingDriftCallback", "Snapshot", "load_snapshots"]
__version__ = "0.1.0"

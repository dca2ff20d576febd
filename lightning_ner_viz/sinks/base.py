"""The interface every sink implements: one file per backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl


class Sink(ABC):
    """Receives one epoch at a time: the snapshot, its projected coordinates and metrics.

    Sinks open files and connections lazily, on the first :meth:`log_epoch`, so a
    sink can be pickled (``ddp_spawn`` pickles callbacks) before ``fit``. They are
    only used on rank zero.
    """

    def setup(self, trainer: pl.Trainer | None) -> None:  # noqa: B027 - optional hook
        """Called once on rank zero before the first epoch, with the Trainer if there is one."""

    @abstractmethod
    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Log one epoch.

        Args:
            snapshot: the epoch's tokens.
            coords: view name to an array of shape (n_tokens, n_components).
            metrics: scalar name to value, e.g. ``hidden/cka_prev``.
        """

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Log a view whose rows are not tokens (``entities``, ``cls``): ``coords`` of shape (n_rows, n_components).

        Called right after :meth:`log_epoch` of the same epoch, once per group in
        ``snapshot.groups``. Sinks without such pictures ignore it; the group's metrics
        (``entities/...``) already came with ``log_epoch``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release files or connections."""

    def state_dict(self) -> dict[str, Any]:
        """Plain values needed to continue the same recording/run after a resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

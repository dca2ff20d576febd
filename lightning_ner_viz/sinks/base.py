"""The interface every sink implements (one file per backend), and the path helpers they share."""

from __future__ import annotations

import os
import socket
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lightning_ner_viz.store import DEFAULT_SUBDIR

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import numpy as np

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis
    from lightning_ner_viz.snapshot import Snapshot

T = TypeVar("T")


class Sink(ABC):
    """Receives one epoch at a time: the snapshot, its projected coordinates and metrics.

    Sinks open files and connections lazily, on the first :meth:`log_epoch`, so a
    sink can be pickled (``ddp_spawn`` pickles callbacks) before ``fit``. They are
    only used on rank zero.
    """

    warm_imports: tuple[str, ...] = ()
    """Modules the first :meth:`log_epoch` would import (e.g. an optional dependency): the rendering thread imports
    them at ``setup``, while the model trains, so the first picture does not wait for them."""

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None = None) -> None:  # noqa: B027 - optional hook
        """Called once on rank zero before the first epoch.

        Args:
            trainer: the Trainer, if there is one.
            save_dir: the callback's snapshot root. Default outputs and relative paths
                resolve under it (``None``: under ``<default_root_dir>/ner_viz``).
        """

    @property
    def location(self) -> str | None:
        """Where this sink writes (a file, a directory or a URL), once known; ``None`` otherwise."""
        return None

    @property
    def output_path(self) -> Path | None:
        """The file or directory this sink writes and no other writer may share (``None``: nothing exclusive)."""
        return None

    def check_target(self) -> None:  # noqa: B027 - optional hook
        """Called on rank zero after :meth:`setup`, before training: check that the target is usable
        (a writable directory, a viewer that listens), without writing any output yet.

        Raises:
            SinkTargetError: saying what is wrong and what to change.
        """

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

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:  # noqa: B027 - optional hook
        """Show the snapshot's analyses (called after :meth:`log_epoch` and its groups): the full-set confusion
        matrix and span errors on ``snapshot``, the error geometry, class similarity and sub-clusters in
        ``analysis`` (see :mod:`lightning_ner_viz.analysis.epoch_analysis`)."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything logged so far readable (on disk, or sent), keeping the sink open for more
        (after ``trainer.validate()``, before a following ``fit``)."""

    @property
    def outlives_fit(self) -> bool:
        """Whether this sink can take epochs after ``fit`` returned; ``False`` (e.g. a writer Lightning closes at the
        end of ``fit``) makes ``fit`` wait for its last pictures."""
        return True

    def on_detached(self, wait: Callable[[], None]) -> None:  # noqa: B027 - optional hook
        """``fit`` returned before this sink got its last epochs (a detached end of ``fit``); ``wait`` blocks until it
        has them and is closed. A sink whose target the user may close right after ``fit`` (a W&B run) makes that
        close call ``wait`` first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release files or connections."""

    def state_dict(self) -> dict[str, Any]:
        """Plain values needed to continue the same recording/run after a resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SinkTargetError(OSError):
    """A sink's target cannot be used (an unwritable path, no viewer listening): raised at setup, before training."""


def check_writable_dir(directory: Path, what: str) -> None:
    """Create ``directory`` if needed and write and remove a temporary file in it.

    Raises:
        SinkTargetError: naming ``what`` writes there, the directory and the operating system's reason.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".ner-viz-check-"):
            pass
    except OSError as err:
        raise SinkTargetError(
            f"{what} cannot write into {directory} ({err.strerror or err}); choose a writable path."
        ) from err


def check_writable_file(path: Path, what: str) -> None:
    """Check that the file ``path`` can be written: not a directory, in a writable directory.

    Raises:
        SinkTargetError: saying which of these fails.
    """
    if path.is_dir():
        raise SinkTargetError(f"{what} writes the file {path}, but that is a directory; give a file name.")
    if path.exists() and not os.access(path, os.W_OK):
        raise SinkTargetError(f"{what} cannot overwrite {path} (not writable); choose another path.")
    check_writable_dir(path.parent, what)


def check_listening(host: str, port: int, what: str, timeout: float = 2.0) -> None:
    """Check that something accepts TCP connections at ``host:port`` (within ``timeout`` seconds).

    Raises:
        SinkTargetError: saying nothing listens there and how to start a viewer.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise SinkTargetError(
            f"{what} streams to {host}:{port}, but nothing listens there ({err.strerror or err}). Start the "
            f"viewer first (`rerun --port {port}`), or write a file instead (`RerunSink(path=...)`)."
        ) from err


def output_root(trainer: pl.Trainer | None, save_dir: Path | str | None) -> Path | None:
    """The directory a sink's outputs go under: ``save_dir``, else ``<default_root_dir>/ner_viz``, else ``None``."""
    if save_dir is not None:
        return Path(save_dir)
    if trainer is not None:
        return Path(trainer.default_root_dir) / DEFAULT_SUBDIR
    return None


def resolve_under(path: Path, root: Path | None) -> Path:
    """``path`` itself when absolute or without a ``root``; else ``root / path``."""
    return path if root is None or path.is_absolute() else root / path


def renamed_keyword(owner: str, old: str, new: str, old_value: T | None, new_value: T, default: T) -> T:
    """The value of a keyword renamed from ``old`` to ``new``; warns when the caller used ``old``.

    Raises:
        TypeError: when both keywords were given.
    """
    if old_value is None:
        return new_value
    if new_value != default:
        raise TypeError(f"{owner}: pass `{new}=` only; `{old}=` is its deprecated name.")
    warnings.warn(f"{owner}({old}=...) is deprecated; use `{new}=` instead.", DeprecationWarning, stacklevel=3)
    return old_value


def renamed_attribute(owner: Any, old: str, new: str) -> Any:
    """Read the attribute ``new`` for its deprecated name ``old``, with a :class:`DeprecationWarning`."""
    warnings.warn(f"{type(owner).__name__}.{old} is deprecated; read `.{new}` instead.", DeprecationWarning,
                  stacklevel=3)
    return getattr(owner, new)

"""The one place that knows the disk layout: ``<root>/epoch=NNNN/`` snapshots and their render state."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_ner_viz._warnings import warn

if TYPE_CHECKING:
    from lightning_ner_viz.snapshot import Snapshot

DEFAULT_SUBDIR = "ner_viz"
"""The snapshot root under the Trainer's ``default_root_dir`` when the callback is given no ``save_dir``."""

RENDER_STATE = "render_state.json"
"""Written into a snapshot's directory once every sink has it: the frames' state after that epoch."""

_PREFIX = "epoch="


def snapshot_dir_name(epoch: int) -> str:
    """The directory name of an epoch's snapshot, e.g. ``epoch=0003``."""
    return f"{_PREFIX}{epoch:04d}"


def epoch_of(directory: str | os.PathLike[str]) -> int | None:
    """The epoch an ``epoch=NNNN`` directory holds, or ``None`` for any other name."""
    name = Path(directory).name
    if not name.startswith(_PREFIX) or not name[len(_PREFIX):].isdigit():
        return None
    return int(name[len(_PREFIX):])


class SnapshotStore:
    """Saved snapshots under ``root``, one ``epoch=NNNN`` directory per epoch.

    Args:
        root: the directory that holds the epoch directories (e.g. ``<default_root_dir>/ner_viz``).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def directory(self, epoch: int) -> Path:
        """Where the snapshot of ``epoch`` is (or would be) saved."""
        return self.root / snapshot_dir_name(epoch)

    def epochs(self) -> list[int]:
        """The epochs with a snapshot directory, in order."""
        if not self.root.is_dir():
            return []
        found = (epoch_of(p) for p in self.root.iterdir() if p.is_dir())
        return sorted(e for e in found if e is not None)

    def has(self, epoch: int) -> bool:
        """Whether ``epoch`` has a snapshot directory."""
        return self.directory(epoch).is_dir()

    def save(self, snapshot: Snapshot) -> Path:
        """Write ``snapshot`` atomically into its epoch's directory."""
        return snapshot.save(self.directory(snapshot.epoch))

    def load(self, epoch: int) -> Snapshot:
        """Read the snapshot of ``epoch``."""
        from lightning_ner_viz.snapshot import Snapshot

        return Snapshot.load(self.directory(epoch))

    def load_all(self, *, strict: bool = False) -> list[Snapshot]:
        """Every snapshot under the root, sorted by epoch.

        A damaged epoch (see :meth:`Snapshot.load`) is skipped with one warning naming its
        directory and the reason, and the others are loaded.

        Args:
            strict: raise the damaged epoch's ``ValueError`` instead of skipping it.

        Raises:
            ValueError: when the root holds no snapshot, when every snapshot is damaged, or,
                with ``strict``, when any is.
        """
        epochs = self.epochs()
        if not epochs:
            raise ValueError(f"No snapshots (epoch=NNNN directories) under {self.root}.")
        loaded: list[Snapshot] = []
        damaged: list[tuple[Path, ValueError]] = []
        for epoch in epochs:
            try:
                loaded.append(self.load(epoch))
            except ValueError as err:
                if strict:
                    raise
                damaged.append((self.directory(epoch), err))
        if not loaded:
            reasons = " ".join(str(err) for _, err in damaged)
            raise ValueError(f"Every snapshot under {self.root} is damaged; none can be loaded. {reasons}")
        for directory, err in damaged:
            warn(f"Skipping the snapshot in {directory}: {err}")
        return loaded

    def write_render_state(self, epoch: int, state: dict[str, Any]) -> None:
        """Record that a sink logged ``epoch``, with the frames' state after it (atomic)."""
        path = self.directory(epoch) / RENDER_STATE
        if not path.parent.is_dir():
            return
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"epoch": epoch, "state": state}))
            os.replace(tmp, path)
        except BaseException as err:  # a full disk, a file size limit, an interrupt: never leave the partial file
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not isinstance(err, OSError):
                raise
            warn(f"Could not write {path} ({err}); a resumed run may render epoch {epoch} again.")

    def read_render_state(self, epoch: int) -> dict[str, Any] | None:
        """The frames' state saved after ``epoch`` was rendered, or ``None`` if it was not."""
        try:
            return json.loads((self.directory(epoch) / RENDER_STATE).read_text())["state"]
        except (OSError, ValueError, KeyError):
            return None


def load_snapshots(root: str | os.PathLike[str], *, strict: bool = False) -> list[Snapshot]:
    """Load every ``epoch=NNNN`` snapshot under ``root``, sorted by epoch.

    A damaged epoch is skipped with a warning naming its directory and why; ``strict=True``
    raises its ``ValueError`` instead.

    Raises:
        ValueError: when ``root`` holds no snapshot, when every snapshot is damaged, or,
            with ``strict``, when any is.
    """
    return SnapshotStore(root).load_all(strict=strict)


def resolve_snapshot_root(directory: str | os.PathLike[str]) -> SnapshotStore:
    """The store of a user-given directory: the snapshot root itself or the run directory above it.

    Refuses epoch entries that link outside the directory.

    Raises:
        FileNotFoundError: when ``directory`` is not a directory.
        ValueError: when an entry resolves outside it.
    """
    base = Path(directory).expanduser().resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory of snapshots (epoch=NNNN folders).")
    if not SnapshotStore(base).epochs() and (base / "ner_viz").is_dir():
        base = base / "ner_viz"
    store = SnapshotStore(base)
    for epoch in store.epochs():
        resolved = store.directory(epoch).resolve()
        if base not in resolved.parents:
            raise ValueError(f"{store.directory(epoch)} resolves to {resolved}, outside {base}; refusing to follow it.")
    return store

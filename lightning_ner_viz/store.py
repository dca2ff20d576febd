"""The one place that knows the disk layout: one directory per snapshot under the root, and their render state."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.keys import SnapshotKey, parse_key, sorted_keys

if TYPE_CHECKING:
    from lightning_ner_viz.snapshot import Snapshot

DEFAULT_SUBDIR = "ner_viz"
"""The snapshot root under the Trainer's ``default_root_dir`` when the callback is given no ``save_dir``."""

RENDER_STATE = "render_state.json"
"""Written into a snapshot's directory once every sink has it: the frames' state after that epoch."""



def snapshot_dir_name(epoch: int, step: int = -1) -> str:
    """The directory name of a fit epoch's snapshot, e.g. ``epoch=0003-step=0000120`` (``epoch=0003`` without a step)."""
    return SnapshotKey("fit", epoch, step).name


def epoch_of(directory: str | os.PathLike[str]) -> int | None:
    """The epoch a fit snapshot's directory (``epoch=0003-step=...``) holds, or ``None`` for any other name."""
    key = parse_key(Path(directory).name)
    return key.epoch if key is not None and key.stage == "fit" else None


class SnapshotStore:
    """Saved snapshots under ``root``, one directory per captured validation (see :mod:`lightning_ner_viz.keys`).

    Args:
        root: the directory that holds the snapshot directories (e.g. ``<default_root_dir>/ner_viz``).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def directory(self, name: str) -> Path:
        """Where the snapshot called ``name`` (e.g. ``epoch=0003-step=0000120``) is, or would be, saved."""
        return self.root / name

    def keys(self) -> list[SnapshotKey]:
        """The keys of every snapshot directory, in the order they were captured (see :func:`sorted_keys`)."""
        if not self.root.is_dir():
            return []
        found = (parse_key(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted_keys([k for k in found if k is not None])

    def names(self) -> list[str]:
        """The snapshot directory names, in the order they were captured."""
        return [k.name for k in self.keys()]

    def epochs(self) -> list[int]:
        """The fit epochs with a snapshot, in order (an epoch validated several times is listed once)."""
        return sorted({k.epoch for k in self.keys() if k.stage == "fit"})

    def has(self, name: str) -> bool:
        """Whether the snapshot ``name`` has a directory."""
        return self.directory(name).is_dir()

    def save(self, snapshot: Snapshot) -> Path:
        """Write ``snapshot`` atomically into its own directory (``snapshot.key.name``)."""
        return snapshot.save(self.directory(snapshot.key.name))

    def load(self, name: str) -> Snapshot:
        """Read the snapshot called ``name``."""
        from lightning_ner_viz.snapshot import Snapshot

        return Snapshot.load(self.directory(name))

    def load_all(self, *, strict: bool = False) -> list[Snapshot]:
        """Every snapshot under the root, in the order they were captured.

        A damaged one (see :meth:`Snapshot.load`) is skipped with one warning naming its
        directory and the reason, and the others are loaded.

        Args:
            strict: raise the damaged snapshot's ``ValueError`` instead of skipping it.

        Raises:
            ValueError: when the root holds no snapshot, when every snapshot is damaged, or,
                with ``strict``, when any is.
        """
        names = self.names()
        if not names:
            raise ValueError(f"No snapshots (epoch=NNNN-step=NNNNNNN or validate=NN-step=NNNNNNN directories) "
                             f"under {self.root}.")
        loaded: list[Snapshot] = []
        damaged: list[tuple[Path, ValueError]] = []
        for name in names:
            try:
                loaded.append(self.load(name))
            except ValueError as err:
                if strict:
                    raise
                damaged.append((self.directory(name), err))
        if not loaded:
            reasons = " ".join(str(err) for _, err in damaged)
            raise ValueError(f"Every snapshot under {self.root} is damaged; none can be loaded. {reasons}")
        for directory, err in damaged:
            warn(f"Skipping the snapshot in {directory}: {err}")
        return loaded

    def write_render_state(self, name: str, state: dict[str, Any]) -> None:
        """Record that a sink logged the snapshot ``name``, with the frames' state after it (atomic)."""
        path = self.directory(name) / RENDER_STATE
        if not path.parent.is_dir():
            return
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"name": name, "state": state}))
            os.replace(tmp, path)
        except BaseException as err:  # a full disk, a file size limit, an interrupt: never leave the partial file
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not isinstance(err, OSError):
                raise
            warn(f"Could not write {path} ({err}); a resumed run may render {name} again.")

    def read_render_state(self, name: str) -> dict[str, Any] | None:
        """The frames' state saved after the snapshot ``name`` was rendered, or ``None`` if it was not."""
        try:
            return json.loads((self.directory(name) / RENDER_STATE).read_text())["state"]
        except (OSError, ValueError, KeyError):
            return None


def load_snapshots(root: str | os.PathLike[str], *, strict: bool = False) -> list[Snapshot]:
    """Load every snapshot under ``root``, in the order they were captured (see :mod:`lightning_ner_viz.keys`).

    A damaged snapshot is skipped with a warning naming its directory and why; ``strict=True``
    raises its ``ValueError`` instead.

    Raises:
        ValueError: when ``root`` holds no snapshot, when every snapshot is damaged, or,
            with ``strict``, when any is.
    """
    return SnapshotStore(root).load_all(strict=strict)


def resolve_snapshot_root(directory: str | os.PathLike[str]) -> SnapshotStore:
    """The store of a user-given directory: the snapshot root itself or the run directory above it.

    Refuses snapshot entries that link outside the directory.

    Raises:
        FileNotFoundError: when ``directory`` is not a directory.
        ValueError: when an entry resolves outside it.
    """
    base = Path(directory).expanduser().resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory of snapshots (epoch=NNNN-step=NNNNNNN folders).")
    if not SnapshotStore(base).names() and (base / "ner_viz").is_dir():
        base = base / "ner_viz"
    store = SnapshotStore(base)
    for name in store.names():
        resolved = store.directory(name).resolve()
        if base not in resolved.parents:
            raise ValueError(f"{store.directory(name)} resolves to {resolved}, outside {base}; refusing to follow it.")
    return store

"""The one place that knows the disk layout: one directory per snapshot under the root, the checks of a
snapshot's files (each failure a ``ValueError`` naming the file), and the render state."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.keys import STAGES, SnapshotKey, parse_key, sorted_keys

if TYPE_CHECKING:
    import numpy as np

    from lightning_ner_viz.snapshot import Snapshot

DEFAULT_SUBDIR = "ner_viz"
"""The snapshot root under the Trainer's ``default_root_dir`` when the callback is given no ``save_dir``."""

LABEL_PROBS_FILE = "label_probs.npy"
"""A snapshot's full label-probability rows (token dynamics); only the newest snapshot of a stage keeps them."""

RENDER_STATE = "render_state.json"
"""Written into a snapshot's directory once every sink has it: the frames' state after that epoch."""



def snapshot_dir_name(epoch: int, step: int = -1) -> str:
    """The directory name of a fit epoch's snapshot, e.g. ``epoch=0003-step=0000120`` (``epoch=0003`` without a step)."""
    return SnapshotKey("fit", epoch, step).name


def epoch_of(directory: str | os.PathLike[str]) -> int | None:
    """The epoch a fit snapshot's directory (``epoch=0003-step=...``) holds, or ``None`` for any other name."""
    key = parse_key(Path(directory).name)
    return key.epoch if key is not None and key.stage == "fit" else None


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A temporary sibling of ``target`` to write into, renamed over ``target`` when the block ends.

    A crash never leaves a half-written directory under the final name; on an error the sibling is removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp.chmod(0o755)
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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

    def drop_label_probs(self, before: SnapshotKey) -> None:
        """Delete the label-probability rows (:data:`LABEL_PROBS_FILE`) of the snapshots of ``before``'s stage
        captured before it: once its label issues are ranked, only the newest rows are kept."""
        for earlier in self.keys():
            if earlier.stage == before.stage and earlier.order() < before.order():
                with contextlib.suppress(OSError):
                    (self.directory(earlier.name) / LABEL_PROBS_FILE).unlink(missing_ok=True)

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


# ---- a snapshot's files: what Snapshot.save writes and Snapshot.load accepts ----------------------

FORMAT_VERSION = 1
"""The snapshot format this version writes and reads."""

INT_FIELDS = ("token_id", "sentence_id", "position", "gold", "pred")
"""The per-token integer arrays of ``arrays.npz``."""


def damaged(file: Path, reason: str) -> ValueError:
    return ValueError(
        f"The snapshot file {file} is damaged ({reason}). "
        f"Delete {file.parent}, or re-run validation to write it again."
    )


_META_LISTS = ("token", "word", "label_names", "views")


def check_meta(meta: Any, path: Path) -> None:
    """Refuse a ``meta.json`` that is not the object :meth:`Snapshot.save` writes."""
    file = path / "meta.json"
    if not isinstance(meta, dict):
        raise damaged(file, f"it holds a JSON {type(meta).__name__}, not an object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"The snapshot in {path} is not one this version reads (format {meta.get('format_version')!r} "
            f"in {file}, expected {FORMAT_VERSION}). Read it with the version that wrote it, or delete it."
        )
    missing = [k for k in ("epoch", "step", *_META_LISTS, "sentences") if k not in meta]
    if missing:
        raise damaged(file, f"keys {missing} are missing")
    wrong = [k for k in ("epoch", "step", "run") if k in meta and (not isinstance(meta[k], int) or isinstance(meta[k], bool))]
    if meta.get("stage", "fit") not in STAGES:
        wrong.append("stage")
    wrong += [k for k in _META_LISTS if not isinstance(meta[k], list) or not all(isinstance(x, str) for x in meta[k])]
    sentences = meta["sentences"]
    if not isinstance(sentences, dict) or not all(
        isinstance(v, str) and k.lstrip("-").isdigit() for k, v in sentences.items()
    ):
        wrong.append("sentences")
    if not isinstance(meta.get("stats", {}), dict):
        wrong.append("stats")
    if wrong:
        raise damaged(file, f"keys {wrong} have the wrong type (epoch, step, run: int; stage: {' or '.join(STAGES)}; "
                      f"{', '.join(_META_LISTS)}: "
                      "lists of strings; sentences: sentence id to text; stats: an object)")


def check_arrays(arrays: dict[str, np.ndarray], views: list[str], path: Path) -> None:
    """Refuse an ``arrays.npz`` that lacks a field or a view meta.json names, or holds one of the wrong shape."""
    missing = [k for k in INT_FIELDS if k not in arrays] + [f"view.{v}" for v in views if f"view.{v}" not in arrays]
    if missing:
        raise damaged(path / "arrays.npz", f"arrays {missing} are missing")
    shapes = {k: arrays[k].ndim for k in INT_FIELDS if arrays[k].ndim != 1}
    shapes.update({f"view.{v}": arrays[f"view.{v}"].ndim for v in views if arrays[f"view.{v}"].ndim != 2})
    if shapes:
        raise damaged(path / "arrays.npz", f"arrays of the wrong number of dimensions {shapes} "
                       f"(fields: 1, views: 2)")

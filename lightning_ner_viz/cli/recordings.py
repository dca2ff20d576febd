"""What ``replay`` is given (snapshots or ``.rrd`` files); checking and writing several files as one recording."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RRD = ".rrd"


@dataclass(frozen=True)
class ReplayInputs:
    """A snapshot root to build a recording from, or ``.rrd`` files to open (exactly one of the two).

    Attributes:
        snapshot_root: the directory of ``epoch=NNNN`` snapshots, or ``None``.
        recordings: the ``.rrd`` files, resolved, in order (``embeddings.rrd``, ``embeddings-1.rrd``, ...).
    """

    snapshot_root: Path | None = None
    recordings: tuple[Path, ...] = ()


def find_inputs(paths: Sequence[str | os.PathLike[str]]) -> ReplayInputs:
    """Classify what the user passed: one folder, or ``.rrd`` files.

    A folder with ``epoch=NNNN`` snapshots (or a run directory above them) means "build a
    recording from the snapshots"; a folder with ``.rrd`` files and no snapshots means
    "replay those recordings".

    Raises:
        ValueError: for no path, several paths that are not all ``.rrd`` files, or a folder
            with neither snapshots nor recordings.
        FileNotFoundError: for a missing file or folder.
    """
    given = [Path(p).expanduser() for p in paths]
    if not given:
        raise ValueError("Pass a .rrd file, several of them, or a folder of snapshots or recordings.")
    if len(given) == 1 and given[0].suffix.lower() != RRD:
        return _folder_inputs(given[0])
    for path in given:
        if path.suffix.lower() != RRD:
            raise ValueError(f"{path} is not a .rrd file; pass one folder, or .rrd files only.")
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist or is not a file; check the path.")
    return ReplayInputs(recordings=tuple(dict.fromkeys(path.resolve() for path in given)))


def _folder_inputs(folder: Path) -> ReplayInputs:
    from lightning_ner_viz.store import resolve_snapshot_root

    store = resolve_snapshot_root(folder)
    if store.names():
        return ReplayInputs(snapshot_root=store.root)
    found = recordings_in(store.root)
    if not found:
        raise ValueError(f"{folder} holds neither snapshots (epoch=NNNN-step=NNNNNNN folders) nor .rrd recordings; "
                         "pass a run directory, its ner_viz folder, or .rrd files.")
    return ReplayInputs(recordings=found)


def recordings_in(folder: Path) -> tuple[Path, ...]:
    """The ``.rrd`` files directly in ``folder``, each before its continuations (``x.rrd``, ``x-1.rrd``, ...)."""
    files = [path.resolve() for path in folder.iterdir() if path.suffix.lower() == RRD and path.is_file()]
    return tuple(sorted(files, key=_continuation_key))


def _continuation_key(path: Path) -> tuple[str, int, str]:
    match = re.fullmatch(r"(.*?)-(\d+)", path.stem)
    return (match[1], int(match[2]), path.name) if match else (path.stem, 0, path.name)


def check_one_recording(files: Sequence[Path]) -> None:
    """Check that ``files`` are readable Rerun recordings that share one application id and recording id.

    Raises:
        ValueError: for an unreadable file, a file without a recording, or files of several recordings.
        ModuleNotFoundError: when rerun-sdk is not installed.
    """
    from lightning_ner_viz._imports import require

    require("rerun")
    from rerun.chunk import RrdReader

    stores: dict[tuple[str, str], list[str]] = {}
    for path in files:
        try:
            entries = RrdReader(str(path)).recordings()
        except (RuntimeError, ValueError, OSError) as err:
            raise ValueError(f"{path} is not a readable Rerun recording ({err}); leave it out.") from None
        if not entries:
            raise ValueError(f"{path} holds no recording (only a layout); leave it out.")
        for entry in entries:
            stores.setdefault((str(entry.application_id), str(entry.recording_id)), []).append(path.name)
    if len(stores) > 1:
        found = "; ".join(f"{app}/{rec}: {', '.join(names)}" for (app, rec), names in stores.items())
        raise ValueError(f"These files hold {len(stores)} different recordings ({found}); pass the files of one "
                         "run (embeddings.rrd and its continuations embeddings-1.rrd, ...).")


def write_recording(files: Sequence[Path], out: Path, env: dict[str, str] | None = None, verbose: bool = False) -> None:
    """Write ``files`` to ``out`` as one recording: a copy of one file, or Rerun's ``rrd merge`` of several.

    The file appears under its name only once complete.

    Args:
        files: ``.rrd`` files of one recording (see :func:`check_one_recording`).
        out: the ``.rrd`` file to write; none of ``files``.
        env: the environment of ``rerun rrd merge`` (default: this process's).
        verbose: let ``rerun rrd merge`` print its progress.

    Raises:
        ValueError: when ``out`` is one of ``files``, or the merge fails.
    """
    out = out.resolve()
    if out in {path.resolve() for path in files}:
        raise ValueError(f"--save {out} is one of the recordings to replay; save to another file.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial{RRD}")
    try:
        if len(files) == 1:
            shutil.copyfile(files[0], partial)
        else:
            _merge(files, partial, env, verbose)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _merge(files: Sequence[Path], out: Path, env: dict[str, str] | None, verbose: bool) -> None:
    from lightning_ner_viz.cli.viewer import rerun_executable

    command = [rerun_executable(), "rrd", "merge", "-o", str(out), *map(str, files)]
    done = subprocess.run(command, env=env, capture_output=not verbose, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise ValueError(f"`rerun rrd merge` could not merge {len(files)} recordings: {detail[0]}")

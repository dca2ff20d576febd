"""Output names of ``render --out`` and ``replay --save``: the extension each sink writes, added or checked."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_OUT: dict[str, str] = {
    "rerun": "render.rrd", "html": "render.html", "wandb": "wandb-render", "tensorboard": "tensorboard-render",
}
"""The output's name next to the snapshots, by sink, when ``--out`` is not given."""

FILE_SUFFIXES: dict[str, tuple[str, ...]] = {"rerun": (".rrd",), "html": (".html", ".htm")}
"""The extensions a file-writing sink accepts, the first one added to a name without any."""


def output_path(out: str | os.PathLike[str], sink: str, option: str = "--out") -> Path:
    """Where ``sink`` writes when the user names ``out``.

    A file sink (rerun, html) writing into an existing directory writes its default name
    there; a name without an extension gets the sink's; the directory sinks (wandb,
    tensorboard) take ``out`` as it is.

    Args:
        out: the name the user gave.
        sink: the sink's registry name.
        option: the option's name, for the error message.

    Raises:
        ValueError: when ``out`` ends with another extension than the sink writes.
    """
    path = Path(out).expanduser()
    suffixes = FILE_SUFFIXES.get(sink)
    if suffixes is None:
        return path
    if path.is_dir():
        return path / DEFAULT_OUT[sink]
    if not path.suffix:
        return path.with_name(path.name + suffixes[0])
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {out} does not end with {suffixes[0]}, the extension a {sink} output needs; "
                         f"name it {path.with_name(path.name + suffixes[0])} or {path.with_suffix(suffixes[0])}.")
    return path

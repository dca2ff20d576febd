"""TensorBoard's Embedding Projector files: one tensor per snapshot and view, named by the snapshot.

``SummaryWriter.add_embedding`` names a tensor ``<tag>:<global_step>`` and writes it to
``<global_step>/<tag>/``, so two validations at one step (a ``validate()`` after fit, at the
step of the fit's last validation) would overwrite each other. This module writes the same
files itself, under a unique name::

    <log_dir>/projector_config.pbtxt                          one entry per tensor, in logging order
    <log_dir>/<tag>/<snapshot name>/tensors.tsv, metadata.tsv e.g. ner_viz%2fhidden/epoch=0002-step=0000120/

The tensor is named ``<tag>:<snapshot name>``, e.g. ``ner_viz/hidden:validate=00-step=0000000``.
The projector plugin accepts any tensor name (it looks the name up in the config) and any
relative path inside the log directory; ``/`` in the tag is written ``%2f`` (as
``add_embedding`` does), so a tag cannot leave the log directory, and a snapshot name holds
only ``[a-z0-9=-]``, which every filesystem accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PROJECTOR_CONFIG = "projector_config.pbtxt"


def tensor_name(tag: str, snapshot_name: str) -> str:
    """The projector's name of a snapshot's tensor: ``<tag>:<snapshot name>``."""
    return f"{tag}:{snapshot_name}"


def tensor_dir(tag: str, snapshot_name: str) -> str:
    """The tensor's directory, relative to the log directory: ``<tag with / as %2f>/<snapshot name>``."""
    encoded = tag.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")
    return f"{encoded}/{snapshot_name}"


def add_embedding(writer: Any, tag: str, snapshot_name: str, vectors: np.ndarray,
                  metadata: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Write one tensor with its metadata and list it in the writer's projector config.

    An entry of the same name (the same snapshot, logged again by a resumed fit) is replaced
    in place, so the config lists each tensor once, in the order they were first logged.

    Returns:
        The tensor's name.
    """
    from google.protobuf import text_format
    from lightning.fabric.utilities.cloud_io import get_filesystem
    from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

    log_dir = str(writer.get_logdir()).rstrip("/")
    fs = get_filesystem(log_dir)
    subdir = tensor_dir(tag, snapshot_name)
    fs.makedirs(f"{log_dir}/{subdir}", exist_ok=True)
    matrix = np.asarray(vectors, dtype=np.float32)
    row_format = "\t".join(["%.9g"] * matrix.shape[1])  # 9 digits: a float32 read back is the same float32
    rows = [row_format % tuple(row) for row in matrix.tolist()]
    _write(fs, f"{log_dir}/{subdir}/tensors.tsv", rows)
    _write(fs, f"{log_dir}/{subdir}/metadata.tsv", ["\t".join(r) for r in [header, *metadata]])

    info = EmbeddingInfo(tensor_name=tensor_name(tag, snapshot_name), tensor_path=f"{subdir}/tensors.tsv",
                         metadata_path=f"{subdir}/metadata.tsv")
    info.tensor_shape.extend(matrix.shape)
    if not hasattr(writer, "_projector_config"):  # the attribute add_embedding keeps, so both add to one config
        writer._projector_config = ProjectorConfig()
    config = writer._projector_config
    same = [e for e in config.embeddings if e.tensor_name == info.tensor_name]
    for entry in same:
        entry.CopyFrom(info)
    if not same:
        config.embeddings.add().CopyFrom(info)
    _write(fs, f"{log_dir}/{PROJECTOR_CONFIG}", [text_format.MessageToString(config).rstrip("\n")])
    return info.tensor_name


def _write(fs: Any, path: str, lines: list[str]) -> None:
    with fs.open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


def restore_projector_config(writer: Any) -> None:
    """Seed a fresh writer with the projector config already in its directory.

    The config is kept in memory and the whole file rewritten, so a new writer on an
    existing directory (a resumed fit) would otherwise drop the earlier snapshots from the
    projector.
    """
    if hasattr(writer, "_projector_config") or not hasattr(writer, "get_logdir"):
        return
    from lightning.fabric.utilities.cloud_io import get_filesystem

    log_dir = str(writer.get_logdir())
    fs = get_filesystem(log_dir)
    path = fs.sep.join([log_dir.rstrip(fs.sep), PROJECTOR_CONFIG])
    try:
        if not fs.isfile(path):
            return
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

        with fs.open(path, "r", encoding="utf-8") as f:
            config = text_format.Parse(f.read(), ProjectorConfig())
    except Exception:  # a damaged or foreign file: start a new config, as the writer would
        return
    writer._projector_config = config

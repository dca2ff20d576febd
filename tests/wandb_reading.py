"""Read an offline W&B run back from disk: the ``.wandb`` record log and its media files."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7


def _records(data: bytes) -> list[bytes]:
    """Reassemble LevelDB-log framed records (after the 7-byte ``:W&B`` file header)."""
    out, pending, pos = [], b"", _HEADER
    while pos + _HEADER <= len(data):
        room = _BLOCK - (pos % _BLOCK)
        if room < _HEADER:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if length == 0 and kind == 0:
            pos += room  # zero padding to the block end
            continue
        payload = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:
            out.append(payload)
        elif kind == 2:
            pending = payload
        elif kind == 3:
            pending += payload
        elif kind == 4:
            out.append(pending + payload)
            pending = b""
    return out


def run_dir(root: str | Path) -> Path:
    """The single ``offline-run-*`` directory under ``root`` (searched recursively)."""
    runs = sorted(Path(root).rglob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {root}, found {runs}"
    return runs[0]


def _parsed_records(run: Path, timeout: float = 60.0) -> list[Any]:
    """The run's records, once the file is complete.

    wandb-core writes the file asynchronously, and ``run.finish()`` can return before
    the last records are on disk, so this waits for the final ``exit`` record.
    """
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + timeout
    while True:
        data = next(run.glob("run-*.wandb")).read_bytes()
        assert data.startswith(b":W&B"), "not a .wandb file"
        records = []
        for raw in _records(data):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(raw)
            records.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def history(run: Path) -> list[dict[str, Any]]:
    """Every history row of the run: key -> decoded JSON value."""
    rows = []
    for record in _parsed_records(run):
        if record.WhichOneof("record_type") == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                value = json.loads(item.value_json)
                if item.key or len(item.nested_key) == 1:
                    row[item.key or item.nested_key[0]] = value
                else:  # media: nested_key = [key, field], e.g. ["ner_viz/hidden/table", "path"]
                    *parents, leaf = item.nested_key
                    row.setdefault("/".join(parents), {})[leaf] = value
            rows.append(row)
    return rows

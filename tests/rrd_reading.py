"""Read a Rerun recording back with rerun's own reader, for assertions."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def read_rrd(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Entity path -> rows (one dict of column name -> Python value per logged row)."""
    from rerun.chunk import RrdReader

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in RrdReader(str(path)).stream():
        batch = chunk.to_record_batch()
        keep = [name for name in batch.schema.names if name not in ("log_time", "rerun.controls.RowId")]
        rows[str(chunk.entity_path)].extend(batch.select(keep).to_pylist())
    return dict(rows)

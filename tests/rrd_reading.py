"""Read a Rerun recording back with rerun's own reader, for assertions."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

SKIPPED = ("log_time", "rerun.controls.RowId")


def read_rrd(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Entity path -> rows (one dict of column name -> Python value per logged row).

    A row that only adds hover values (``AnyValues``, no archetype component) to an entity at a time where the entity
    already has a row is merged into that row, as the viewer shows them: the Rerun sink adds the neighbours to a
    cloud's points that way (``neighbours``, ...). Every other row stays its own, so a cloud logged twice at one
    time still shows as two rows.
    """
    from rerun.chunk import RrdReader

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in RrdReader(str(path)).stream():
        batch = chunk.to_record_batch()
        kind = {f.name: (f.metadata or {}) for f in batch.schema}
        index = [n for n, m in kind.items() if m.get(b"rerun:kind") == b"index" and n not in SKIPPED]
        archetype = {n for n, m in kind.items() if b"rerun:archetype" in m}
        keep = [name for name in batch.schema.names if name not in SKIPPED]
        entity = rows[str(chunk.entity_path)]
        for row in batch.select(keep).to_pylist():
            at = {n: row[n] for n in index}
            if not any(row[n] is not None for n in archetype):
                same = [r for r in entity if all(r.get(n) == v for n, v in at.items())]
                if same and at:
                    same[-1].update({k: v for k, v in row.items() if v is not None})
                    continue
            entity.append(row)
    return dict(rows)

"""The fixed-seed demo's fingerprint: tracked token ids, coordinates and recording entity paths.

Recorded before the package was reorganised into stage folders (issue: architecture), so a
test can prove the reorganisation changed no output. Re-record only for an intended change:

    .venv/bin/python tests/golden/demo_fingerprint.py --record
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "demo_fingerprint.json"
DEMO_ARGS = ["--epochs", "2", "--examples", "400", "--max-tokens", "300", "--no-wandb"]
CLOUDS = ("/embeddings/hidden", "/embeddings/emissions", "/embeddings/entities")


def run_demo(out: Path) -> None:
    """Run the demo CLI in a fresh process (it seeds everything itself)."""
    script = Path(sys.executable).with_name("lightning-ner-viz")
    done = subprocess.run([str(script), "demo", "--out", str(out), *DEMO_ARGS], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])


def fingerprint(out: Path) -> dict[str, Any]:
    """Entity paths of the recording, and per cloud and epoch the token ids and rounded positions."""
    sys.path.insert(0, str(HERE.parent))
    from rrd_reading import read_rrd

    from lightning_ner_viz import load_snapshots

    rows = read_rrd(out / "embeddings.rrd")
    clouds: dict[str, list[dict[str, Any]]] = {}
    for path in CLOUDS:
        clouds[path] = [
            {"epoch": r["epoch"], "token_id": r.get("token_id"),
             "positions": [[round(float(v), 4) for v in p] for p in r["Points3D:positions"]]}
            for r in rows.get(path, []) if r.get("Points3D:positions") is not None
        ]
    snapshots = load_snapshots(out / "ner_viz")
    return {
        "args": DEMO_ARGS,
        "entity_paths": sorted(rows),
        "tracked_token_ids": {str(s.epoch): s.token_id.tolist() for s in snapshots},
        "clouds": clouds,
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        run_demo(Path(tmp) / "demo")
        found = fingerprint(Path(tmp) / "demo")
    if "--record" in sys.argv:
        RECORDED.write_text(json.dumps(found, separators=(",", ":")) + "\n")
        print(f"recorded {RECORDED}")
    else:
        print(json.dumps({k: (v if k != "clouds" else {c: len(e) for c, e in v.items()}) for k, v in found.items()})[:2000])

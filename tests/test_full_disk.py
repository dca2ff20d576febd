"""A disk that fills while the sinks write: reported once, the sink dropped, training never stalls per epoch.

Real faults, no mocks: a subprocess whose files may not grow past a size limit (``RLIMIT_FSIZE``,
``SIGXFSZ`` ignored), so writes fail with ``EFBIG`` just as they fail with ``ENOSPC`` on a full disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightning_ner_viz import load_snapshots
from lightning_ner_viz.sinks import RerunSink

pytestmark = pytest.mark.serial  # wall-clock bounds: run alone, after the parallel tests (scripts/test.sh)

TESTS = Path(__file__).resolve().parent
LIMIT = 600_000
"""Bytes: every snapshot file (at most 25 kB) fits; the ``.rrd`` (about 500 kB after epoch 0 with its analyses'
heatmaps, 270 kB more per epoch) cannot take epoch 1; the HTML report (4.8 MB, plotly.js inlined) cannot be
written at all."""
EPOCHS = 4


def _leftovers(root: Path) -> list[Path]:
    """Temporary files or directories: ``*.tmp`` (render state, HTML report) and ``.epoch=NNNN.*`` (snapshots)."""
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_a_disk_that_fills_under_the_recording_drops_the_sink_once_and_training_never_stalls_per_epoch(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "import full_disk_helpers; full_disk_helpers.main()", str(tmp_path),
                           "--limit", str(LIMIT), "--epochs", str(EPOCHS)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180, check=False)
    wall = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert "File too large" in done.stderr  # rerun's own log: the fault is real
    result = json.loads(done.stdout.strip().splitlines()[-1])
    messages, at = result["warnings"], dict(zip(result["warnings"], result["warned_at"]))
    rerun = [m for m in messages if "RerunSink" in m]
    assert len(rerun) == 1, messages
    root = tmp_path / "ner_viz"
    for words in ("dropped for the rest of the run", f"kept under {root}", "lightning-ner-viz render", "--sink rerun"):
        assert words in rerun[0], rerun[0]
    html = [m for m in messages if "HtmlSink" in m]
    assert len(html) == 1 and "File too large" in html[0], messages
    # At most one flush timeout (the write that failed: 10.0 s measured), then nothing waits on the dropped
    # sink: fit returned 1.0 s after the warning (closing it). Before, each later epoch waited 10 s and
    # closing 20 s more.
    assert at[rerun[0]] - at[html[0]] < RerunSink.flush_timeout + 3, result
    assert result["fit_seconds"] - at[rerun[0]] < 4, result
    assert wall < 90, wall
    assert result["captured"] == list(range(EPOCHS))
    assert result["logged"][0] == 0 and EPOCHS - 1 not in result["logged"]  # Rerun took epoch 0, then was dropped
    assert [s.epoch for s in load_snapshots(root)] == list(range(EPOCHS))  # every snapshot kept
    assert (tmp_path / "emb.rrd").stat().st_size <= LIMIT and not (tmp_path / "emb.html").exists()
    assert _leftovers(tmp_path) == []


def test_a_render_state_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    (tmp_path / "epoch=0000-step=0000002").mkdir()
    script = textwrap.dedent(f"""
        import resource, signal, warnings
        from lightning_ner_viz.store import SnapshotStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            SnapshotStore({str(tmp_path)!r}).write_render_state("epoch=0000-step=0000002", {{"frame": list(range(2000))}})
        print("\\n".join(str(w.message) for w in record))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Could not write" in done.stdout and "File too large" in done.stdout, done.stdout
    assert sorted(p.name for p in (tmp_path / "epoch=0000-step=0000002").iterdir()) == []  # neither render_state.json nor .tmp

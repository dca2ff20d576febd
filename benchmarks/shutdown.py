"""Issue #12: how long a fit takes to exit after SIGTERM with a rendering backlog, and what it leaves.

Each run is a fresh subprocess (``tests/shutdown_helpers.py``): a tiny BERT tagger, 2 training
batches per epoch, validation on 80 titles, the callback writing a Rerun file and an HTML
report, and a reducer that sleeps ``--delay`` seconds per fit (it is called for 3 clouds per
epoch: hidden, emissions, entities), so rendering is slower than training, as UMAP is on a
busy machine. The script waits for the ``validated N`` line, sends SIGTERM, and measures the
time until the process has exited. It then counts the epochs in the ``.rrd`` (read back with
rerun's reader), the snapshots on disk, and runs the ``lightning-ner-viz render`` command
the warning printed.

Scenarios:

* ``mid-training``: SIGTERM once ``--after`` epochs were validated (Lightning raises
  ``SIGTERMException`` at its next check: ``on_exception``);
* ``end-of-fit``: SIGTERM while ``on_fit_end`` waits for the backlog (Lightning's handler is gone by then);
* ``complete``: no signal: how long training took, and how long the end of ``fit`` waited for the backlog.

``--code DIR`` runs another checkout of the package (e.g. ``git archive HEAD | tar -x -C DIR``),
for a before/after comparison. Usage::

    python benchmarks/shutdown.py --max-pending none --after 12
    python benchmarks/shutdown.py --code /tmp/base --after 12
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS))


def isolated_env(home: Path, code: Path) -> dict[str, str]:
    """Offline W&B, config and caches under ``home``, the package from ``code``."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "WANDB_DIR", "WANDB_CACHE_DIR",
                "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "MPLCONFIGDIR"):
        env[var] = str(home / var.lower())
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=os.pathsep.join([str(TESTS), str(code)]))
    return env


def run(root: Path, *, code: Path, scenario: str, after: int, epochs: int, delay: float, max_pending: str,
        wandb: bool = False, rendered: int = 0, train_batches: int = 2, train_seconds: float = 0.0) -> dict[str, object]:
    """One subprocess fit, SIGTERM as the scenario says; what it took and what it left."""
    env = isolated_env(root / "home", code)
    command = [sys.executable, "-c", "import shutdown_helpers; shutdown_helpers.main()", str(root),
               "--epochs", str(epochs), "--delay", str(delay), "--max-pending", max_pending,
               "--train-batches", str(train_batches), "--train-seconds", str(train_seconds)]
    if wandb:
        command.append("--wandb")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    assert proc.stdout is not None
    validated = -1
    if scenario == "complete":
        out, err = proc.communicate(timeout=1200)
        stamps = dict(re.findall(r"^(validated 0|training done|fit returned) at ([0-9.]+)$", out, flags=re.MULTILINE))
        first, done, returned = (float(stamps[k]) for k in ("validated 0", "training done", "fit returned"))
        return {"scenario": scenario, "exit code": proc.returncode,
                "first validation to end of training (s)": round(done - first, 1),
                "end of fit waiting for the backlog (s)": round(returned - done, 1),
                "first validation to fit returned (s)": round(returned - first, 1),
                "warnings": [line for line in err.splitlines() if "lightning-ner-viz:" in line and "hooked" not in line]}
    for line in proc.stdout:
        if line.startswith("validated "):
            validated = int(line.split()[1])
        if (scenario == "mid-training" and validated >= after) or (scenario == "end-of-fit"
                                                                   and line.startswith("training done")):
            break
    else:
        raise RuntimeError(f"the fit ended before the signal: {proc.wait()}, {proc.stderr.read()[-3000:]}")
    if scenario == "end-of-fit":
        time.sleep(1.0)  # into on_fit_end's wait (Lightning's own SIGTERM handler is gone by then)
    store = root / "ner_viz"
    while len(list(store.glob("epoch=*/render_state.json"))) < rendered and proc.poll() is None:
        time.sleep(0.05)
    rendered_before = len(list(store.glob("epoch=*/render_state.json")))
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    proc.wait(timeout=600)
    seconds = time.monotonic() - sent
    reader.join(timeout=600)  # an orphaned projector child keeps stderr open until it exits
    orphan_seconds = time.monotonic() - sent
    err = errors[0] if errors else ""
    from rerun.chunk import RrdReader

    rrd_epochs = sorted({row for chunk in RrdReader(str(root / "emb.rrd")).stream()
                         if str(chunk.entity_path) == "/embeddings/hidden"
                         for row in chunk.to_record_batch().column("epoch").to_pylist()}
                        ) if (root / "emb.rrd").exists() else "no file (nothing was rendered)"
    snapshots = sorted(int(p.name.split("=")[1]) for p in store.glob("epoch=*") if p.is_dir())
    commands = re.findall(r"^\s+(lightning-ner-viz render .*)$", err, flags=re.MULTILINE)
    result: dict[str, object] = {
        "scenario": scenario, "validated at SIGTERM": validated, "rendered at SIGTERM": rendered_before,
        "exit code": proc.returncode, "SIGTERM to exit (s)": round(seconds, 1),
        "SIGTERM to the last child's exit (s)": round(orphan_seconds, 1), "epochs in .rrd": rrd_epochs,
        "snapshots": snapshots, "html": (root / "emb.html").is_file(), "commands": commands,
        "warnings": [line for line in err.splitlines() if "lightning-ner-viz:" in line and "hooked" not in line],
    }
    if wandb:
        import wandb_reading

        runs = sorted(root.rglob("offline-run-*"))
        if runs:
            records = wandb_reading._parsed_records(runs[0], timeout=5.0)
            closed = any(r.WhichOneof("record_type") == "exit" for r in records)
            logged = sorted(r["ner_viz/epoch"] for r in wandb_reading.history(runs[0]) if "ner_viz/epoch" in r) \
                if closed else "-"
            result["W&B run"] = f"finished (exit record), epochs {logged}" if closed else "no exit record"
        else:
            result["W&B run"] = "none (nothing was logged)"
    if commands:
        words = shlex.split(commands[0])
        words[0] = str(Path(sys.executable).parent / "lightning-ner-viz")
        started = time.monotonic()
        done = subprocess.run(words, check=False, capture_output=True, text=True, env=env, timeout=600, cwd=root)
        result["render command (s)"] = round(time.monotonic() - started, 1)
        result["render command says"] = (done.stdout or done.stderr).strip().splitlines()[-1:]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose package runs (default: this one)")
    parser.add_argument("--scenario", choices=["mid-training", "end-of-fit", "complete"], default="mid-training")
    parser.add_argument("--after", type=int, default=12, help="mid-training: SIGTERM once this epoch was validated")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per reducer fit (3 fits per epoch)")
    parser.add_argument("--max-pending", default="default", help="an integer, none or default")
    parser.add_argument("--wandb", action="store_true", help="also a W&B sink (offline)")
    parser.add_argument("--rendered", type=int, default=0, help="and once this many epochs were rendered")
    parser.add_argument("--train-batches", type=int, default=2, help="training batches per epoch")
    parser.add_argument("--train-seconds", type=float, default=0.0, help="a sleep added to each training epoch")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ner-viz-shutdown-") as tmp:
        result = run(Path(tmp), code=args.code.resolve(), scenario=args.scenario, after=args.after,
                     epochs=args.epochs, delay=args.delay, max_pending=args.max_pending, wandb=args.wandb,
                     rendered=args.rendered, train_batches=args.train_batches, train_seconds=args.train_seconds)
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

"""Run every benchmark and rewrite its tables in docs/performance.md.

    python benchmarks/run_all.py            # the full run (about 40 min on 2 cores, plus 6.6 min for capture_scale.py); rewrites the doc
    python benchmarks/run_all.py --quick    # a smoke run (< 7 min); prints, leaves the doc alone
    python benchmarks/run_all.py --quick --write   # ... and writes its (small) tables anyway

Each script runs in its own fresh process and prints markdown blocks between
``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``. This script copies each block into
docs/performance.md between ``<!-- BEGIN NAME -->`` and ``<!-- END NAME -->``, and the
machine description (nproc, CPU, versions, load, date) between ``<!-- BEGIN machine -->``
and ``<!-- END machine -->``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

HERE = Path(__file__).resolve().parent
DOC = C.REPO / "docs" / "performance.md"
SCRIPTS = ("overhead.py", "contention.py", "reduction.py", "memory.py", "analysis_budget.py", "label_issues.py",
           "train_dynamics.py", "compiled_cache.py", "time_to_picture.py", "demo_ratio.py", "layer_cost.py",
           "report_scale.py", "capture_scale.py", "kernel_map.py")
BLOCK = re.compile(r"<!-- table:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /table:(?P=name) -->", re.S)


def run(script: str, quick: bool, threads: int | None) -> tuple[dict[str, str], float, str, str]:
    cmd = [sys.executable, str(HERE / script)]
    if quick:
        cmd.append("--quick")
    if threads:
        cmd += ["--threads", str(threads)]
    load_before = C.loadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=C.REPO)
    out_lines = []
    assert proc.stdout is not None and proc.stderr is not None
    import threading

    def relay() -> None:  # progress lines only; library chatter is dropped
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("  ") or line.split(":")[0] in ("overhead", "reduction", "memory", "label_issues", "layer_cost",
                                                               "capture_scale", "kernel_map", "Traceback"):
                sys.stderr.write(line)
                sys.stderr.flush()

    t = threading.Thread(target=relay, daemon=True)
    t.start()
    for line in proc.stdout:
        out_lines.append(line)
        sys.stdout.write(line)
        sys.stdout.flush()
    proc.wait()
    t.join(timeout=5)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed with exit code {proc.returncode}")
    blocks = {m["name"]: m["body"].rstrip() + "\n" for m in BLOCK.finditer("".join(out_lines))}
    return blocks, seconds, load_before, C.loadavg()


def replace(doc: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {re.escape(name)} -->\n).*?(<!-- END {re.escape(name)} -->)", re.S)
    if not pattern.search(doc):
        print(f"warning: docs/performance.md has no markers for {name!r}; appending it", file=sys.stderr)
        return doc.rstrip() + f"\n\n<!-- BEGIN {name} -->\n{body}<!-- END {name} -->\n"
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes; does not write the doc unless --write")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None,
                        help="rewrite docs/performance.md (default: yes for the full run, no for --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every script (default: all cores)")
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, default=None, help="run only these scripts")
    args = parser.parse_args()
    write = (not args.quick) if args.write is None else args.write
    C.set_threads(args.threads)
    info = C.machine_info()
    start = time.perf_counter()
    blocks: dict[str, str] = {}
    timings = []
    scripts = args.only or SCRIPTS
    for i, script in enumerate(scripts):
        print(f"\n## {script} (load {C.loadavg()})\n", flush=True)
        got, seconds, load_before, load_after = run(script, args.quick, args.threads)
        blocks.update(got)
        timings.append((script, seconds, load_before, load_after))
        if write and i < len(scripts) - 1:  # after every script, so an interrupted run keeps what it measured
            write_doc(info, args, blocks, timings, time.perf_counter() - start, done=False, persist=True)
    write_doc(info, args, blocks, timings, time.perf_counter() - start, done=True, persist=write)


def write_doc(info: dict[str, str], args: argparse.Namespace, blocks: dict[str, str],
              timings: list[tuple[str, float, str, str]], total: float, done: bool, persist: bool) -> None:
    rows = [[f"`{s}`", C.fmt_s(sec), lb, la] for s, sec, lb, la in timings]
    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "") + (
        f" --threads {args.threads}" if args.threads else "")
    machine = (
        f"Measured on {info['date']} (`{cmd}`, {C.fmt_s(total)} in all"
        + ("" if done else "; interrupted, later tables are from an earlier run") + ").\n\n"
        + C.table(["", ""], [
            ["CPU", f"{info['cpu']} ({info['nproc']} cores as seen by `nproc`)"],
            ["memory", info["memory"]],
            ["Python / torch / lightning / numpy",
             f"{info['python']} / {info['torch']} / {info['lightning']} / {info['numpy']}"],
            ["torch threads", str(args.threads or info["nproc"])],
        ])
        + "\n\nLoad average (1, 5, 15 min) before and after each script; above 1, other processes were "
        "running on the machine:\n\n"
        + C.table(["script", "took", "load before", "load after"], rows) + "\n"
    )
    if done:
        print("\n" + machine)
    if not persist:
        return
    doc = DOC.read_text() if DOC.exists() else "# Performance\n"
    doc = replace(doc, "machine", machine)
    for name, body in blocks.items():
        doc = replace(doc, name, body)
    DOC.write_text(doc)
    print(f"wrote {DOC.relative_to(C.REPO)}", flush=True)


if __name__ == "__main__":
    main()

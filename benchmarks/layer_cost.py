"""What ``hidden_module="all"`` costs on a 6-layer MiniLM-sized tagger (384 wide, random weights): the training
thread, the projector's work per snapshot, and the disk.

Part A (the training thread): ``trainer.validate`` on the same model, variants rotated per repeat: no callback,
the callback with the default capture (``hidden`` and ``emissions``), and with ``hidden_module="all"`` (7 more
views: the embeddings and 6 blocks). The validation loop is timed from ``on_validation_start`` to
``on_validation_epoch_end`` (after the callback handed the epoch to its capture thread, whose selection the
timer waits for: the capture's whole cost). ``sinks=[]`` and a no-op reducer: the projection is part B.

Part B (the projector, off the training thread): the snapshots part A saved with ``hidden_module="all"`` (one
per repeat, so the CKA grid compares with the earlier ones read back from disk), projected in order with the
default reducer (PCA) by a fresh :class:`Projector`, with and without their layers; the layer figures' time,
split into its parts.

Part C (memory and disk): the layers' bytes while captured (float32) and on disk (float16, ``layers.npz``),
beside the rest of the snapshot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.quiet()

from lightning.pytorch.callbacks import Callback  # noqa: E402

from lightning_ner_viz import EmbeddingDriftCallback  # noqa: E402
from lightning_ner_viz.demo.data import LABEL_NAMES  # noqa: E402

MAX_TOKENS = 2000
VARIANTS = ("plain", "default", "all")


class LoopTimer(Callback):
    """Seconds from ``on_validation_start`` to ``on_validation_epoch_end`` (registered after the drift callback)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def drift_callback(variant: str, root: Path) -> EmbeddingDriftCallback | None:
    """The variant's callback, kept across repeats: each ``validate()`` is one more snapshot in ``root``."""
    if variant == "plain":
        return None
    return EmbeddingDriftCallback(sinks=[], reducer=C.CheapReducer(), max_tokens=MAX_TOKENS, label_names=LABEL_NAMES,
                                  save_dir=root, hidden_module="all" if variant == "all" else None)


def validate_once(callback: EmbeddingDriftCallback | None, model: Any, val: Any, root: Path) -> float:
    timer = LoopTimer()
    callbacks = [timer] if callback is None else [callback, timer]
    C.trainer(callbacks, root=str(root)).validate(model, dataloaders=val, verbose=False)
    return timer.seconds[0]


def project_all(root: Path, with_layers: bool) -> tuple[list[float], dict[str, float]]:
    """Each snapshot under ``root`` projected in order by one fresh Projector: seconds per snapshot, and the layer
    figures' parts summed over them."""
    import lightning_ner_viz.analysis.layers as layers_module
    from lightning_ner_viz.projection.projector import Projector
    from lightning_ner_viz.snapshot import load_layers
    from lightning_ner_viz.store import SnapshotStore

    store = SnapshotStore(root)
    parts: dict[str, float] = {}
    patched = {name: getattr(layers_module, name) for name in ("knn_purity", "probe_accuracy", "entity_separation",
                                                               "linear_cka")}
    for name, fn in patched.items():
        setattr(layers_module, name, C.adding_time(parts, name, fn))
    try:
        projector, seconds = Projector(store=store), []
        for name in store.names():
            snapshot = store.load(name)
            if with_layers:
                snapshot.layers = load_layers(store.directory(name))
            seconds.append(C.timed(lambda: projector.project(snapshot)))
    finally:
        for name, fn in patched.items():
            setattr(layers_module, name, fn)
    return seconds, parts


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rotated runs of every variant (default 3)")
    parser.add_argument("--sentences", type=int, default=600, help="validation sentences (default 600)")
    parser.add_argument("--quick", action="store_true", help="2 repeats of 300 sentences")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.sentences = 2, 300
    C.set_threads(args.threads)
    model, val = C.build_model("minilm"), C.loader(args.sentences)
    work = Path(tempfile.mkdtemp(prefix="ner-viz-layers-"))
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        validate_once(None, model, val, work / "warm")  # first forward: allocator and kernels
        callbacks = {v: drift_callback(v, work / v) for v in VARIANTS}
        for r in range(args.repeats):
            for variant in VARIANTS[r % 3:] + VARIANTS[: r % 3]:
                times[variant].append(validate_once(callbacks[variant], model, val, work / variant))
                print(f"  layer_cost: repeat {r} {variant} {times[variant][-1]:.2f} s", file=sys.stderr)
        plain = C.median(times["plain"])
        rows_a = [[v, C.fmt_s(C.median(times[v])), "1.00" if v == "plain" else f"{C.median(times[v]) / plain:.2f}",
                   C.fmt_s(C.median(times[v]) - plain) if v != "plain" else "-"] for v in VARIANTS]
        snapshots = work / "all"
        with_layers, parts = project_all(snapshots, True)
        without, _ = project_all(snapshots, False)
        rows_b = [[f"snapshot {i + 1}", C.fmt_s(a), C.fmt_s(b), C.fmt_s(b - a)] for i, (a, b) in enumerate(zip(without, with_layers))]
        n = len(with_layers)
        rows_parts = [[name, C.fmt_s(total / n)] for name, total in sorted(parts.items(), key=lambda kv: -kv[1])]
        first = sorted(p for p in snapshots.iterdir() if p.is_dir())[0]
        layers_bytes = (first / "layers.npz").stat().st_size
        rest = sum(f.stat().st_size for f in first.rglob("*") if f.is_file()) - layers_bytes
        import numpy as np

        with np.load(first / "layers.npz") as npz:
            shape = (len(npz.files), *npz[npz.files[0]].shape)
        captured = shape[0] * shape[1] * shape[2] * 4
        rows_c = [["layers while captured (float32)", f"{captured / 2**20:.1f} MiB",
                   f"{shape[0]} layers x {shape[1]:,} tokens x {shape[2]} floats x 4 bytes"],
                  ["layers.npz on disk (float16)", f"{layers_bytes / 2**20:.1f} MiB", "per snapshot"],
                  ["the rest of the snapshot", f"{rest / 2**20:.1f} MiB", "arrays.npz, meta.json, dynamics, groups"]]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/layer_cost.py" + (" --quick" if args.quick else "")
    notes = [f"MiniLM-sized tagger (6 blocks, 384 wide, random weights), {args.sentences} validation sentences, "
             f"max_tokens={MAX_TOKENS}, {args.repeats} repeats, median; {C.machine_info()['cpu']}."]
    return [
        C.emit("layer-cost-capture", C.table(["variant", "validation loop", "vs plain", "added"], rows_a), command,
               notes + ["`all` captures 7 more views (the embeddings' output and each block's) in the same forward."]),
        C.emit("layer-cost-projector",
               C.table(["", "project, without layers", "with the 7 layers", "the layer figures add"], rows_b)
               + "\n\n" + C.table(["part of the layer figures", "per snapshot (mean)"], rows_parts), command,
               ["Off the training thread (in the projector child). The CKA to the latest snapshot grows with the "
                "snapshots so far: each earlier one's layers are read back from disk, one at a time."]),
        C.emit("layer-cost-disk", C.table(["what", "size", "how"], rows_c), command),
    ]


if __name__ == "__main__":
    main()

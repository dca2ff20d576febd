"""``lightning-ner-viz render``: re-project saved snapshots with another reducer, frame or sink, without retraining."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_ner_viz.cli.outputs import DEFAULT_OUT, output_path
from lightning_ner_viz.projection.aligned_estimate import AlignedEstimate
from lightning_ner_viz.projection.frame_names import RENDER_FRAME_CHOICES, check_reducer_frame, resolve_frame
from lightning_ner_viz.reducers.registry import REDUCER_NAMES
from lightning_ner_viz.sinks.registry import SINK_NAMES, make_sink, setup_sinks

if TYPE_CHECKING:
    import numpy as np

    from lightning_ner_viz.projection.frame_names import RenderFrameChoice
    from lightning_ner_viz.reducers.registry import Reducer, ReducerName
    from lightning_ner_viz.sinks.base import Sink
    from lightning_ner_viz.snapshot import Snapshot
    from lightning_ner_viz.store import SnapshotStore

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
    AlignedEpoch = tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]
    """One epoch's view coordinates, group coordinates and metrics."""


def add_render_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``render`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "render", help="re-render saved snapshots with another reducer, frame or sink, without retraining",
        description="Re-project every snapshot under SNAPSHOT_DIR (each epoch, each validate run) and log it to one sink.",
    )
    parser.add_argument("snapshot_dir", help="directory of snapshots (epoch=NNNN-step=NNNNNNN folders, or the run directory above them)")
    parser.add_argument("--reducer", choices=REDUCER_NAMES,
                        help="default: pca, or umap with --frame aligned (the only reducer that frame takes)")
    parser.add_argument("--frame", default="auto", choices=RENDER_FRAME_CHOICES,
                        help="how epochs share one frame; 'aligned' uses umap.AlignedUMAP (default: %(default)s: "
                        "procrustes for pca, fixed for umap and tsne)")
    parser.add_argument("--sink", default="rerun", choices=SINK_NAMES, help="default: %(default)s")
    parser.add_argument("--out", help="output file (rerun: .rrd, html: .html, added when the name has no "
                        "extension) or directory (wandb, tensorboard); default: next to the snapshots")
    parser.add_argument("--n-components", type=int, default=3, choices=[2, 3], help="default: %(default)s")
    parser.add_argument("--strict", action="store_true",
                        help="refuse to render when any snapshot is damaged (default: skip it with a warning)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``render`` handler: check the options, then render every epoch to one sink."""
    reducer = resolve_reducer(args.reducer, args.frame)
    frame = resolve_frame(args.frame, reducer)
    out = output_path(args.out, args.sink) if args.out else Path(args.snapshot_dir).resolve() / DEFAULT_OUT[args.sink]
    epochs, failures = render_to_sink(args.snapshot_dir, args.sink, out.resolve(), reducer=reducer, frame=frame,
                                      n_components=args.n_components, strict=args.strict)
    if failures:
        return report_failures("render", failures)
    print(f"Rendered {epochs} snapshots ({reducer}, frame {frame}) to {out.resolve()}")
    return 0


def resolve_reducer(reducer: ReducerName | Reducer | None, frame: RenderFrameChoice) -> ReducerName | Reducer:
    """The reducer to use: ``reducer``, else ``"umap"`` for the aligned frame and ``"pca"`` for the others.

    Raises:
        ValueError: when the frame cannot use that reducer (e.g. ``"pca"`` with ``"aligned"``).
    """
    if reducer is None:
        reducer = "umap" if frame == "aligned" else "pca"
    check_reducer_frame(reducer, resolve_frame(frame, reducer))
    return reducer


def render_to_sink(directory: str | os.PathLike[str], sink: str, out: Path, *, reducer: ReducerName | None = None,
                   frame: RenderFrameChoice = "auto", n_components: int = 3,
                   strict: bool = False) -> tuple[int, list[str]]:
    """Render every snapshot under ``directory`` to the sink named ``sink``, writing to ``out``.

    A damaged snapshot is skipped with a warning (see :meth:`SnapshotStore.load_all`);
    ``strict=True`` refuses instead.

    Returns:
        The number of epochs, and the sink's error if it failed (see :func:`render_snapshots`).

    Raises:
        FileNotFoundError: when ``directory`` is not a directory.
        ValueError: when it holds no readable snapshot, links outside itself, the options do not fit
            together, or, with ``strict``, a snapshot is damaged.
    """
    from lightning_ner_viz.store import resolve_snapshot_root

    store = resolve_snapshot_root(directory)
    snapshots = store.load_all(strict=strict)
    failures = render_snapshots(snapshots, [make_sink(sink, out)], reducer=reducer, frame=frame,
                                n_components=n_components, save_dir=store.root)
    return len(snapshots), failures


def with_layers(snapshot: Snapshot, store: SnapshotStore | None) -> Snapshot:
    """``snapshot`` with its encoder layers read back from beside it (``hidden_module="all"``), when saved."""
    from lightning_ner_viz.snapshot import load_layers

    if store is not None and not snapshot.layers and store.has(snapshot.key.name):
        snapshot.layers = load_layers(store.directory(snapshot.key.name))
    return snapshot


def report_failures(command: str, failures: list[str]) -> int:
    """Print which sink failed and why, and return the exit code of a failed run (1)."""
    for failure in failures:
        print(f"lightning-ner-viz {command}: error: {failure}", file=sys.stderr)
    return 1


def render_snapshots(
    snapshots: list[Snapshot], sinks: list[Sink], reducer: ReducerName | Reducer | None = None,
    frame: RenderFrameChoice = "auto",
    n_components: int = 3, seed: int = 0, strict: bool = False, save_dir: Path | None = None,
) -> list[str]:
    """Re-render saved snapshots, in epoch order, to the sinks, as the callback does during training.

    Each epoch (and each of its groups: ``entities``, ``cls``) goes through
    :meth:`~lightning_ner_viz.projection.renderer.Renderer.log`, so a failing sink warns and
    is skipped while the others go on. ``frame="aligned"`` lays every epoch of a view (and of
    a group) out together with :func:`~lightning_ner_viz.projection.aligned.aligned_umap`; the
    other frames project the epochs one by one.

    Args:
        snapshots: the epochs, in order.
        sinks: where to log; each is set up here and closed at the end.
        reducer: a name or an object with ``fit_transform``; ``None`` picks one for the frame.
        frame: a name from ``RENDER_FRAME_CHOICES`` (``"auto"``: procrustes for PCA, fixed for UMAP and t-SNE).
        n_components: 2 or 3.
        seed: the reducers' random state.
        strict: raise a sink's error instead of warning.
        save_dir: handed to each sink's ``setup``: where default and relative output paths resolve.

    Returns:
        One ``"<sink> failed: <error>"`` per sink that failed (empty when every sink has every epoch).
    """
    from lightning_ner_viz.projection.renderer import Renderer

    reducer = resolve_reducer(reducer, frame)
    frame = resolve_frame(frame, reducer)
    setup_sinks(sinks, None, save_dir)
    renderer = Renderer(reducer, n_components, seed, sinks, strict=strict, frame=frame)
    store = None
    if save_dir is not None:  # the label issues and the layer figures read what is saved beside the snapshots
        from lightning_ner_viz.analysis.label_issue_report import LabelIssueFinder
        from lightning_ner_viz.store import SnapshotStore

        store = renderer.projector.store = SnapshotStore(save_dir)
        renderer.projector.issues = LabelIssueFinder(store)
    try:
        if frame == "aligned":
            projector = renderer.projector
            for snapshot, (coords, group_coords, metrics) in zip(snapshots, aligned_epochs(snapshots, n_components, seed)):
                analysis = projector.analyst.analyse(snapshot)
                analysis.label_issues = projector.issues.update(snapshot)
                analysis.layers = projector.layers.update(with_layers(snapshot, store))
                renderer.log(snapshot, coords, metrics, group_coords, analysis)
        else:
            for snapshot in snapshots:
                renderer.render(with_layers(snapshot, store))
    finally:
        renderer.close()
    failed = renderer.failed_sinks
    return [f"{sink!r} failed: {failed[id(sink)]}" for sink in sinks if id(sink) in failed]


def aligned_epochs(snapshots: list[Snapshot], n_components: int = 3, seed: int = 0) -> list[AlignedEpoch]:
    """Every epoch's coordinates, group coordinates and metrics in one AlignedUMAP layout per view and group.

    A group (``entities``, ``cls``) that cannot be laid out (too few rows for UMAP's
    neighbours, or no rows shared between epochs) is left out with a warning; the
    views are still rendered.

    Raises:
        ValueError: when a view cannot be laid out.
    """
    from lightning_ner_viz.analysis.epoch_metrics import epoch_metrics
    from lightning_ner_viz.projection.aligned import aligned_umap

    if not snapshots:
        return []
    groups = dict.fromkeys(name for snapshot in snapshots for name in snapshot.groups)
    estimate = AlignedEstimate({**{view: sum(len(s) for s in snapshots) for view in snapshots[0].views},
                                **{name: sum(len(s.groups.get(name, ())) for s in snapshots) for name in groups}})
    estimate.begin(len(snapshots))
    layouts = {}
    for view in snapshots[0].views:
        layouts[view] = aligned_umap(snapshots, view, n_components, seed)
        estimate.finished(view)
    group_layouts = _aligned_groups(snapshots, list(groups), n_components, seed, estimate)
    first: Snapshot | None = None
    previous: Snapshot | None = None
    epochs: list[AlignedEpoch] = []
    for i, snapshot in enumerate(snapshots):
        coords = {view: layouts[view][i] for view in snapshot.views}
        metrics = epoch_metrics(snapshot, coords, previous=previous, first=first)
        group_coords = {name: layout[i] for name, layout in group_layouts.items() if i in layout}
        for name, xyz in group_coords.items():
            earlier = [s.groups.get(name) if s is not None else None for s in (previous, first)]
            found = epoch_metrics(snapshot.groups[name], {name: xyz}, *earlier)
            metrics.update({key: value for key, value in found.items() if key.startswith(f"{name}/")})
        epochs.append((coords, group_coords, metrics))
        first, previous = first or snapshot, snapshot
    return epochs


def _aligned_groups(snapshots: list[Snapshot], groups: list[str], n_components: int, seed: int,
                    estimate: AlignedEstimate) -> dict[str, dict[int, np.ndarray]]:
    """Group name (of ``groups``) to {index of the snapshot: coordinates}, over the snapshots that have that group."""
    from lightning_ner_viz._warnings import warn
    from lightning_ner_viz.projection.aligned import aligned_umap

    layouts: dict[str, dict[int, np.ndarray]] = {}
    for name in groups:
        having = [i for i, snapshot in enumerate(snapshots) if len(snapshot.groups.get(name, ())) > 1]
        try:
            found = aligned_umap([snapshots[i].groups[name] for i in having], name, n_components, seed)
        except ValueError as err:
            warn(f"The {name!r} group is not rendered in the aligned frame: {err}")
            estimate.skipped(name)
            continue
        layouts[name] = dict(zip(having, found))
        estimate.finished(name)
    return layouts

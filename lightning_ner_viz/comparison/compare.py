"""One comparison of several runs: the matched snapshots, the shared frame and each run's numbers against the
reference run, ready for the report, the recording and the terminal table."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lightning_ner_viz.analysis.neighbours import nearest_neighbours
from lightning_ner_viz.comparison.frame import frame_name, shared_frame
from lightning_ner_viz.comparison.metrics import DEFAULT_TOP, K_NEIGHBOURS, RunComparison, compare_vectors
from lightning_ner_viz.comparison.runs import MatchedSnapshot, Run, load_runs, match_runs
from lightning_ner_viz.reducers.registry import Reducer, ReducerName


@dataclass
class Comparison:
    """Runs compared snapshot by snapshot against the first one (the reference).

    Attributes:
        runs: the runs, the reference first.
        view: the view compared.
        reducer: the reducer's name.
        frame: the frame each run's snapshots share (``procrustes``, ``fixed``).
        n_components: 2 or 3.
        matched: the snapshots every run has, in capture order.
        coords: ``coords[s][r]``: run ``r``'s coordinates at ``matched[s]``, in the reference run's frame.
        results: ``results[s][r - 1]``: run ``r`` (``r >= 1``) against the reference at ``matched[s]``.
    """

    runs: list[Run]
    view: str
    reducer: str
    frame: str
    n_components: int
    matched: list[MatchedSnapshot]
    coords: list[list[np.ndarray]]
    results: list[list[RunComparison]]

    @property
    def names(self) -> list[str]:
        """The runs' names, the reference first."""
        return [run.name for run in self.runs]

    @property
    def label_names(self) -> list[str]:
        """The reference run's label names."""
        return self.matched[0].label_names

    def widths(self) -> list[int]:
        """Each run's width of the view (at the first matched snapshot)."""
        return [int(np.shape(s.views[self.view])[1]) for s in self.matched[0].snapshots]


def compare_matched(runs: list[Run], matched: list[MatchedSnapshot], view: str, *, k: int = K_NEIGHBOURS,
                    top: int = DEFAULT_TOP) -> list[list[RunComparison]]:
    """Each run against the reference at each matched snapshot (see
    :func:`~lightning_ner_viz.comparison.metrics.compare_vectors`)."""
    results: list[list[RunComparison]] = []
    for snapshot in matched:
        reference = snapshot.view(0, view)
        near = nearest_neighbours(reference, k)[0]
        gold = snapshot.gold(0)
        words = [snapshot.snapshots[0].token[j] for j in snapshot.rows[0].tolist()]
        results.append([
            compare_vectors(reference, snapshot.view(r, view), gold, snapshot.label_names, snapshot=snapshot.key.name,
                            run=runs[r].name, reference_run=runs[0].name, k=k, top=top, reference_neighbours=near,
                            words=words)
            for r in range(1, len(runs))
        ])
    return results


def compare_runs(directories: list[str | os.PathLike[str]], *, names: list[str] | None = None, view: str = "hidden",
                 reducer: ReducerName | Reducer = "pca", n_components: int = 2, top: int = DEFAULT_TOP,
                 k: int = K_NEIGHBOURS, seed: int = 0) -> Comparison:
    """Load the runs under ``directories`` (the first is the reference) and compare them.

    Warns when some snapshot or token is not in every run (and uses those every run has).

    Raises:
        ValueError: for fewer than two runs, runs sharing no snapshot or (too few) tokens, different label
            sets, or ``view`` missing in a run; each message says what to check.
        FileNotFoundError: when a directory does not exist.
    """
    if top < 0:
        raise ValueError(f"--top must be >= 0; got {top}.")
    runs = load_runs(directories, names)
    matched = match_runs(runs, view)
    coords = shared_frame(matched, view, reducer, n_components, seed)
    results = compare_matched(runs, matched, view, k=k, top=top)
    name = reducer if isinstance(reducer, str) else type(reducer).__name__
    return Comparison(runs, view, name, frame_name(reducer), n_components, matched, coords, results)

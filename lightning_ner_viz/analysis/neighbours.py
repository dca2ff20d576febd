"""Each sampled token's nearest neighbours in the original space (cosine), and how its neighbourhood changed since the
previous snapshot: what a click on a point shows ("it moved from the ``O`` crowd to the ``B-BRAND`` crowd")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_ner_viz.analysis._checks import as_matrix

NEIGHBOURS = 10
"""Neighbours kept per token."""
_BLOCK_BYTES = 64 * 2**20
"""Memory budget of one block of float32 similarities."""


@dataclass
class Neighbours:
    """The nearest neighbours of every row of one view of a snapshot.

    Attributes:
        view: the view they were found in (``hidden``).
        row: int array of shape (n, k): the neighbours' rows in the snapshot, nearest first.
        distance: float32 array of shape (n, k): their cosine distances ``1 - cos`` in [0, 2].
        jaccard: float32 array of shape (n,): the overlap of the token's neighbour set (as token ids) with its set
            at the previous snapshot, |A ∩ B| / |A ∪ B|; NaN for the first snapshot or a token new in this one.
    """

    view: str
    row: np.ndarray
    distance: np.ndarray
    jaccard: np.ndarray

    @property
    def k(self) -> int:
        """Neighbours per token."""
        return int(self.row.shape[1]) if self.row.ndim == 2 else 0


def nearest_neighbours(X: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows by cosine similarity (``min(k, n - 1)``), nearest first, ties by row.

    Deterministic: the same matrix always gives the same neighbours in the same order (the run comparison relies on
    it: a run compared with itself has no token whose neighbours changed).

    Returns:
        ``(rows, distances)``: int64 and float32 arrays of shape (n, k).
    """
    x = torch.from_numpy(np.ascontiguousarray(as_matrix(X, "X", dtype=np.float32)))
    n = len(x)
    k = max(0, min(k, n - 1))
    rows, dists = np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return rows, dists
    unit = torch.nn.functional.normalize(x, dim=1)
    step = max(1, _BLOCK_BYTES // (4 * n))
    for start in range(0, n, step):
        stop = min(start + step, n)
        sim = unit[start:stop] @ unit.T
        sim[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf  # not itself
        top = sim.topk(k, dim=1, largest=True, sorted=True)
        values, found = top.values.numpy(), top.indices.numpy()
        order = np.lexsort((found, -values), axis=1)  # topk leaves the order of equal similarities open
        rows[start:stop] = np.take_along_axis(found, order, 1)
        dists[start:stop] = np.clip(1.0 - np.take_along_axis(values, order, 1), 0.0, 2.0)
    return rows, dists


def neighbour_jaccard(ids: np.ndarray, rows: np.ndarray, prev_ids: np.ndarray, prev_rows: np.ndarray) -> np.ndarray:
    """Per token of ``ids``, the Jaccard overlap of its neighbour token ids with its neighbours at the previous
    snapshot (``prev_ids``, ``prev_rows``); NaN for a token that was not there."""
    where = {int(t): i for i, t in enumerate(np.asarray(prev_ids).tolist())}
    now_sets = np.asarray(ids)[rows]
    then_sets = np.asarray(prev_ids)[prev_rows] if len(prev_rows) else np.zeros((0, 0), dtype=np.int64)
    out = np.full(len(ids), np.nan, dtype=np.float32)
    for i, token in enumerate(np.asarray(ids).tolist()):
        j = where.get(int(token))
        if j is not None:
            a, b = set(now_sets[i].tolist()), set(then_sets[j].tolist())
            out[i] = len(a & b) / len(a | b) if a | b else 1.0
    return out


class NeighbourFinder:
    """Finds each snapshot's neighbours in one view and compares them with the previous snapshot's."""

    def __init__(self, view: str = "hidden", k: int = NEIGHBOURS) -> None:
        self.view, self.k = view, k
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (token ids, neighbour rows)

    def find(self, snapshot: Any, previous: Any | None = None) -> Neighbours | None:
        """The neighbours of ``snapshot`` (``None`` without the view). ``previous``: the previous snapshot, used
        when this finder has not seen it (after a resume)."""
        if self.view not in snapshot.views or len(snapshot) < 2:
            return None
        rows, dists = nearest_neighbours(snapshot.views[self.view], self.k)
        before = self._previous
        if before is None and previous is not None and self.view in previous.views and len(previous) > 1:
            before = (np.asarray(previous.token_id), nearest_neighbours(previous.views[self.view], self.k)[0])
        ids = np.asarray(snapshot.token_id)
        jaccard = (np.full(len(ids), np.nan, dtype=np.float32) if before is None
                   else neighbour_jaccard(ids, rows, *before))
        self._previous = (ids, rows)
        return Neighbours(self.view, rows, dists, jaccard)

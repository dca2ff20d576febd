"""How two runs' representations of the same tokens differ, in the original feature space (pure NumPy).

Rows of the two matrices are the same tokens. CKA compares them as they are (any widths); the centroid
distances and the per-token distances first put run B onto run A: each run centred and scaled to unit RMS
norm, both reduced to the smaller width by PCA when the widths differ, then B rotated onto A by orthogonal
Procrustes. A run compared with itself gives CKA 1, every distance 0 and no token whose neighbour words changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lightning_ner_viz.analysis.drift import linear_cka
from lightning_ner_viz.analysis.neighbours import NEIGHBOURS, nearest_neighbours

K_NEIGHBOURS = NEIGHBOURS
"""How many nearest neighbours (cosine) each token's neighbourhood holds: as many as the report's click-a-point list."""
DEFAULT_TOP = 20
"""How many of the tokens that differ most are kept."""


@dataclass
class RunComparison:
    """One run against the reference run at one matched snapshot.

    Attributes:
        snapshot: the snapshot's name (the reference run's key name).
        run: the compared run's name.
        reference: the reference run's name.
        cka: linear CKA between the two runs' vectors of the shared tokens (1: the same up to rotation and scale).
        centroid_distance: gold label name (the reference run's gold) to the distance between its centroid in
            the reference run and in the aligned run (unit-RMS units); the labels present only.
        k: the neighbourhood size.
        shared_neighbours: per shared token, how many of its ``k`` nearest neighbours both runs have, shape (n,).
        distance: per shared token, its distance between the reference and the aligned run, shape (n,).
        top: rows of the tokens whose neighbour words changed most, most first (at most ``--top``).
        neighbours: per row in ``top``, its nearest neighbours' rows in the reference run and in this run.
        shared_words: per shared token, how many of its ``k`` neighbours' words both runs have (as a multiset),
            shape (n,); ``None`` when no words were given (then tokens count as words).
    """

    snapshot: str
    run: str
    reference: str
    cka: float
    centroid_distance: dict[str, float]
    k: int
    shared_neighbours: np.ndarray
    distance: np.ndarray
    top: np.ndarray
    neighbours: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    shared_words: np.ndarray | None = None

    @property
    def overlap(self) -> np.ndarray:
        """Per shared token, the Jaccard overlap of its two neighbour sets (1: unchanged), shape (n,)."""
        return neighbour_jaccard(self.shared_neighbours, self.k)

    @property
    def n_changed(self) -> int:
        """How many tokens' neighbour words changed (their neighbour tokens, when no words were given)."""
        shared = self.shared_neighbours if self.shared_words is None else self.shared_words
        return int((shared < self.k).sum())

    @property
    def mean_centroid_distance(self) -> float:
        """The mean of :attr:`centroid_distance` over the labels (NaN without labels)."""
        values = list(self.centroid_distance.values())
        return float(np.mean(values)) if values else float("nan")


def standardize(X: np.ndarray) -> np.ndarray:
    """``X`` (n, d) centred and scaled to unit root-mean-square row norm, as float64 (a constant ``X``: centred only)."""
    x = np.asarray(X, dtype=np.float64)
    x = x - x.mean(0)
    rms = float(np.sqrt(np.square(x).sum(1).mean())) if len(x) else 0.0
    return x / rms if rms > 0 else x


def reduce_width(X: np.ndarray, width: int) -> np.ndarray:
    """Centred ``X`` (n, d) on its top ``width`` principal axes, shape (n, width); zero columns past its rank."""
    x = np.asarray(X, dtype=np.float64)
    if x.shape[1] == width:
        return x
    u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    scores = u[:, :width] * s[:width]
    return np.pad(scores, ((0, 0), (0, width - scores.shape[1])))


def align_onto(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both runs' vectors of the same tokens in one space: ``reference`` standardized, and ``other``
    standardized and rotated (reflections allowed) onto it by orthogonal Procrustes.

    When the widths differ, both are first reduced to the smaller one by PCA.

    Args:
        reference, other: arrays of shape (n, d_a) and (n, d_b), rows paired.

    Returns:
        Two float64 arrays of shape (n, min(d_a, d_b)).
    """
    a, b = standardize(reference), standardize(other)
    if len(a) != len(b):
        raise ValueError(f"reference and other must have the same rows; got {a.shape} and {b.shape}.")
    width = min(a.shape[1], b.shape[1])
    if a.shape[1] != b.shape[1]:
        a, b = reduce_width(a, width), reduce_width(b, width)
    u, _, vt = np.linalg.svd(b.T @ a)
    return a, b @ (u @ vt)


def centroid_distances(reference: np.ndarray, aligned: np.ndarray, gold: np.ndarray,
                       label_names: Sequence[str]) -> dict[str, float]:
    """Per gold label present, the distance between its centroid in ``reference`` and in ``aligned`` (see
    :func:`align_onto`), in label order."""
    gold = np.asarray(gold, dtype=np.int64)
    out: dict[str, float] = {}
    for label in np.unique(gold):
        mask = gold == label
        name = label_names[label] if 0 <= label < len(label_names) else str(label)
        out[name] = float(np.linalg.norm(reference[mask].mean(0) - aligned[mask].mean(0)))
    return out


def shared_neighbour_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, how many neighbours the neighbour lists ``a`` and ``b`` (n, k) have in common, shape (n,)."""
    if a.shape != b.shape:
        raise ValueError(f"neighbour lists must have the same shape; got {a.shape} and {b.shape}.")
    return (a[:, :, None] == b[:, None, :]).any(2).sum(1).astype(np.int64)


def neighbour_jaccard(shared: np.ndarray, k: int) -> np.ndarray:
    """Jaccard overlap of two ``k``-neighbour sets sharing ``shared`` members: ``shared / (2k - shared)``."""
    shared = np.asarray(shared, dtype=np.float64)
    return np.divide(shared, 2 * k - shared, out=np.ones_like(shared), where=(2 * k - shared) > 0)


def shared_word_counts(a: np.ndarray, b: np.ndarray, words: Sequence[str]) -> np.ndarray:
    """Per row, how many of the neighbour lists' words ``a`` and ``b`` (n, k rows into ``words``) have in common,
    counted as multisets: another occurrence of the same word counts as the same neighbour. Shape (n,)."""
    text = list(words)
    return np.array([sum((Counter(text[j] for j in x) & Counter(text[j] for j in y)).values())
                     for x, y in zip(a.tolist(), b.tolist())], dtype=np.int64)


def most_changed(shared: np.ndarray, k: int, distance: np.ndarray, top: int,
                 shared_words: np.ndarray | None = None) -> np.ndarray:
    """Rows whose neighbour words changed (fewer than ``k`` in common; tokens when ``shared_words`` is None), the
    fewest shared words first, then the fewest shared tokens, ties broken by the larger ``distance``; at most ``top``.

    Words first: a word that occurs many times (``1``, ``%``) has copies of itself as neighbours, and which copies
    come up changes from run to run while its neighbourhood does not.
    """
    words = np.asarray(shared if shared_words is None else shared_words)
    changed = np.flatnonzero(words < k)
    order = np.lexsort((-np.asarray(distance)[changed], np.asarray(shared)[changed], words[changed]))
    return changed[order][:max(top, 0)].astype(np.int64)


def compare_vectors(reference: np.ndarray, other: np.ndarray, gold: np.ndarray, label_names: Sequence[str], *,
                    snapshot: str = "", run: str = "", reference_run: str = "", k: int = K_NEIGHBOURS,
                    top: int = DEFAULT_TOP, reference_neighbours: np.ndarray | None = None,
                    words: Sequence[str] | None = None) -> RunComparison:
    """Compare two runs' vectors of the same tokens (rows paired).

    Args:
        reference, other: arrays of shape (n, d_a) and (n, d_b).
        gold: the reference run's gold label ids, shape (n,): the groups whose centroids are compared.
        label_names: label id to name.
        snapshot, run, reference_run: names for the result.
        k: neighbourhood size.
        top: how many of the tokens that differ most to keep.
        reference_neighbours: the reference's neighbour rows, ``nearest_neighbours(reference, k)[0]``
            (:func:`~lightning_ner_viz.analysis.neighbours.nearest_neighbours`), when already computed (several
            runs vs one).
        words: each row's word (the reference run's tokens), to rank by neighbour words (see :func:`most_changed`).
    """
    if len(reference) != len(other) or len(reference) != len(gold):
        raise ValueError(f"reference {np.shape(reference)}, other {np.shape(other)} and gold {np.shape(gold)} "
                         "must have the same rows.")
    a, b = align_onto(reference, other)
    distance = np.linalg.norm(a - b, axis=1)
    near_a = nearest_neighbours(reference, k)[0] if reference_neighbours is None else reference_neighbours
    near_b = nearest_neighbours(other, k)[0]
    k = near_a.shape[1]
    shared = shared_neighbour_counts(near_a, near_b)
    shared_words = None if words is None else shared_word_counts(near_a, near_b, words)
    rows = most_changed(shared, k, distance, top, shared_words)
    return RunComparison(
        snapshot=snapshot, run=run, reference=reference_run, cka=linear_cka(reference, other),
        centroid_distance=centroid_distances(a, b, gold, label_names), k=k, shared_neighbours=shared,
        distance=distance, top=rows, neighbours={int(r): (near_a[r], near_b[r]) for r in rows},
        shared_words=shared_words,
    )

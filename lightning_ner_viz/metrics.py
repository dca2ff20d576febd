"""Per-epoch metrics of a :class:`~lightning_ner_viz.snapshot.Snapshot`, in numpy and torch only.

Drift metrics (CKA, cosine displacement, centroid shift) compare views in their
original feature space; only :func:`trustworthiness` looks at the projection.
Metrics that need more tokens or labels than they are given return NaN instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lightning_ner_viz.snapshot import Snapshot

_NAN = float("nan")
_CHUNK_BYTES = 64 * 2**20
"""Memory budget of one chunk of the distance matrix in :func:`knn_purity`."""
_MAX_POINTS = 2000


def _f64(X: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(X, dtype=np.float64))


def _rows(X: torch.Tensor, name: str) -> int:
    if X.ndim != 2:
        raise ValueError(f"{name} must have shape (n_tokens, n_features); got shape {tuple(X.shape)}.")
    return X.shape[0]


def _sq_dists(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances, of shape (len(A), len(B)), clipped at 0."""
    d = A @ B.T
    d.mul_(-2.0).add_((A * A).sum(1, keepdim=True)).add_((B * B).sum(1))
    return d.clamp_min_(0.0)


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_points`` of them drawn without replacement."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear centered kernel alignment (Kornblith et al., 2019) of two row-aligned matrices.

    Args:
        X: array of shape (n_tokens, n_features_x).
        Y: array of shape (n_tokens, n_features_y).

    Returns:
        A similarity in [0, 1], invariant to rotations and isotropic scaling; NaN with
        fewer than 2 rows or when either matrix is constant.
    """
    x, y = _f64(X), _f64(Y)
    n = _rows(x, "X")
    if _rows(y, "Y") != n:
        raise ValueError(f"X and Y must have the same number of rows; got {n} and {y.shape[0]}.")
    if n < 2:
        return _NAN
    x, y = x - x.mean(0), y - y.mean(0)
    dx, dy = x.shape[1], y.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:  # Gram matrices are cheaper than feature covariances
        kx, ky = x @ x.T, y @ y.T
        hsic, norm_x, norm_y = (kx * ky).sum(), kx.norm(), ky.norm()
    else:
        hsic, norm_x, norm_y = (y.T @ x).square().sum(), (x.T @ x).norm(), (y.T @ y).norm()
    if norm_x == 0 or norm_y == 0:
        return _NAN
    return float(hsic / (norm_x * norm_y))


def cosine_displacement(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per-row cosine distance ``1 - cos(prev_i, cur_i)``, in [0, 2].

    A row that is zero in both matrices has distance 0; zero in only one, distance 1.

    Args:
        prev: array of shape (n_tokens, n_features).
        cur: array of shape (n_tokens, n_features).

    Returns:
        Array of shape (n_tokens,).
    """
    a, b = _f64(prev), _f64(cur)
    _rows(a, "prev")
    _rows(b, "cur")
    if a.shape != b.shape:
        raise ValueError(f"prev and cur must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}.")
    norms = a.norm(dim=1) * b.norm(dim=1)
    both_zero = (a.norm(dim=1) == 0) & (b.norm(dim=1) == 0)
    cos = torch.where(norms > 0, (a * b).sum(1) / norms.clamp_min(1e-300), both_zero.double())
    return (1.0 - cos).clamp_(0.0, 2.0).numpy()


def match_tokens(prev: Snapshot, cur: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``prev`` and ``cur`` of the token ids both hold, in ascending token-id order.

    Returns:
        ``(prev_index, cur_index)``, two int64 arrays of shape (n_shared,).
    """
    _, i_prev, i_cur = np.intersect1d(prev.token_id, cur.token_id, return_indices=True)
    return i_prev.astype(np.int64), i_cur.astype(np.int64)


def _label_name(label: int, label_names: Sequence[str]) -> str:
    return label_names[label] if 0 <= label < len(label_names) else str(label)


def centroid_shift(
    prev: np.ndarray, cur: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
) -> dict[str, float]:
    """How far each label's centroid moved, relative to the spread of ``cur``.

    Args:
        prev: array of shape (n_tokens, n_features).
        cur: array of shape (n_tokens, n_features), rows aligned with ``prev``.
        labels: array of shape (n_tokens,), gold label ids.
        label_names: label id to name.

    Returns:
        Label name to ``||mean(prev[label]) - mean(cur[label])|| / rms_spread(cur)``, where the
        RMS spread is the root mean squared distance of ``cur``'s rows to their mean. Labels
        without tokens are skipped; the value is NaN when ``cur`` has no spread.
    """
    a, b = _f64(prev), _f64(cur)
    labels = np.asarray(labels, dtype=np.int64)
    if a.shape != b.shape or _rows(b, "cur") != len(labels):
        raise ValueError(f"prev {tuple(a.shape)}, cur {tuple(b.shape)} and labels ({len(labels)},) must align.")
    if len(labels) == 0:
        return {}
    spread = float((b - b.mean(0)).square().sum(1).mean().sqrt())
    out: dict[str, float] = {}
    for label in np.unique(labels):
        mask = torch.from_numpy(labels == label)
        shift = float((a[mask].mean(0) - b[mask].mean(0)).norm())
        out[_label_name(int(label), label_names)] = shift / spread if spread > 0 else _NAN
    return out


def _silhouette(sq_dist: torch.Tensor, labels: np.ndarray) -> float:
    """Mean silhouette from squared distances of shape (n, n) and labels of shape (n,)."""
    _, inverse = np.unique(labels, return_inverse=True)
    n, n_labels = len(labels), int(inverse.max(initial=-1)) + 1
    if not 2 <= n_labels <= n - 1:
        return _NAN
    dist = sq_dist.sqrt().fill_diagonal_(0.0)
    own = torch.from_numpy(inverse.reshape(-1)).long()
    onehot = torch.nn.functional.one_hot(own, n_labels).double()
    sums, counts = dist @ onehot, onehot.sum(0)
    intra = sums.gather(1, own[:, None]).squeeze(1) / (counts[own] - 1)
    inter = (sums / counts).scatter_(1, own[:, None], torch.inf).min(1).values
    scores = torch.nan_to_num((inter - intra) / torch.maximum(intra, inter)) * (counts[own] > 1)
    return float(scores.mean())


def silhouette_by_label(X: np.ndarray, labels: np.ndarray, max_points: int = _MAX_POINTS, seed: int = 0) -> float:
    """Mean Euclidean silhouette coefficient of the gold-label clusters (as scikit-learn's).

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        max_points: above this many tokens, score the rows
            ``np.sort(np.random.default_rng(seed).choice(n_tokens, max_points, replace=False))``.
        seed: seed of that subsample.

    Returns:
        A score in [-1, 1]; NaN unless 2 <= number of labels <= (scored tokens - 1).
    """
    x, labels = _f64(X), np.asarray(labels)
    if _rows(x, "X") != len(labels):
        raise ValueError(f"X has {x.shape[0]} rows but labels has {len(labels)}.")
    idx = _subsample(len(labels), max_points, seed)
    x = x[torch.from_numpy(idx)]
    return _silhouette(_sq_dists(x, x), labels[idx])


def _knn_purity(x: torch.Tensor, labels: np.ndarray, k: int, sq_dist: torch.Tensor | None = None) -> float:
    """kNN purity of rows ``x`` (n, n_features), or of precomputed squared distances (n, n)."""
    n, lab = len(labels), torch.as_tensor(np.asarray(labels, dtype=np.int64))
    k = min(k, n - 1)
    if k < 1:
        return _NAN
    if sq_dist is None:
        x = x - x.mean(0)  # distances are unchanged; float cancellation is smaller
        sq = (x * x).sum(1)
    step = n if sq_dist is not None else max(1, _CHUNK_BYTES // (x.element_size() * n))
    hits = 0
    for start in range(0, n, step):
        stop = min(start + step, n)
        if sq_dist is not None:
            d = sq_dist[start:stop].clone()
        else:
            d = (x[start:stop] @ x.T).mul_(-2.0).add_(sq).add_(sq[start:stop, None])
        d[torch.arange(stop - start), torch.arange(start, stop)] = torch.inf
        neighbours = d.topk(k, dim=1, largest=False).indices
        hits += int((lab[neighbours] == lab[start:stop, None]).sum())
    return hits / (n * k)


def knn_purity(X: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each token's ``k`` nearest neighbours (Euclidean, itself excluded) sharing its gold label.

    Distances are computed in float32, a chunk of rows at a time (about 64 MB each).

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        k: neighbours per token; ``min(k, n_tokens - 1)`` are used.

    Returns:
        A fraction in [0, 1]; NaN with fewer than 2 tokens.
    """
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if _rows(x, "X") != len(labels):
        raise ValueError(f"X has {x.shape[0]} rows but labels has {len(labels)}.")
    return _knn_purity(x, np.asarray(labels), k)


def prediction_change_rate(prev_pred: np.ndarray, cur_pred: np.ndarray) -> float:
    """Fraction of tokens whose predicted label changed, over tokens predicted (id >= 0) in both.

    Args:
        prev_pred: array of shape (n_tokens,), predicted label ids; -1 if unknown.
        cur_pred: array of shape (n_tokens,), rows aligned with ``prev_pred``.

    Returns:
        A fraction in [0, 1]; NaN when no token is predicted in both.
    """
    a, b = np.asarray(prev_pred, dtype=np.int64), np.asarray(cur_pred, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"prev_pred and cur_pred must have the same shape; got {a.shape} and {b.shape}.")
    known = (a >= 0) & (b >= 0)
    return float((a[known] != b[known]).mean()) if known.any() else _NAN


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def _entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` of a tag sequence, as ``seqeval.metrics.sequence_labeling.get_entities``."""
    chunks: set[tuple[str, int, int]] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, name in enumerate([*tags, "O"]):
        tag, type_ = name[:1], name[1:].split("-", 1)[-1] or "_"
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.add((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_f1(sentence_tags: Mapping[int, tuple[np.ndarray, np.ndarray]], label_names: Sequence[str]) -> float:
    """Entity-level micro F1, as ``seqeval.metrics.f1_score`` in its default (conlleval) mode.

    Args:
        sentence_tags: sentence id to ``(gold, pred)`` label-id arrays of shape (n_labelled_tokens,).
        label_names: label id to BIO name (``B-BRAND``, ``I-BRAND``, ``O``).

    Returns:
        F1 in [0, 1] (0 when there is no entity at all, as seqeval); NaN when there is no
        sentence or any prediction is unknown (id outside ``label_names``, e.g. -1).
    """
    names = list(label_names)
    gold_tags: list[str] = []
    pred_tags: list[str] = []
    for sid, (gold, pred) in sentence_tags.items():
        gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
        if gold.shape != pred.shape or ((gold < 0) | (gold >= len(names))).any():
            raise ValueError(f"Sentence {sid}: gold and pred must be aligned ids of label_names.")
        if ((pred < 0) | (pred >= len(names))).any():
            return _NAN
        gold_tags += [names[i] for i in gold] + ["O"]  # the separator seqeval puts between sentences
        pred_tags += [names[i] for i in pred] + ["O"]
    if not sentence_tags:
        return _NAN
    true, found = _entities(gold_tags), _entities(pred_tags)
    total = len(true) + len(found)
    return 2.0 * len(true & found) / total if total else 0.0


def _trustworthiness(sq_dist: torch.Tensor, coords: torch.Tensor, k: int) -> float:
    """Trustworthiness from squared distances (n, n) in the original space and coords (n, n_components)."""
    n = len(coords)
    if not 1 <= k < n / 2:
        return _NAN
    dist_x = sq_dist.clone().fill_diagonal_(torch.inf)
    dist_e = torch.cdist(coords, coords, compute_mode="donot_use_mm_for_euclid_dist")  # exact, as a k-d tree
    neighbours = dist_e.fill_diagonal_(torch.inf).topk(k, dim=1, largest=False).indices
    # The rank in X of each projected neighbour is 1 + the number of points closer in X. Bucket
    # every distance among the row's k sorted neighbour distances, then count per bucket.
    reach = dist_x.gather(1, neighbours).sort(1).values
    bucket = torch.searchsorted(reach, dist_x, right=True)
    closer = torch.zeros(n, k + 1, dtype=torch.int64).scatter_add_(1, bucket, torch.ones_like(bucket))
    ranks = closer.cumsum(1)[:, :k] + 1
    penalty = int((ranks - k).clamp_min_(0).sum())
    return 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


def trustworthiness(X: np.ndarray, coords: np.ndarray, k: int = 10, max_points: int = _MAX_POINTS, seed: int = 0) -> float:
    """How well the projection's neighbourhoods hold true neighbours (as ``sklearn.manifold.trustworthiness``).

    Args:
        X: array of shape (n_tokens, n_features), the original space.
        coords: array of shape (n_tokens, n_components), the projection.
        k: neighbours per token.
        max_points: above this many tokens, score the rows
            ``np.sort(np.random.default_rng(seed).choice(n_tokens, max_points, replace=False))``.
        seed: seed of that subsample.

    Returns:
        A score in [0, 1]; NaN unless ``1 <= k < scored tokens / 2`` (scikit-learn raises there).
    """
    x, e = _f64(X), _f64(coords)
    if _rows(x, "X") != _rows(e, "coords"):
        raise ValueError(f"X has {x.shape[0]} rows but coords has {e.shape[0]}.")
    idx = torch.from_numpy(_subsample(x.shape[0], max_points, seed))
    x = x[idx]
    return _trustworthiness(_sq_dists(x, x), e[idx], k)


def _accuracy(gold: np.ndarray, pred: np.ndarray) -> float:
    known = pred >= 0
    return float((gold[known] == pred[known]).mean()) if known.any() else _NAN


def _quality(view: str, X: np.ndarray, labels: np.ndarray, coords: np.ndarray | None) -> dict[str, float]:
    """Silhouette, kNN purity and trustworthiness of one view, sharing one distance matrix."""
    x = _f64(X)
    if _rows(x, view) != len(labels):
        raise ValueError(f"View {view!r} has {x.shape[0]} rows but there are {len(labels)} labels.")
    idx = _subsample(len(labels), _MAX_POINTS, seed=0)  # the defaults of the public functions
    sub = x[torch.from_numpy(idx)]
    sq_dist = _sq_dists(sub, sub)
    whole = len(idx) == len(labels)
    out = {
        f"{view}/silhouette": _silhouette(sq_dist, labels[idx]),
        f"{view}/knn_purity": _knn_purity(x, labels, 10, sq_dist) if whole else knn_purity(X, labels),
    }
    if coords is not None:
        e = _f64(coords)
        if _rows(e, f"coords[{view!r}]") != len(labels):
            raise ValueError(f"coords[{view!r}] has {e.shape[0]} rows but view {view!r} has {len(labels)}.")
        out[f"{view}/trustworthiness"] = _trustworthiness(sq_dist, e[torch.from_numpy(idx)], 10)
    return out


def epoch_metrics(
    snapshot: Snapshot,
    coords: Mapping[str, np.ndarray],
    previous: Snapshot | None = None,
    first: Snapshot | None = None,
) -> dict[str, float]:
    """Every metric of one epoch's snapshot, as a flat dict of Python floats.

    Keys: ``n_tokens``, ``sample_accuracy``, ``entity_f1``, ``prediction_change`` (vs ``previous``)
    and, per view ``v``: ``v/cka_prev``, ``v/displacement_mean``, ``v/displacement_median``,
    ``v/centroid_shift/<label>`` (vs ``previous``, over shared tokens), ``v/cka_first`` (vs
    ``first``), ``v/silhouette``, ``v/knn_purity`` and ``v/trustworthiness`` (if ``v`` is in
    ``coords``). Keys needing ``previous`` or ``first`` are omitted when it is None or lacks the view.

    Args:
        snapshot: this epoch's tokens.
        coords: view name to projected coordinates, of shape (n_tokens, 2 or 3).
        previous: the previous epoch's snapshot.
        first: the first epoch's snapshot.
    """
    out = {
        "n_tokens": float(len(snapshot)),
        "sample_accuracy": _accuracy(snapshot.gold, snapshot.pred),
        "entity_f1": entity_f1(snapshot.sentence_tags, snapshot.label_names),
    }
    if previous is not None:
        i_prev, i_cur = match_tokens(previous, snapshot)
        out["prediction_change"] = prediction_change_rate(previous.pred[i_prev], snapshot.pred[i_cur])
    if first is not None:
        i_first, i_cur_first = match_tokens(first, snapshot)
    for view, X in snapshot.views.items():
        if previous is not None and view in previous.views:
            a, b = np.asarray(previous.views[view])[i_prev], np.asarray(X)[i_cur]
            out[f"{view}/cka_prev"] = linear_cka(a, b)
            if a.shape == b.shape:
                moved = cosine_displacement(a, b)
                out[f"{view}/displacement_mean"] = float(moved.mean()) if len(moved) else _NAN
                out[f"{view}/displacement_median"] = float(np.median(moved)) if len(moved) else _NAN
                shifts = centroid_shift(a, b, snapshot.gold[i_cur], snapshot.label_names)
                out.update({f"{view}/centroid_shift/{name}": v for name, v in shifts.items()})
        if first is not None and view in first.views:
            out[f"{view}/cka_first"] = linear_cka(np.asarray(first.views[view])[i_first], np.asarray(X)[i_cur_first])
        out.update(_quality(view, X, snapshot.gold, coords.get(view)))
    return {key: float(value) for key, value in out.items()}

"""Per-epoch metrics of a :class:`~lightning_ner_viz.snapshot.Snapshot`, in numpy and torch only.

Drift metrics (CKA, cosine displacement, centroid shift) compare views in their original
feature space; only :func:`trustworthiness` looks at the projection. Metrics given too few
tokens or labels return NaN instead of raising. Functions taking ``max_points`` score, above that
many tokens, the rows ``np.sort(np.random.default_rng(seed).choice(n_tokens, max_points, replace=False))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lightning_ner_viz.snapshot import Snapshot

_NAN = float("nan")
_MAX_POINTS = 2000
_CHUNK_BYTES = 64 * 2**20
"""Memory budget of one block of distances in :func:`knn_purity`."""


def _matrix(X: np.ndarray, name: str, n_rows: int | None = None, dtype: type = np.float64) -> np.ndarray:
    X = np.asarray(X, dtype=dtype)
    if X.ndim != 2 or n_rows not in (None, len(X)):
        raise ValueError(f"{name} must have shape ({n_rows or 'n_tokens'}, n_features); got shape {X.shape}.")
    return X


def _sq_dists(x: np.ndarray) -> torch.Tensor:
    """Squared Euclidean distances (n, n) between the rows of x (n, d), as scikit-learn's, with +inf diagonal."""
    d = x @ x.T  # numpy spots the transpose and runs half the multiplications (syrk)
    sq = np.einsum("ij,ij->i", x, x)
    d *= -2.0
    d += sq[:, None]
    d += sq[None, :]
    np.fill_diagonal(np.maximum(d, 0.0, out=d), np.inf)  # a token is not its own neighbour
    return torch.from_numpy(d)


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_points`` of them drawn without replacement."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear centered kernel alignment (Kornblith et al., 2019), in float64.

    Args:
        X: array of shape (n_tokens, n_features_x).
        Y: array of shape (n_tokens, n_features_y), rows aligned with ``X``.

    Returns:
        Similarity in [0, 1], invariant to rotation and isotropic scaling; NaN with < 2 rows or a constant matrix.
    """
    x, y = _matrix(X, "X"), _matrix(Y, "Y", len(X))
    if len(x) < 2:
        return _NAN
    x, y = x - x.mean(0), y - y.mean(0)
    n, dx, dy = len(x), x.shape[1], y.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:  # the (n, n) Gram matrices are the cheaper route
        kx, ky = x @ x.T, y @ y.T
        hsic, norm_x, norm_y = float(np.vdot(kx, ky)), np.linalg.norm(kx), np.linalg.norm(ky)
    else:
        hsic = float(np.square(y.T @ x).sum())
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    return hsic / float(norm_x * norm_y) if norm_x > 0 and norm_y > 0 else _NAN


def cosine_displacement(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per-row cosine distance ``1 - cos(prev_i, cur_i)``, array of shape (n_tokens,) in [0, 2].

    A row that is zero in both matrices is at distance 0; zero in one only, at distance 1.

    Args:
        prev: array of shape (n_tokens, n_features).
        cur: array of shape (n_tokens, n_features).
    """
    a, b = _matrix(prev, "prev"), _matrix(cur, "cur")
    if a.shape != b.shape:
        raise ValueError(f"prev and cur must have the same shape; got {a.shape} and {b.shape}.")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = ~(a.any(1) | b.any(1))
    cos = np.where(norms > 0, np.einsum("ij,ij->i", a, b) / np.where(norms > 0, norms, 1.0), both_zero)
    return np.clip(1.0 - cos, 0.0, 2.0)


def match_tokens(prev: Snapshot, cur: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(into_prev, into_cur)``, int64 arrays of shape (n_shared,), of the token ids both hold, ascending."""
    _, i_prev, i_cur = np.intersect1d(prev.token_id, cur.token_id, return_indices=True)
    return i_prev.astype(np.int64), i_cur.astype(np.int64)


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
        Label name to ``||mean(prev[label]) - mean(cur[label])||`` over the RMS distance of ``cur``'s rows
        to their mean (NaN if that is 0), for the labels present.
    """
    a, b, labels = _matrix(prev, "prev"), _matrix(cur, "cur"), np.asarray(labels, dtype=np.int64)
    if a.shape != b.shape or len(b) != len(labels):
        raise ValueError(f"prev {a.shape}, cur {b.shape} and labels {labels.shape} must be row-aligned.")
    if len(labels) == 0:
        return {}
    spread = float(np.sqrt(np.square(b - b.mean(0)).sum(1).mean()))
    out: dict[str, float] = {}
    for label in np.unique(labels):
        mask = labels == label
        shift = float(np.linalg.norm(a[mask].mean(0) - b[mask].mean(0)))
        name = label_names[label] if 0 <= label < len(label_names) else str(label)
        out[name] = shift / spread if spread > 0 else _NAN
    return out


def _silhouette(sq_dist: torch.Tensor, labels: np.ndarray) -> float:
    _, inverse = np.unique(labels, return_inverse=True)
    n, n_labels = len(labels), int(inverse.max(initial=-1)) + 1
    if not 2 <= n_labels <= n - 1:  # scikit-learn raises there
        return _NAN
    own = torch.from_numpy(inverse.reshape(-1)).long()
    onehot = torch.nn.functional.one_hot(own, n_labels).double()
    sums, counts = sq_dist.sqrt().fill_diagonal_(0.0) @ onehot, onehot.sum(0)
    intra = sums.gather(1, own[:, None]).squeeze(1) / (counts[own] - 1)
    inter = (sums / counts).scatter_(1, own[:, None], torch.inf).min(1).values
    scores = torch.nan_to_num((inter - intra) / torch.maximum(intra, inter)) * (counts[own] > 1)
    return float(scores.mean())


def silhouette_by_label(X: np.ndarray, labels: np.ndarray, max_points: int = _MAX_POINTS, seed: int = 0) -> float:
    """Mean Euclidean silhouette coefficient of the gold-label clusters, as scikit-learn's.

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        max_points, seed: the deterministic subsample (see the module's docstring).

    Returns:
        Score in [-1, 1]; NaN unless 2 <= number of labels < number of scored tokens.
    """
    labels = np.asarray(labels)
    idx = _subsample(len(labels), max_points, seed)
    return _silhouette(_sq_dists(_matrix(X, "X", len(labels))[idx]), labels[idx])


def _knn_purity(x: np.ndarray, labels: np.ndarray, k: int, sq_dist: torch.Tensor | None = None) -> float:
    """kNN purity of the rows of x (n, d), from ``sq_dist`` (n, n) of :func:`_sq_dists` if given, else by blocks."""
    n, lab = len(labels), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    k, hits = min(k, n - 1), 0
    if k < 1:
        return _NAN
    if sq_dist is None:
        x = x - x.mean(0)  # distances are unchanged, and float rounding shrinks
        sq = torch.from_numpy(np.einsum("ij,ij->i", x, x))
    step = n if sq_dist is not None else max(1, _CHUNK_BYTES // (x.itemsize * n))
    for start in range(0, n, step):
        stop = min(start + step, n)
        if sq_dist is not None:
            d = sq_dist
        else:  # ||x_i||^2 is constant along row i, so it is left out: the ranking is the same
            d = torch.from_numpy(x[start:stop] @ x.T).mul_(-2.0).add_(sq)
            d[torch.arange(stop - start), torch.arange(start, stop)] = torch.inf
        neighbours = d.topk(k, dim=1, largest=False).indices
        hits += int((lab[neighbours] == lab[start:stop, None]).sum())
    return hits / (n * k)


def knn_purity(X: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each token's ``k`` nearest neighbours (Euclidean, not itself) sharing its gold label.

    Distances are computed in float32, in blocks of rows of about 64 MB.

    Args:
        X: array of shape (n_tokens, n_features).
        labels: array of shape (n_tokens,), gold label ids.
        k: neighbours per token; ``min(k, n_tokens - 1)`` are used (NaN with fewer than 2 tokens).
    """
    labels = np.asarray(labels)
    return _knn_purity(_matrix(X, "X", len(labels), np.float32), labels, k)


def prediction_change_rate(prev_pred: np.ndarray, cur_pred: np.ndarray) -> float:
    """Fraction of tokens whose predicted label changed, among those predicted (id >= 0) in both; NaN if none.

    Args:
        prev_pred: array of shape (n_tokens,), predicted label ids, -1 if unknown.
        cur_pred: array of shape (n_tokens,), rows aligned with ``prev_pred``.
    """
    a, b = np.asarray(prev_pred, dtype=np.int64), np.asarray(cur_pred, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"prev_pred and cur_pred must have the same shape; got {a.shape} and {b.shape}.")
    known = (a >= 0) & (b >= 0)
    return float((a[known] != b[known]).mean()) if known.any() else _NAN


def _entities(names: list[str]) -> set[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` of a tag sequence, exactly as seqeval's ``get_entities``."""
    chunks: set[tuple[str, int, int]] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, name in enumerate([*names, "O"]):
        tag, type_ = name[:1] or "O", name[1:].split("-", 1)[-1] or "_"
        type_changed = prev_type != type_
        if prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO") or (prev_tag not in "O." and type_changed):
            chunks.add((prev_type, begin, i - 1))
        if tag in "BS" or (prev_tag in "ESO" and tag in "EI") or (tag not in "O." and type_changed):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_f1(sentence_tags: Mapping[int, tuple[np.ndarray, np.ndarray]], label_names: Sequence[str]) -> float:
    """Entity-level micro F1, as ``seqeval.metrics.f1_score`` in its default (conlleval) mode.

    Args:
        sentence_tags: sentence id to ``(gold, pred)`` label-id arrays of shape (n_labelled_tokens,).
        label_names: label id to BIO name (``B-BRAND``, ``I-BRAND``, ``O``).

    Returns:
        F1 in [0, 1], 0 when there is no entity at all (as seqeval); NaN without sentences or
        when a prediction is unknown (an id outside ``label_names``, such as -1).

    Raises:
        ValueError: when a sentence's gold and pred differ in length or gold is not a label id.
    """
    names = list(label_names)
    tags: tuple[list[str], list[str]] = ([], [])
    for sid, (gold, pred) in sentence_tags.items():
        gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
        if gold.shape != pred.shape or ((gold < 0) | (gold >= len(names))).any():
            raise ValueError(f"Sentence {sid}: gold and pred must be aligned ids into label_names.")
        if ((pred < 0) | (pred >= len(names))).any():
            return _NAN
        for seq, ids in zip(tags, (gold, pred)):
            seq += [names[i] for i in ids] + ["O"]  # seqeval's separator between sentences
    if not sentence_tags:
        return _NAN
    true, found = _entities(tags[0]), _entities(tags[1])
    total = len(true) + len(found)
    return 2.0 * len(true & found) / total if total else 0.0


def _trustworthiness(sq_dist: torch.Tensor, coords: np.ndarray, k: int) -> float:
    n = len(coords)
    if not 1 <= k < n / 2:  # scikit-learn raises there
        return _NAN
    e = torch.from_numpy(coords)
    dist_e = torch.cdist(e, e, compute_mode="donot_use_mm_for_euclid_dist")  # exact, as a k-d tree
    neighbours = dist_e.fill_diagonal_(torch.inf).topk(k, dim=1, largest=False).indices
    reach = sq_dist.gather(1, neighbours)  # a projected neighbour's rank in X is 1 + the points closer in X
    ranks = torch.stack([(sq_dist < reach[:, m, None]).sum(1) + 1 for m in range(k)], 1)
    penalty = int((ranks - k).clamp_min_(0).sum())
    return 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


def trustworthiness(
    X: np.ndarray, coords: np.ndarray, k: int = 10, max_points: int = _MAX_POINTS, seed: int = 0
) -> float:
    """How well the projection keeps true neighbours, as ``sklearn.manifold.trustworthiness``.

    Args:
        X: array of shape (n_tokens, n_features), the original space.
        coords: array of shape (n_tokens, n_components), the projection.
        k: neighbours per token.
        max_points, seed: the deterministic subsample (see the module's docstring).

    Returns:
        Score in [0, 1]; NaN unless ``1 <= k < scored tokens / 2``.
    """
    x = _matrix(X, "X")
    idx = _subsample(len(x), max_points, seed)
    return _trustworthiness(_sq_dists(x[idx]), _matrix(coords, "coords", len(x))[idx], k)


def _quality(view: str, X: np.ndarray, labels: np.ndarray, coords: np.ndarray | None) -> dict[str, float]:
    """Silhouette, kNN purity and trustworthiness of one view, from one shared distance matrix."""
    x = _matrix(X, f"views[{view!r}]", len(labels))
    idx = _subsample(len(x), _MAX_POINTS, seed=0)  # the public functions' defaults
    sq_dist = _sq_dists(x[idx])
    out = {
        f"{view}/silhouette": _silhouette(sq_dist, labels[idx]),
        f"{view}/knn_purity": _knn_purity(x, labels, 10, sq_dist) if len(idx) == len(x) else knn_purity(x, labels),
    }
    if coords is not None:
        e = _matrix(coords, f"coords[{view!r}]", len(x))[idx]
        out[f"{view}/trustworthiness"] = _trustworthiness(sq_dist, e, 10)
    return out


def epoch_metrics(
    snapshot: Snapshot,
    coords: Mapping[str, np.ndarray],
    previous: Snapshot | None = None,
    first: Snapshot | None = None,
) -> dict[str, float]:
    """Every metric of one epoch's snapshot, as a flat dict of Python floats.

    Keys: ``n_tokens``, ``sample_accuracy``, ``entity_f1``, ``prediction_change`` and, per view
    ``v``: ``v/cka_prev``, ``v/displacement_mean``, ``v/displacement_median``,
    ``v/centroid_shift/<label>`` (all vs ``previous``, over shared tokens), ``v/cka_first``,
    ``v/silhouette``, ``v/knn_purity`` and ``v/trustworthiness`` (when ``v`` is in ``coords``).
    Keys needing ``previous`` or ``first`` are left out when it is None or lacks the view.

    Args:
        snapshot: this epoch's tokens.
        coords: view name to projected coordinates, arrays of shape (n_tokens, 2 or 3).
        previous: the previous epoch's snapshot.
        first: the first epoch's snapshot.
    """
    known = snapshot.pred >= 0
    out = {
        "n_tokens": float(len(snapshot)),
        "sample_accuracy": float(snapshot.correct[known].mean()) if known.any() else _NAN,
        "entity_f1": entity_f1(snapshot.sentence_tags, snapshot.label_names),
    }
    if previous is not None:
        i_prev, i_cur = match_tokens(previous, snapshot)
        out["prediction_change"] = prediction_change_rate(previous.pred[i_prev], snapshot.pred[i_cur])
    for view, X in snapshot.views.items():
        if previous is not None and view in previous.views:
            a, b = np.asarray(previous.views[view])[i_prev], np.asarray(X)[i_cur]
            out[f"{view}/cka_prev"] = linear_cka(a, b)
            if a.shape == b.shape:
                moved = cosine_displacement(a, b)
                out[f"{view}/displacement_mean"] = float(moved.mean()) if len(moved) else _NAN
                out[f"{view}/displacement_median"] = float(np.median(moved)) if len(moved) else _NAN
                shifts = centroid_shift(a, b, snapshot.gold[i_cur], snapshot.label_names)
                out.update({f"{view}/centroid_shift/{name}": shift for name, shift in shifts.items()})
        if first is not None and view in first.views:
            i_first, i_now = match_tokens(first, snapshot)
            out[f"{view}/cka_first"] = linear_cka(np.asarray(first.views[view])[i_first], np.asarray(X)[i_now])
        out.update(_quality(view, X, snapshot.gold, coords.get(view)))
    return {key: float(value) for key, value in out.items()}

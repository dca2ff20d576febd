"""A linear probe: how well a logistic regression reads the gold label off one layer's vectors (cross-validated)."""

from __future__ import annotations

import warnings

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.analysis._checks import NAN

PROBE_FOLDS = 3
"""Cross-validation folds; a label with fewer tokens than this is left out of the probe."""
PROBE_MAX_TOKENS = 1000
"""At most this many tokens (a seeded subset) are probed: with 100 solver iterations at tolerance 1e-3 on one BLAS
thread, a MiniLM-sized layer (384 floats) takes about 0.15 s (benchmarks/layer_cost.py)."""


def probe_accuracy(X: np.ndarray, labels: np.ndarray, seed: int = 0, max_tokens: int = PROBE_MAX_TOKENS) -> float:
    """Mean held-out accuracy of a standardised multinomial logistic regression from ``X`` to ``labels``.

    Deterministic for a ``seed``: the subset, the stratified folds and the solver (lbfgs, at most 100 iterations,
    tolerance 1e-3) are all fixed by it.

    Args:
        X: array of shape (n_tokens, n_features), one layer's vectors.
        labels: array of shape (n_tokens,), gold label ids.
        seed: the subset's and folds' random state.
        max_tokens: probe a seeded subset of this many tokens at most.

    Returns:
        The accuracy in [0, 1]; NaN when fewer than two labels have :data:`PROBE_FOLDS` tokens.

    Raises:
        ModuleNotFoundError: without scikit-learn, naming the ``analysis`` extra.
    """
    require("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    labels = np.asarray(labels, dtype=np.int64)
    X = np.asarray(X, dtype=np.float32)
    keep = np.flatnonzero(np.isin(labels, np.flatnonzero(np.bincount(labels) >= PROBE_FOLDS)))
    if len(keep) > max_tokens:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_tokens, replace=False))
    enough = np.isin(labels[keep], np.flatnonzero(np.bincount(labels[keep]) >= PROBE_FOLDS))  # again, after the subset
    keep = keep[enough]
    y = labels[keep]
    if len(np.unique(y)) < 2:
        return NAN
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=100, tol=1e-3))
    folds = StratifiedKFold(n_splits=PROBE_FOLDS, shuffle=True, random_state=seed)
    # one BLAS thread: 9x faster than two pools contending on 2 cores (0.13 s against 1.2 s for a MiniLM-sized
    # layer), and the same sums in the same order whatever the machine's thread settings
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a probe stopped at 100 iterations still reads the layer
        return float(np.mean(cross_val_score(model, X[keep], y, cv=folds, n_jobs=1)))

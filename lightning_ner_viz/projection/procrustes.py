"""Orthogonal Procrustes: the rotation/reflection and shift that best map one cloud onto another, at the target's size."""

from __future__ import annotations

import numpy as np

Similarity = tuple[np.ndarray, float, np.ndarray]


def procrustes_fit(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The similarity taking ``source`` onto ``target``: least-squares rotation (reflections allowed), size-matching scale.

    The scale makes the two clouds equally large (the same root-mean-square spread about
    their means). The least-squares scale would be smaller by the clouds' correlation, so a
    chain of alignments (each epoch onto the previous one) would shrink every later epoch.

    Args:
        source, target: arrays of shape (n_points, k), rows paired.

    Returns:
        ``rotation`` (k, k) orthogonal, ``scale`` > 0 and ``translation`` (k,), such that
        ``scale * source @ rotation + translation`` is as large as ``target`` and, at that
        size, closest to it.
    """
    a, b = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if a.ndim != 2 or a.shape != b.shape or len(a) == 0:
        raise ValueError(f"source and target must be paired (n_points, k) arrays; got {a.shape} and {b.shape}.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    a0, b0 = a - mu_a, b - mu_b
    u, _, vt = np.linalg.svd(a0.T @ b0)
    rotation = u @ vt
    norm_a, norm_b = float((a0**2).sum()), float((b0**2).sum())
    scale = float(np.sqrt(norm_b / norm_a)) if norm_a > 0 and norm_b > 0 else 1.0
    return rotation, scale, mu_b - scale * mu_a @ rotation


def procrustes_apply(X: np.ndarray, rotation: np.ndarray, scale: float, translation: np.ndarray) -> np.ndarray:
    """Apply a similarity from :func:`procrustes_fit` to X of shape (n_points, k)."""
    return scale * np.asarray(X, np.float64) @ rotation + translation


def align_procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` (n_points, k) rotated, reflected, scaled and shifted onto ``target``."""
    return procrustes_apply(source, *procrustes_fit(source, target))


def extent(coords: np.ndarray) -> float:
    """A cloud's size: the largest range over its axes (0.0 for an empty cloud)."""
    return float(np.ptp(coords, axis=0).max()) if len(coords) else 0.0

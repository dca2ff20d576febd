"""Per-token trajectories: where each tracked token was, epoch after epoch."""

from __future__ import annotations

import numpy as np

from lightning_ner_viz.snapshot import Snapshot


def pick_trajectory_tokens(snapshot: Snapshot, k: int) -> np.ndarray:
    """Up to ``k`` token ids, taken round-robin over gold labels so every label has paths."""
    by_label = [snapshot.token_id[snapshot.gold == label] for label in np.unique(snapshot.gold)]
    picked: list[int] = []
    for rank in range(max((len(ids) for ids in by_label), default=0)):
        for ids in by_label:
            if rank < len(ids) and len(picked) < k:
                picked.append(int(ids[rank]))
    return np.asarray(sorted(picked), dtype=np.int64)


class TrajectoryHistory:
    """Remembers the coordinates of a fixed set of tokens per view, one row per epoch.

    Args:
        max_tokens: how many tokens to follow (chosen at the first epoch).
    """

    def __init__(self, max_tokens: int = 200) -> None:
        self.max_tokens = max_tokens
        self.token_ids: np.ndarray | None = None
        self.paths: dict[str, dict[int, list[np.ndarray]]] = {}

    def add(self, snapshot: Snapshot, coords: dict[str, np.ndarray]) -> None:
        """Append this epoch's position of every followed token present in the snapshot."""
        if self.token_ids is None:
            self.token_ids = pick_trajectory_tokens(snapshot, self.max_tokens)
        rows = {int(t): i for i, t in enumerate(snapshot.token_id)}
        for view, xyz in coords.items():
            paths = self.paths.setdefault(view, {})
            for token in self.token_ids.tolist():
                if token in rows:
                    paths.setdefault(token, []).append(np.asarray(xyz[rows[token]], dtype=np.float32))

    def strips(self, view: str) -> tuple[list[np.ndarray], list[int]]:
        """Line strips (one array of shape (n_epochs_seen, n_components) per token with 2+ points) and their token ids."""
        paths = self.paths.get(view, {})
        ids = [t for t, p in paths.items() if len(p) >= 2]
        return [np.stack(paths[t]) for t in ids], ids

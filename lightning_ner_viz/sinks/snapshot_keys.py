"""How the metric sinks (W&B, TensorBoard) keep snapshots apart: where a snapshot's scalars go.

A metric backend draws every value of one key as one curve. The fit's validations make that
curve; a ``validate()`` call is another model state (the untrained *baseline* before fit, or
the final model after it), so its scalars go under their own namespace and are never drawn
as a point of the fit's curve:

- fit: ``<prefix>/<name>``, e.g. ``ner_viz/hidden/cka_prev``;
- a baseline (``validate()`` at step 0): ``<prefix>/baseline/<name>``;
- any other ``validate()``: ``<prefix>/validate/<name>``.

Entries that are not curves (tables, plots, projector tensors) keep one key per view and are
told apart by the snapshot's unique name (:attr:`lightning_ner_viz.keys.SnapshotKey.name`).
"""

from __future__ import annotations

from lightning_ner_viz.keys import SnapshotKey

BASELINE = "baseline"
"""The namespace of a baseline's scalars."""
VALIDATE = "validate"
"""The namespace of the scalars of a ``validate()`` call that is not a baseline."""


def scalar_namespace(key: SnapshotKey) -> str:
    """``""`` for a fit validation, :data:`BASELINE` for a baseline, :data:`VALIDATE` for another ``validate()``."""
    if key.stage == "fit":
        return ""
    return BASELINE if key.is_baseline else VALIDATE


def scalar_prefix(prefix: str, key: SnapshotKey) -> str:
    """The prefix of the snapshot's scalar keys: ``prefix``, ``prefix/baseline`` or ``prefix/validate``."""
    namespace = scalar_namespace(key)
    return f"{prefix}/{namespace}" if namespace else prefix

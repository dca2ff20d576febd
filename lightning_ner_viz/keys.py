"""Which validation a snapshot holds: its stage, epoch, global step and run; its directory name and order.

Every validation that is captured gets its own key, so none overwrites another:

- ``fit``: the validations inside ``trainer.fit`` (the end of each epoch, and every
  ``val_check_interval``), named ``epoch=0002-step=0000120``;
- ``validate``: each ``trainer.validate()`` call, named ``validate=00-step=0000000`` (``run``
  counts the callback's validate calls). One at step 0 is a *baseline* (the untrained model).

Snapshots are ordered by global step; at the same step a fit validation comes before a
``validate()`` (which is called after it). Directories named ``epoch=0003`` (written before
keys carried the step) are still read, and sort first, by epoch.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

Stage = Literal["fit", "validate"]
STAGES: tuple[Stage, ...] = ("fit", "validate")

_NAME = re.compile(r"^(?:epoch=(?P<epoch>\d+)(?:-step=(?P<step>\d+))?|validate=(?P<run>\d+)-step=(?P<vstep>\d+))$")


class SnapshotKey(NamedTuple):
    """The identity of one captured validation.

    Attributes:
        stage: ``"fit"`` or ``"validate"`` (the Trainer call that ran the validation).
        epoch: the trainer's epoch.
        step: the trainer's global step; ``-1`` for a legacy ``epoch=NNNN`` directory.
        run: for ``validate``: which of the callback's ``validate()`` calls (0, 1, ...); 0 for ``fit``.
    """

    stage: Stage
    epoch: int
    step: int
    run: int = 0

    @property
    def name(self) -> str:
        """The snapshot's directory name (and its id in every sink)."""
        if self.stage == "validate":
            return f"validate={self.run:02d}-step={self.step:07d}"
        if self.step < 0:
            return f"epoch={self.epoch:04d}"
        return f"epoch={self.epoch:04d}-step={self.step:07d}"

    @property
    def is_baseline(self) -> bool:
        """A ``validate()`` before any training step: the untrained model."""
        return self.stage == "validate" and self.step <= 0

    @property
    def label(self) -> str:
        """How pictures name it: ``epoch 2 · step 120``, ``baseline · validate 0 · step 0``."""
        if self.stage == "fit":
            return f"epoch {self.epoch}" if self.step < 0 else f"epoch {self.epoch} · step {self.step}"
        kind = "baseline · validate" if self.is_baseline else "validate"
        return f"{kind} {self.run} · step {self.step}"

    def order(self) -> tuple[int, int, int, int]:
        """Sort key: global step, then fit before validate, then epoch and run."""
        return (self.step, self.stage != "fit", self.epoch, self.run)


def parse_key(name: str) -> SnapshotKey | None:
    """The key a snapshot directory name holds, or ``None`` for any other name."""
    found = _NAME.match(name)
    if found is None:
        return None
    if found["run"] is not None:
        return SnapshotKey("validate", 0, int(found["vstep"]), int(found["run"]))
    return SnapshotKey("fit", int(found["epoch"]), int(found["step"]) if found["step"] is not None else -1)


def key_from_name(name: str) -> SnapshotKey:
    """Like :func:`parse_key`, but refuses a name that is not a snapshot's.

    Raises:
        ValueError: naming the expected forms.
    """
    key = parse_key(name)
    if key is None:
        raise ValueError(f"{name!r} is not a snapshot name; expected 'epoch=0002-step=0000120' (fit), "
                         "'validate=00-step=0000000' (validate) or 'epoch=0002' (older runs).")
    return key


def sorted_keys(keys: list[SnapshotKey]) -> list[SnapshotKey]:
    """``keys`` in the order the snapshots were captured."""
    return sorted(keys, key=SnapshotKey.order)


def ordered_names(names: list[str] | set[str]) -> list[str]:
    """Snapshot names in the order they were captured (each once)."""
    return sorted(set(names), key=lambda name: key_from_name(name).order())

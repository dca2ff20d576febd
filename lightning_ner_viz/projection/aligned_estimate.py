"""How long the offline ``aligned`` frame will take, said before AlignedUMAP starts and after each layout.

AlignedUMAP lays out every snapshot of a view together, so its time grows with the points of
all snapshots: 74 s for three snapshots of three 2,000-point layouts (the demo's ``hidden``,
``emissions`` and ``entities``) on the docs' 2-core machine, 4.1 ms per point. The first
estimate uses that rate; after each layout the rate measured on this machine replaces it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

SECONDS_PER_POINT = 0.0041
"""AlignedUMAP's seconds per point and snapshot on the docs' machine (docs/performance.md, section 5)."""


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class AlignedEstimate:
    """Prints how long the aligned layouts should take, then how long is left after each one.

    Args:
        points: layout name (a view or a group) to its points summed over the snapshots.
        say: where the lines go (default: standard error).
    """

    def __init__(self, points: dict[str, int], say: Callable[[str], None] | None = None) -> None:
        self.points = dict(points)
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self._started = time.monotonic()
        self._done = 0

    @property
    def total(self) -> int:
        """Points over every layout and snapshot."""
        return sum(self.points.values())

    def begin(self, snapshots: int) -> None:
        """Say what AlignedUMAP is about to lay out and how long that should take."""
        names = ", ".join(self.points)
        self.say(f"lightning-ner-viz: AlignedUMAP lays out {snapshots} snapshots together, {len(self.points)} "
                 f"layouts ({names}), {self.total:,} points in all: about {_duration(self.total * SECONDS_PER_POINT)} "
                 f"on a 2-core machine like the docs' ({SECONDS_PER_POINT * 1000:.1f} ms per point). "
                 "`--frame fixed` draws the same snapshots in a few seconds per snapshot.")
        self._started = time.monotonic()

    def skipped(self, name: str) -> None:
        """Leave the layout ``name`` out of the estimate: it is not laid out after all."""
        self.points.pop(name, None)

    def finished(self, name: str) -> None:
        """Say that the layout ``name`` is done, and how long the rest should take at this machine's rate."""
        self._done += self.points.get(name, 0)
        spent = time.monotonic() - self._started
        left = self.total - self._done
        if left <= 0 or self._done == 0:
            self.say(f"lightning-ner-viz: AlignedUMAP done in {_duration(spent)}.")
            return
        self.say(f"lightning-ner-viz: AlignedUMAP layout {name!r} done ({_duration(spent)} so far); about "
                 f"{_duration(spent / self._done * left)} left.")

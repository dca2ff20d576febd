"""How far the pictures are behind training: per snapshot, from its capture to the moment the sinks had it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from lightning_ner_viz.keys import key_from_name


class RenderLag:
    """Times each snapshot from its hand-over to the rendering (right after its validation's capture) to its logging.

    Attributes:
        seconds: snapshot name to its lag in seconds, for those rendered (in order).
    """

    def __init__(self) -> None:
        self.starting = False  # the projector child is booting and warming up
        self.seconds: dict[str, float] = {}
        self._since: dict[str, float] = {}  # snapshot name -> when it was handed over (monotonic)
        self._lock = threading.Lock()

    def handed_over(self, name: str) -> None:
        """The snapshot ``name`` was captured and queued for rendering."""
        with self._lock:
            self._since.setdefault(name, time.monotonic())

    def rendered(self, name: str) -> None:
        """The sinks have the snapshot ``name``."""
        with self._lock:
            since = self._since.pop(name, None)
            if since is not None:
                self.seconds[name] = time.monotonic() - since

    @contextlib.contextmanager
    def while_starting(self) -> Iterator[None]:
        """Marks the projector child as starting (the progress bar says so) for the ``with`` block."""
        self.starting = True
        try:
            yield
        finally:
            self.starting = False

    def forget(self, name: str) -> float:
        """The snapshot ``name`` will not be rendered now (skipped, or left on disk by a shutdown); how long it waited."""
        with self._lock:
            since = self._since.pop(name, None)
        return 0.0 if since is None else time.monotonic() - since

    def status(self) -> str:
        """For the progress bar: the oldest waiting snapshot and how long it has waited ("" when none waits), after
        "projector starting" while the child boots."""
        starting = "projector starting" if self.starting else ""
        with self._lock:
            if not self._since:
                return starting
            name, since = min(self._since.items(), key=lambda item: item[1])
        behind = f"{key_from_name(name).label} {time.monotonic() - since:.1f} s behind"
        return f"{starting}, {behind}" if starting else behind

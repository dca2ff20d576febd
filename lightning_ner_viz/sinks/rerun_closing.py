"""Closing a Rerun stream within a time bound, even when a frozen viewer never reads what it was sent."""

from __future__ import annotations

import atexit
import threading
from typing import Any


def disconnect_within(rec: Any, seconds: float) -> bool:
    """Close ``rec``'s file or connection in a helper thread; ``False`` when that did not finish in ``seconds``.

    Then rerun's exit handler, which would wait for the same connection, is replaced by one
    that waits at most ``seconds`` too, so the process can still exit.
    """
    closer = threading.Thread(target=rec.disconnect, name="ner-viz-rerun-disconnect", daemon=True)
    closer.start()
    closer.join(seconds)
    if not closer.is_alive():
        return True
    import rerun as rr

    rr.unregister_shutdown()
    atexit.register(_shutdown_within, rr.rerun_shutdown, seconds)
    return False


def _shutdown_within(shutdown: Any, seconds: float) -> None:
    stopper = threading.Thread(target=shutdown, name="ner-viz-rerun-shutdown", daemon=True)
    stopper.start()
    stopper.join(seconds)

"""Flushing and closing a Rerun stream within a time bound: a full disk or a frozen viewer never takes what it was sent."""

from __future__ import annotations

import atexit
import errno
import threading
from typing import Any

BROKEN_CLOSE_SECONDS = 1.0
"""How long closing a stream whose write already failed may take (flushing it again would only wait)."""


def flush_within(rec: Any, seconds: float, where: str) -> None:
    """Flush ``rec`` within ``seconds``, turning rerun's ``RuntimeError`` into an ``OSError`` that says what failed.

    Rerun reports a failed write (``No space left on device``, ``File too large``) only in its own
    log; the flush then either times out or finds the writer thread gone.

    Raises:
        TimeoutError: the data was not taken within ``seconds``.
        OSError: rerun's writer stopped (``errno.EIO``).
    """
    late = "rerun reports a failed write only at a later flush, so the epoch before may be incomplete too"
    try:
        rec.flush(timeout_sec=seconds)
    except RuntimeError as err:
        if "timed out" in str(err).lower():
            raise TimeoutError(f"{where} did not take the data within {seconds:g} s (rerun: {err}); "
                               f"is the disk full, or has the viewer stopped reading? ({late})") from err
        raise OSError(errno.EIO, f"rerun could not write {where} ({err}); is the disk full? ({late})") from err


def close_stream(rec: Any, seconds: float, where: str, broken: bool = False) -> None:
    """Flush and close ``rec``, each within ``seconds``; after a failed write (``broken``), close only, within
    :data:`BROKEN_CLOSE_SECONDS`.

    Raises:
        OSError: the flush failed (see :func:`flush_within`), or ``TimeoutError`` when closing took too long.
    """
    limit = min(seconds, BROKEN_CLOSE_SECONDS) if broken else seconds
    try:
        if not broken:
            flush_within(rec, seconds, where)
    finally:
        if not disconnect_within(rec, limit):
            raise TimeoutError(f"{where} did not take the recording within {limit:g} s; left it (the snapshots are on disk)")


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

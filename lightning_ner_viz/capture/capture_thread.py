"""A thread that selects each validation batch's tokens, so the training loop only hands tensors over."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class CaptureThread:
    """Runs capture jobs (per-batch selection, the epoch's finish) in order, off the training thread.

    The queue is bounded: when ``max_pending`` jobs wait, :meth:`submit` blocks until one
    is done, so at most that many batches' captured tensors are held (on the model's
    device). The first error stops the remaining jobs (their epoch is incomplete) and
    is raised on the training thread by the next :meth:`raise_error` or :meth:`drain`.

    Args:
        max_pending: jobs that may wait before :meth:`submit` blocks.
        enabled: ``False`` runs each job at once in the caller's thread.
    """

    def __init__(self, max_pending: int = 4, enabled: bool = True) -> None:
        self.max_pending = max_pending
        self.enabled = enabled
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; inline when disabled. Raises a pending error from an earlier job first."""
        self.raise_error()
        if not self.enabled:
            fn(*args)
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="ner-viz-capture", daemon=True)
            self._thread.start()
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:  # after an error the epoch is incomplete: skip the rest
                    fn, args = job
                    fn(*args)
            except BaseException as err:  # noqa: BLE001 - re-raised on the training thread
                self._error = err
            finally:
                self._queue.task_done()

    def raise_error(self) -> None:
        """Raise (once) the error of a finished job, if any; does not wait."""
        err, self._error = self._error, None
        if err is not None:
            raise err

    def drain(self) -> None:
        """Wait until every queued job is done, then raise the first error, if any."""
        if self._thread is not None:
            self._queue.join()
        self.raise_error()

    def close(self) -> BaseException | None:
        """Finish the queued jobs, stop the thread and return (not raise) a pending error."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        err, self._error = self._error, None
        return err

    def __getstate__(self) -> dict[str, Any]:
        return {"max_pending": self.max_pending, "enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # a fresh queue and no thread

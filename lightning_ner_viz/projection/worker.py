"""A single background thread that renders snapshots while training goes on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from lightning_ner_viz._warnings import warn


class BackgroundWorker:
    """Runs jobs one at a time, in submission order, off the training thread.

    Errors are never lost: :meth:`collect_errors` returns them, and the callback
    warns (or raises with ``strict=True``). Jobs may be submitted from several threads
    (the training thread and the capture thread).

    Args:
        enabled: ``False`` runs each job at once in the caller's thread (handy for debugging).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._executor: ThreadPoolExecutor | None = None
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``."""
        if not self.enabled:
            future: Future[Any] = Future()
            try:
                future.set_result(fn(*args))
            except Exception as err:  # noqa: BLE001 - reported by collect_errors
                future.set_exception(err)
            with self._lock:
                self._futures.append(future)
            return
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ner-viz")
            self._futures.append(self._executor.submit(fn, *args))

    def collect_errors(self) -> list[BaseException]:
        """Exceptions of finished jobs since the last call; finished jobs are forgotten."""
        with self._lock:
            done = [f for f in self._futures if f.done()]
            self._futures = [f for f in self._futures if f not in done]
        return [e for e in (f.exception() for f in done) if e is not None]

    def wait(self, progress: bool = True) -> list[BaseException]:
        """Block until every queued job finished (with a progress bar), then return their errors."""
        with self._lock:
            remaining = [f for f in self._futures if not f.done()]
        if remaining and progress:
            from tqdm.auto import tqdm

            with tqdm(total=len(remaining), desc="lightning-ner-viz: rendering epochs", leave=False) as bar:
                for future in remaining:
                    future.exception()
                    bar.update(1)
        for future in remaining:
            future.exception()
        return self.collect_errors()

    def shutdown(self) -> None:
        """Wait for queued jobs and stop the thread."""
        for err in self.wait(progress=False):
            warn(f"lightning-ner-viz: a rendering job failed: {err!r}")
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "_executor": None, "_futures": [], "_lock": threading.Lock()}

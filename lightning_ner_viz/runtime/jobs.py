"""One background job runner: a thread that runs jobs in order, off the training thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable
from typing import Any

_STOP = object()


class JobRunner:
    """Runs jobs one at a time, in submission order, in one daemon thread.

    Error policy: a job's exception is never raised in the thread and never lost. It is
    kept, and :meth:`take_errors` hands every kept exception to the caller (the training
    thread), in order; the caller decides whether to raise or warn. Jobs submitted with the
    same ``group`` as a failed job, and queued after it, are skipped: they depend on it
    (e.g. the later batches of an epoch whose capture failed). Jobs without a group never
    skip.

    Args:
        name: the thread's name.
        max_pending: jobs that may wait before :meth:`submit` blocks (``None``: no bound). A
            bound caps what waiting jobs hold, e.g. captured tensors on the model's device.
        enabled: ``False`` runs each job at once in the caller's thread (for debugging).
    """

    def __init__(self, name: str, max_pending: int | None = None, enabled: bool = True) -> None:
        self.name = name
        self.max_pending = max_pending
        self.enabled = enabled
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending or 0)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._failed_groups: set[Hashable] = set()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        return self._pending

    def submit(self, fn: Callable[..., Any], *args: Any, group: Hashable | None = None) -> None:
        """Queue ``fn(*args)`` (blocks while ``max_pending`` jobs wait); inline when disabled."""
        with self._lock:
            self._pending += 1
        if not self.enabled:
            self._run_one(fn, args, group)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        self._queue.put((fn, args, group))

    def _run_one(self, fn: Callable[..., Any], args: tuple[Any, ...], group: Hashable | None) -> None:
        try:
            if group is None or group not in self._failed_groups:
                fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the training thread by take_errors
            with self._lock:
                self._errors.append(err)
                if group is not None:
                    self._failed_groups.add(group)
        finally:
            with self._lock:
                self._pending -= 1

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _STOP:
                    return
                self._run_one(*job)
            finally:
                self._queue.task_done()

    def take_errors(self) -> list[BaseException]:
        """The exceptions of failed jobs since the last call, oldest first; never waits."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def wait(self, progress: bool = False, description: str = "lightning-ner-viz") -> None:
        """Block until every queued job is done, with a progress bar when ``progress`` and jobs remain."""
        if self._thread is None:
            return
        if progress and self._pending:
            from tqdm.auto import tqdm

            total = self._pending
            with tqdm(total=total, desc=description, leave=False) as bar:
                while self._pending:
                    done = total - self._pending
                    if done > bar.n:
                        bar.update(done - bar.n)
                    self._wait_a_little()
                bar.update(total - bar.n)
        self._queue.join()

    def _wait_a_little(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout=0.1)

    def close(self) -> None:
        """Finish the queued jobs and stop the thread; a later :meth:`submit` starts a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join()
        self._failed_groups.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "max_pending": self.max_pending, "enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # a fresh queue and no thread

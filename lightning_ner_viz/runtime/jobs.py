"""One background job runner: a thread that runs jobs in order, off the training thread."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

_STOP = object()

POLL_SECONDS = 0.05
"""How often a blocked :meth:`JobRunner.submit` or :meth:`JobRunner.wait` checks its ``stop`` condition."""

Stop = Callable[[], bool]
"""A condition polled while blocked: return ``True`` to stop waiting."""


class Job(NamedTuple):
    """One queued call: ``fn(*args)``, in the failure ``group`` it depends on."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    group: Hashable | None


class JobRunner:
    """Runs jobs one at a time, in submission order, in one daemon thread.

    Error policy: a job's exception is never raised in the thread and never lost. It is
    kept, and :meth:`take_errors` hands every kept exception to the caller (the training
    thread), in order; the caller decides whether to raise or warn. Jobs submitted with the
    same ``group`` as a failed job, and queued after it, are skipped: they depend on it
    (e.g. the later batches of an epoch whose capture failed). Jobs without a group never
    skip.

    Bounds: with ``max_pending``, :meth:`submit` blocks while that many jobs wait (the one
    running is not counted); a ``stop`` condition lets a blocked submit, or a :meth:`wait`,
    give up. :meth:`drain` takes the waiting jobs back, unrun, for a shutdown that cannot
    wait for them.

    Args:
        name: the thread's name.
        max_pending: jobs that may wait before :meth:`submit` blocks (``None``: no bound, at
            least 1). A bound caps what waiting jobs hold, e.g. captured tensors on the
            model's device, and how long the caller may later have to wait for them.
        enabled: ``False`` runs each job at once in the caller's thread (for debugging).
    """

    def __init__(self, name: str, max_pending: int | None = None, enabled: bool = True) -> None:
        if max_pending is not None and (isinstance(max_pending, bool) or not isinstance(max_pending, int)
                                        or max_pending < 1):
            raise ValueError(f"max_pending must be None or an integer >= 1; got {max_pending!r}.")
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
        """Jobs submitted and not finished yet (waiting or running)."""
        return self._pending

    @property
    def waiting(self) -> int:
        """Jobs queued that have not started."""
        return self._queue.qsize()

    def in_thread(self) -> bool:
        """Whether the caller is this runner's thread (a job must not wait for the jobs)."""
        return self._thread is not None and threading.current_thread() is self._thread

    @property
    def full(self) -> bool:
        """Whether :meth:`submit` would block now (``max_pending`` jobs wait)."""
        return self.enabled and self.max_pending is not None and self._queue.full()

    def submit(self, fn: Callable[..., Any], *args: Any, group: Hashable | None = None,
               stop: Stop | None = None) -> bool:
        """Queue ``fn(*args)``; run it at once in this thread when disabled.

        Blocks while ``max_pending`` jobs wait. With ``stop``, checked every
        :data:`POLL_SECONDS` while blocked, it gives up once ``stop()`` is true.

        Returns:
            ``True`` when the job was queued (or run); ``False`` when ``stop`` gave up on it,
            and the job will not run.
        """
        job = Job(fn, args, group)
        with self._lock:
            self._pending += 1
        if not self.enabled:
            self._run_one(job)
            return True
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, args=(self._queue,), name=self.name, daemon=True)
                self._thread.start()
        if stop is None:
            self._queue.put(job)
            return True
        while True:
            try:
                self._queue.put(job, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                if stop():
                    with self._lock:
                        self._pending -= 1
                    return False

    def _run_one(self, job: Job) -> None:
        try:
            if job.group is None or job.group not in self._failed_groups:
                job.fn(*job.args)
        except BaseException as err:  # noqa: BLE001 - handed to the training thread by take_errors
            with self._lock:
                self._errors.append(err)
                if job.group is not None:
                    self._failed_groups.add(job.group)
        finally:
            with self._lock:
                self._pending -= 1

    def _loop(self, jobs: queue.Queue[Any]) -> None:
        while True:
            job = jobs.get()
            try:
                if job is _STOP:
                    return
                self._run_one(job)
            finally:
                jobs.task_done()

    def take_errors(self) -> list[BaseException]:
        """The exceptions of failed jobs since the last call, oldest first; never waits."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def queued(self) -> list[Job]:
        """The jobs waiting to start, oldest first (a copy; they stay queued)."""
        with self._queue.mutex:
            return [job for job in self._queue.queue if job is not _STOP]

    def withdraw(self, which: Callable[[Job], bool]) -> Job | None:
        """Take the oldest waiting job that ``which`` accepts off the queue, unrun (``None`` when none does)."""
        with self._queue.mutex:
            job = next((j for j in self._queue.queue if j is not _STOP and which(j)), None)
            if job is None:
                return None
            self._queue.queue.remove(job)
            self._queue.unfinished_tasks -= 1
            if not self._queue.unfinished_tasks:
                self._queue.all_tasks_done.notify_all()
            self._queue.not_full.notify()
        with self._lock:
            self._pending -= 1
        return job

    def drain(self) -> list[Job]:
        """Take every job that has not started off the queue, oldest first: they will not run."""
        taken: list[Job] = []
        stopping = False
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            if job is _STOP:
                stopping = True
            else:
                taken.append(job)
        with self._lock:
            self._pending -= len(taken)
        if stopping:
            self._queue.put(_STOP)
        return taken

    def wait(self, progress: bool = False, description: str = "lightning-ner-viz", *,
             timeout: float | None = None, stop: Stop | None = None, status: Callable[[], str] | None = None) -> bool:
        """Block until every submitted job is done, with a progress bar when ``progress`` and jobs remain.

        Args:
            progress: show a ``tqdm`` bar of the jobs done.
            description: the bar's label.
            timeout: give up after this many seconds.
            stop: give up once this returns true (checked every :data:`POLL_SECONDS`).
            status: the bar's text after the counts, asked again at every check (e.g. how far behind).

        Returns:
            ``True`` when every job is done; ``False`` when ``timeout`` or ``stop`` gave up first.
        """
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        if timeout is None and stop is None and not progress:
            self._queue.join()
            return True
        bar = None
        if progress and self._pending:
            from tqdm.auto import tqdm

            bar = tqdm(total=self._pending, desc=description, leave=False)
        try:
            while self._pending:
                if bar is not None and bar.total - self._pending > bar.n:
                    bar.update(bar.total - self._pending - bar.n)
                if bar is not None and status is not None:
                    bar.set_postfix_str(status(), refresh=False)
                if (stop is not None and stop()) or (deadline is not None and time.monotonic() >= deadline):
                    return False
                self._wait_a_little(POLL_SECONDS if deadline is None else
                                    max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
            if bar is not None:
                bar.update(bar.total - bar.n)
        finally:
            if bar is not None:
                bar.close()
        return True

    def _wait_a_little(self, seconds: float) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout=seconds)
        else:
            time.sleep(seconds)

    def close(self, timeout: float | None = None) -> bool:
        """Finish the queued jobs and stop the thread; a later :meth:`submit` starts a new one.

        Args:
            timeout: stop waiting for the thread after this many seconds; it then ends on its
                own after its last job (it is a daemon thread: it does not keep the process alive).

        Returns:
            ``True`` when the thread ended.
        """
        with self._lock:
            thread, self._thread = self._thread, None
        ended = True
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
            ended = not thread.is_alive()
        if ended:
            self._failed_groups.clear()
        else:  # the old thread still owns the queue until it reads _STOP: later jobs get a fresh one
            self._queue = queue.Queue(maxsize=self.max_pending or 0)
            self._failed_groups = set()
        return ended

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "max_pending": self.max_pending, "enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # a fresh queue and no thread

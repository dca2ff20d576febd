"""Run a :class:`~lightning_ner_viz.projection.projector.Projector` in a separate, low-priority process.

UMAP's and t-SNE's numba code holds the GIL and uses every core it is given, so in a
thread of the training process it competes with training for both. In a child process
it cannot take the GIL, and at ``nice`` 19 (plus the ``SCHED_IDLE`` policy on Linux)
with one thread the kernel gives training the CPU first.

The child is started with ``python -m lightning_ner_viz.projection.child`` (not
``multiprocessing``, whose ``spawn`` would re-run an unguarded training script).
Messages are pickles over its stdin/stdout. Children are pooled per process, so a
later ``fit`` reuses one whose numba code is already compiled.

A bounded shutdown (SIGTERM, an exception) does not wait for the epoch being projected:
:func:`abandon` kills the child, and the call in flight raises :class:`ProjectionAbandoned`.
The child ignores SIGINT and SIGTERM (the parent decides, and a signal sent to the whole
process group must not make the parent fall back to projecting in-process), and exits
when its parent is gone.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
import warnings
import weakref
from typing import Any

from lightning_ner_viz._warnings import NerVizWarning
from lightning_ner_viz.projection.projector import Projection, Projector
from lightning_ner_viz.snapshot import Snapshot

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


class ProjectorProcessDied(RuntimeError):
    """The child process exited or its pipe broke; the caller should project in-process."""


class ProjectorError(RuntimeError):
    """The projector could not be sent to the child process."""


class ProjectionAbandoned(RuntimeError):
    """The parent killed the child on purpose (a bounded shutdown); the projection in flight is dropped.

    Not a :class:`ProjectorProcessDied`: the caller must not project in-process instead.
    """


def default_threads() -> int:
    """Threads for the child: a quarter of the cores, at least 1 and at most 4."""
    return max(1, min(4, (os.cpu_count() or 1) // 4))


class ProjectorProcess:
    """A long-lived child process that projects snapshots with a :class:`Projector`.

    Args:
        threads: CPU threads the child may use (numba, BLAS, torch).
        nice: the child's niceness (Unix); 19 is the lowest priority.
    """

    def __init__(self, threads: int | None = None, nice: int = 19) -> None:
        self.threads = threads or default_threads()
        self.nice = nice
        env = {**os.environ, **{name: str(self.threads) for name in THREAD_VARIABLES},
               "LIGHTNING_NER_VIZ_NICE": str(nice), "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lightning_ner_viz.projection.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )
        self._abandoned = False
        _live[self._proc.pid] = self
        self._send(list(sys.path))  # so the child can unpickle reducers from the caller's modules

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the child is still running."""
        return self._proc.poll() is None

    def _send(self, message: Any) -> None:
        assert self._proc.stdin is not None
        try:
            pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            if self._abandoned:
                raise ProjectionAbandoned("the projector process was stopped (shutdown)") from err
            raise ProjectorProcessDied(f"the projector process exited ({err})") from err

    def _call(self, *message: Any) -> Any:
        self._send(message)
        assert self._proc.stdout is not None
        try:
            reply = pickle.load(self._proc.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
            if self._abandoned:
                raise ProjectionAbandoned("the projector process was stopped (shutdown)") from err
            code = self._proc.wait(timeout=5) if not self.alive else None
            raise ProjectorProcessDied(f"the projector process exited (code {code})") from err
        status, payload, caught = reply
        for category, text in caught:
            prefix = "" if category == NerVizWarning.__name__ else f"{category} in the projector process: "
            warnings.warn(prefix + text, NerVizWarning, stacklevel=3)
        if status == "error":
            raise payload
        return payload

    def start(self, projector: Projector) -> None:
        """Hand the child a projector (with its state); it replaces any earlier one.

        Raises:
            ProjectorError: when the projector cannot be unpickled in the child (e.g. a
                reducer class defined in ``__main__``).
        """
        try:
            blob = pickle.dumps(projector, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - any pickling failure means: run it in-process
            raise ProjectorError(f"the projector cannot be pickled ({type(err).__name__}: {err})") from err
        try:
            self._call("start", blob)
        except (ProjectorProcessDied, ProjectionAbandoned):
            raise
        except Exception as err:  # noqa: BLE001 - e.g. a reducer class defined in the caller's __main__
            raise ProjectorError(f"the child cannot unpickle the projector ({type(err).__name__}: {err})") from err

    def warm_up(self) -> float:
        """Have the child import and compile what its projector needs (once per child); returns the child's seconds."""
        return self._call("warm_up")

    def project(self, snapshot: Snapshot) -> Projection:
        """Project one snapshot in the child."""
        return self._call("project", snapshot)

    def abandon(self) -> None:
        """Kill the child now, whatever it is doing; a call in flight raises :class:`ProjectionAbandoned`."""
        self._abandoned = True
        if self.alive:
            self._proc.kill()
            self._proc.wait()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the child to exit; kill it if it does not."""
        if self.alive:
            try:
                self._send(("exit",))
                self._proc.wait(timeout=timeout)
            except (ProjectorProcessDied, ProjectionAbandoned, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:  # a dead child: closing flushes what a failed send left buffered
                    pass


_idle: list[ProjectorProcess] = []
_lock = threading.Lock()
_live: weakref.WeakValueDictionary[int, ProjectorProcess] = weakref.WeakValueDictionary()


def abandon(pid: int | None) -> bool:
    """Kill this process's projector child ``pid`` (see :meth:`ProjectorProcess.abandon`).

    Returns:
        Whether ``pid`` was one of this process's live children.
    """
    proc = _live.get(pid) if pid is not None else None
    if proc is None or not proc.alive:
        return False
    proc.abandon()
    return True


def acquire(threads: int | None = None) -> ProjectorProcess:
    """An idle pooled child with ``threads`` threads, or a new one."""
    with _lock:
        for i, proc in enumerate(_idle):
            if proc.alive and proc.threads == (threads or default_threads()):
                return _idle.pop(i)
    return ProjectorProcess(threads)


def release(proc: ProjectorProcess) -> None:
    """Return a child to the pool for the next ``fit`` (a dead one is dropped, its pipes closed)."""
    if proc.alive:
        with _lock:
            _idle.append(proc)
    else:
        proc.close()


@atexit.register
def _close_pool() -> None:
    with _lock:
        procs, _idle[:] = list(_idle), []
    for proc in procs:
        proc.close(timeout=2.0)

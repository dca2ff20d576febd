"""The projector child process's main loop (``python -m lightning_ner_viz.projection.child``).

Reads pickled requests from stdin and writes ``(status, payload, warnings)`` replies to
the original stdout; anything else printed goes to stderr. It exits when stdin closes
(the parent is gone) or on an ``("exit",)`` request, and within a second of its parent's
death even in the middle of a projection. SIGINT (Ctrl-C) and SIGTERM are left to the
parent: a signal sent to the whole process group (a cluster preempting the job) must not
kill the child first, or the parent would fall back to projecting in-process just as it
shuts down. The parent stops it with an exit request, or kills it (SIGKILL).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from typing import Any, BinaryIO


def _lower_priority() -> None:
    """Nice 19, and on Linux the SCHED_IDLE policy: run only on CPU time nothing else wants."""
    nice = int(os.environ.get("LIGHTNING_NER_VIZ_NICE", "19"))
    if hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:
            pass
    if nice >= 19 and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass


def _handle(request: tuple[Any, ...], state: dict[str, Any]) -> Any:
    kind = request[0]
    if kind == "start":
        state["projector"] = pickle.loads(request[1])
        return None
    if kind == "warm_up":
        from lightning_ner_viz.projection.warm_up import warm_up

        return warm_up(state["projector"], state.setdefault("warmed", set()))
    if kind == "project":
        return state["projector"].project(request[1])
    raise ValueError(f"unknown request {kind!r}")


def _picklable(err: Exception, trace: str) -> Exception:
    """The exception itself (so the parent raises the same type), with the child's traceback as a note."""
    err.__traceback__ = None
    note = f"In the projector process:\n{trace}"
    try:
        copy = pickle.loads(pickle.dumps(err))
        copy.add_note(note)
        return copy
    except Exception:  # noqa: BLE001 - an unpicklable exception becomes a RuntimeError with its text
        return RuntimeError(f"{type(err).__name__}: {err}\n\n{note}")


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until stdin closes or an exit request arrives."""
    sys.path[:] = pickle.load(requests)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    state: dict[str, Any] = {}
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        if request[0] == "exit":
            return
        with warnings.catch_warnings(record=True) as caught:  # the default filters stay
            try:
                reply: tuple[str, Any] = ("ok", _handle(request, state))
            except Exception as err:  # noqa: BLE001 - sent to the parent, which re-raises it
                reply = ("error", _picklable(err, traceback.format_exc()))
        found = [(w.category.__name__, str(w.message)) for w in caught]
        pickle.dump((*reply, found), replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """Exit as soon as the parent is gone (this process was re-parented), even mid-projection."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    """Keep the reply pipe private, lower the priority, and serve."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the reply stream
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM") and os.name == "posix":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="exit-with-parent",
                         daemon=True).start()
    _lower_priority()
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()

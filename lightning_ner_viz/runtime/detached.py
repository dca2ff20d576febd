"""A detached end of ``fit``: ``fit`` returns while the rendering thread draws the last epochs and closes the sinks.

After the last validation, training is done but its pictures may not be: the projector child
(at the lowest CPU priority) may still be booting, projecting or catching up, and the sinks still
writing. The end of ``fit`` used to wait for all of it (docs/performance.md, "Time to picture").
Now ``fit`` returns at once, like W&B's service process, which uploads after the script moves on,
with one line that says what is still drawn and where it goes. What keeps the outputs whole:

- ``callback.wait()`` blocks until every picture is written and the sinks are closed;
- the process waits for them before it exits, with a progress bar. The wait runs in ``threading``'s
  exit hook, which runs before any ``atexit`` function, so before W&B and Rerun close their
  streams. Ctrl-C there leaves the rest on disk and prints the command that draws it;
- ``wandb.finish()`` on the run a :class:`~lightning_ner_viz.sinks.WandbSink` logs to first waits
  for them (:meth:`~lightning_ner_viz.sinks.base.Sink.on_detached`);
- a later ``fit``, ``validate`` or ``test`` with the same callback queues behind them (one thread, in order);
  ``show(callback)`` waits for them.

``EmbeddingDriftCallback(wait_at_fit_end=True)`` keeps the waiting end of ``fit``; so does a run
under DDP, whose ranks leave ``fit`` together, and one with a sink that cannot outlive ``fit``
(:attr:`~lightning_ner_viz.sinks.base.Sink.outlives_fit`: a ``TensorBoardSink`` on the writer of a
``TensorBoardLogger``, which Lightning closes right after ``on_fit_end``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING

from lightning_ner_viz.runtime.shutdown import epochs_text, quietly, render_commands

if TYPE_CHECKING:
    from lightning_ner_viz.projection.pipeline import RenderPipeline

_WAITING: weakref.WeakKeyDictionary[RenderPipeline, int] = weakref.WeakKeyDictionary()
"""Pipelines with detached work, and the process that owns each: a forked child (a DataLoader worker)
inherits this table and the exit hook, but not the rendering threads."""
_EXIT_HOOKED = False


def detach(pipeline: RenderPipeline) -> str | None:
    """End ``fit`` without waiting: queue the sinks' close behind the epochs left, hook the waits above.

    Returns:
        The line to print when epochs are still to draw; ``None`` when none is (or a close was queued already).
    """
    left = pipeline.close_later()
    if left is None:
        return None

    def wait() -> None:
        if not pipeline.in_rendering_thread():  # a sink closing its own W&B run from that thread
            pipeline.wait()

    for sink in pipeline.renderer.sinks:
        quietly(sink.on_detached, wait, what=f"preparing {sink!r} for a detached end of fit")
    wait_at_exit(pipeline)
    return detached_message(pipeline, left) if left else None


def detached_message(pipeline: RenderPipeline, left: list[str]) -> str:
    """``lightning-ner-viz: fit is done; epoch 1 is still being drawn (3.2 s behind) into <where>. ...``"""
    where = [sink.location or repr(sink) for sink in pipeline.renderer.sinks]
    status = pipeline.lag.status()
    return (f"lightning-ner-viz: fit is done; {epochs_text(left)} {'are' if len(left) > 1 else 'is'} still being "
            f"drawn{f' ({status})' if status else ''} into {', '.join(where) or 'no sink'}. `callback.wait()` "
            "blocks until the pictures are written; the process waits for them before it exits.")


def wait_at_exit(pipeline: RenderPipeline) -> None:
    """Have the process wait for ``pipeline``'s queued work before it exits (once hooked, for every pipeline)."""
    global _EXIT_HOOKED
    _WAITING[pipeline] = os.getpid()
    if _EXIT_HOOKED:
        return
    register = getattr(threading, "_register_atexit", atexit.register)  # threading's: before every atexit function
    try:
        register(finish_all)
    except RuntimeError:  # the interpreter is exiting already: nothing more can be hooked
        return
    _EXIT_HOOKED = True


def finish_all() -> None:
    """At exit: let every detached rendering that still works finish (a bar shows how far behind it is).

    A SIGTERM meanwhile stops it within seconds, as during training
    (:meth:`~lightning_ner_viz.projection.pipeline.RenderPipeline.abort`); so does Ctrl-C, less gently.
    Errors are warned about. A forked child (e.g. a DataLoader worker, which runs this hook when it ends)
    has none of the rendering threads, so it does nothing.
    """
    for pipeline, owner in list(_WAITING.items()):
        if owner != os.getpid() or not pipeline.pending:
            continue
        doing = pipeline.lag.status() or "closing the sinks"
        print(f"lightning-ner-viz: drawing the last pictures before the process exits ({doing}); Ctrl-C leaves "
              "them on disk.", file=sys.stderr, flush=True)
        try:
            quietly(pipeline.close, True, what="drawing the last pictures")
        except KeyboardInterrupt:
            p = pipeline.renderer.projector
            commands = render_commands(pipeline.store, pipeline.renderer.sinks, p.reducer, p.frame, p.n_components)
            print("lightning-ner-viz: stopped; the snapshots are under "
                  f"{pipeline.store.root}. To draw them: {' or '.join(commands)}", file=sys.stderr, flush=True)
            return
    _WAITING.clear()

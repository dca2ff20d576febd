"""Bounded shutdown and the rendering backlog: the limits, and the command that finishes the job.

Two situations, one rule each (docs/reliability.md, "Shutdown and backlog"):

- **During training**, every captured epoch is saved as a snapshot as soon as it is captured,
  and at most ``max_pending`` of them wait behind the one being rendered. When one more
  arrives, the oldest waiting fit epoch is skipped (:mod:`~lightning_ner_viz.projection.catch_up`:
  it stays on disk, and ``lightning-ner-viz render`` draws it), so training does not wait and
  at most the epoch being rendered and ``max_pending`` more are left when training ends (drawn
  after ``fit`` returned: :mod:`~lightning_ner_viz.runtime.detached`).
  Nothing is skipped before the run's first epoch is drawn (the projector is still starting),
  nor snapshots of ``trainer.validate()``. Training never waits for the pictures.
- **When training stops early** (SIGTERM, an exception, a teardown after a failure, or a
  SIGTERM while the last pictures are drawn at the end of the process or of ``fit``: see
  :func:`sigterm_deferred`),
  rendering goes on for at most :data:`GRACE_SECONDS`. Then the epochs still waiting are
  dropped (their snapshots are on disk), the epoch being projected in the child process is
  dropped too (the child is killed), the sinks are closed (so the files and runs are
  valid), and a warning prints the ``lightning-ner-viz render`` command that renders every
  epoch.

This module imports nothing heavy: the callback checks its arguments with it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.projection.renderer import Renderer
    from lightning_ner_viz.sinks.base import Sink
    from lightning_ner_viz.store import SnapshotStore

DEFAULT_MAX_PENDING = 1
"""Captured epochs that may wait behind the one being rendered; one more skips the oldest (see above)."""

GRACE_SECONDS = 2.0
"""How long rendering goes on normally after training stopped early, before the rest is left on disk."""

IN_FLIGHT_SECONDS = 30.0
"""How long a shutdown waits for an epoch it cannot interrupt (projected in a thread, or in a sink's
``log_epoch``). After that the sinks are closed by the rendering thread once it is done, if the
process still runs."""

_CLI_SINKS = (("RerunSink", "rerun"), ("HtmlSink", "html"), ("WandbSink", "wandb"),
              ("TensorBoardSink", "tensorboard"))


def check_max_pending(max_pending: Any) -> int | None:
    """``max_pending`` itself; ``ValueError`` unless it is ``None`` or an integer of at least 1."""
    if max_pending is not None and (isinstance(max_pending, bool) or not isinstance(max_pending, int)
                                    or max_pending < 1):
        raise ValueError(f"max_pending must be an integer >= 1 (epochs that may wait to be rendered before the "
                         f"oldest is skipped) or None (no bound); got {max_pending!r}.")
    return max_pending


def stop_reason(trainer: pl.Trainer, exception: BaseException | None = None) -> str | None:
    """Why the run stops early, for the callback's ``on_exception`` and ``teardown``; ``None`` if it does not.

    Lightning's SIGTERM handler only sets ``trainer.received_sigterm``; its loops then raise
    ``SIGTERMException`` (a ``SystemExit``), which reaches ``on_exception``. A ``teardown`` after
    a failure sees the Trainer's status ``"interrupted"``.
    """
    if getattr(trainer, "received_sigterm", False) or type(exception).__name__ == "SIGTERMException":
        return "SIGTERM"
    if exception is not None:
        return type(exception).__name__
    return "the run failed" if trainer.state.status == "interrupted" else None


def cli_sink_names(sinks: Sequence[Sink]) -> list[str]:
    """The ``render --sink`` names of the built-in sinks among ``sinks``, in order, once each."""
    import lightning_ner_viz.sinks as sink_module

    names: list[str] = []
    for class_name, name in _CLI_SINKS:
        cls = getattr(sink_module, class_name)
        if any(isinstance(sink, cls) for sink in sinks) and name not in names:
            names.append(name)
    return names


def render_command(store: SnapshotStore, sink: str, reducer: object, frame: str, n_components: int) -> str:
    """The ``lightning-ner-viz render`` command that draws every snapshot in ``store`` to ``sink``.

    It writes next to the snapshots (``render.rrd``, ``render.html``, ``wandb-render/``,
    ``tensorboard-render/``), so it never overwrites what the training run wrote. A reducer
    object cannot be named on the command line: the command then uses PCA (and ``procrustes``
    instead of ``warm``, which PCA does not take).
    """
    from lightning_ner_viz.cli.outputs import DEFAULT_OUT

    named = isinstance(reducer, str)
    if not named and frame == "warm":
        frame = "procrustes"
    words = ["lightning-ner-viz", "render", str(store.root), "--sink", sink]
    if named:
        words += ["--reducer", str(reducer)]
    words += ["--frame", frame, "--n-components", str(n_components), "--out", str(store.root / DEFAULT_OUT[sink])]
    return shlex.join(words)


def one_of_commands(commands: Sequence[str]) -> str:
    """The commands of :func:`render_commands` for a message: each in backticks, joined with "or"."""
    return " or ".join(f"`{c}`" for c in commands)


def render_commands(store: SnapshotStore, sinks: Sequence[Sink], reducer: object, frame: str,
                    n_components: int) -> list[str]:
    """One :func:`render_command` per kind of built-in sink in use (a Rerun file when there is none)."""
    return [render_command(store, name, reducer, frame, n_components) for name in cli_sink_names(sinks) or ["rerun"]]


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[Callable[[], bool]]:
    """While the block runs, note SIGTERM; when it ends, act on it as the handler before would have.

    For a wait for the last pictures (at the end of ``fit`` or of the process): Lightning has
    restored the default action by then, so SIGTERM would kill the process with the sinks unclosed.
    Inside the block, a SIGTERM is only noted (the yielded function then returns ``True``: the
    caller stops within seconds), and a Python handler that was installed is still called at once.
    When the block ends the previous handler is restored and, if it was the default action, the
    signal is raised again: the process dies by SIGTERM, as the sender meant, a few seconds later.
    Nothing is swallowed.

    Outside the main thread, or where signals cannot be handled, it does nothing and the yielded
    function always returns ``False``.
    """
    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGTERM)
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        received.append(signum)
        if callable(previous):
            previous(signum, frame)

    try:
        signal.signal(signal.SIGTERM, note)
    except (ValueError, OSError):
        yield lambda: False
        return
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if received and previous in (signal.SIG_DFL, None):
            signal.raise_signal(signal.SIGTERM)


def epochs_text(items: Sequence[object]) -> str:
    """``"3"``, ``"3 and 4"`` or ``"3, 4 and 7"``."""
    texts = [str(e) for e in items]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]}"


def sigterm_flag(trainer: pl.Trainer) -> Callable[[], bool]:
    """Whether Lightning's SIGTERM handler ran for ``trainer`` (it sets ``received_sigterm``; we only read it)."""
    ref = weakref.ref(trainer)
    return lambda: bool(getattr(ref(), "received_sigterm", False))


def unrendered_message(reason: str, seconds: float, root: str, *, on_disk: Sequence[str], lost: Sequence[str],
                       rendered: Sequence[str], commands: Sequence[str], closed: bool) -> str:
    """The warning of a shutdown that left snapshots unrendered (given by label): which, where, and the commands
    that render them."""
    message = f"lightning-ner-viz: rendering stopped ({reason}) {seconds:.1f} s after training stopped"
    if on_disk:
        many = len(on_disk) > 1
        kept = (f"The sinks hold {epochs_text(rendered)}" if rendered else "No epoch reached the sinks")
        message += (f"; {epochs_text(on_disk)} {'are' if many else 'is'} saved under "
                    f"{root} but not rendered. {kept}; "
                    f"{'they were closed' if closed else 'they are closed once the epoch in flight is done'}. "
                    "To render every epoch, run:\n    " + "\n    ".join(commands))
    if lost:
        message += (f"\n{epochs_text(lost)} could not be saved "
                    f"(see the warning above) and {'are' if len(lost) > 1 else 'is'} lost.")
    return message


def quietly(fn: Callable[..., Any], *args: Any, what: str) -> None:
    """Call ``fn(*args)``; a failure warns instead of raising (a shutdown must not hide the training's own error)."""
    try:
        fn(*args)
    except Exception as err:  # noqa: BLE001
        from lightning_ner_viz._warnings import warn

        warn(f"lightning-ner-viz: {what} failed ({type(err).__name__}: {err}).")


def warn_unrendered(store: SnapshotStore, renderer: Renderer, left: Sequence[str], reason: str, seconds: float,
                    closed: bool) -> None:
    """Warn (:func:`unrendered_message`) about the snapshots ``left`` (names) that a shutdown did not render."""
    from lightning_ner_viz._warnings import warn
    from lightning_ner_viz.keys import key_from_name

    on_disk = [n for n in left if store.has(n)]
    label = lambda names: [key_from_name(n).label for n in names]  # noqa: E731
    projector = renderer.projector
    commands = render_commands(store, renderer.sinks, projector.reducer, projector.frame, projector.n_components)
    warn(unrendered_message(reason, seconds, str(store.root), on_disk=label(on_disk), commands=commands,
                            lost=label([n for n in left if n not in on_disk]), closed=closed,
                            rendered=label([n for n in dict.fromkeys(renderer.rendered) if n not in left])))

"""Where the projection runs: the callback's ``background`` argument turned into a place."""

from __future__ import annotations

from typing import Literal, Union

Background = Union[bool, Literal["process", "thread"]]
"""``True`` (the default), ``"process"``, ``"thread"`` or ``False``."""

BACKGROUND_CHOICES: tuple[bool | str, ...] = (True, False, "process", "thread")

Place = Literal["process", "thread"]
"""Where the renderer projects: in a child process, or in the thread that renders."""


def check_background(background: object) -> None:
    """Raise ``ValueError`` unless ``background`` is one of :data:`BACKGROUND_CHOICES`."""
    if not any(background is c or (isinstance(c, str) and background == c) for c in BACKGROUND_CHOICES):
        raise ValueError(f"background must be True, False, 'process' or 'thread'; got {background!r}.")


def projection_place(background: Background, world_size: int) -> Place:
    """Where rank zero projects: ``"process"`` (a low-priority child) or ``"thread"`` (the rendering thread).

    ``True`` means a child process with one rank, and the rendering thread under DDP (see
    docs/scaling.md). ``False`` renders on the training thread.
    """
    if background is True:
        return "process" if world_size == 1 else "thread"
    return "process" if background == "process" else "thread"


def runs_in_background(background: Background) -> bool:
    """Whether the capture selection and the logging run off the training thread."""
    return background is not False

"""The frame choices: names, their ``Literal`` types, and which reducer each frame can use.

This module imports neither numpy, torch nor any optional dependency, so argument
validation and the command line's ``--help`` stay light. The frames themselves are in
:mod:`lightning_ner_viz.projection.frames`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from lightning_ner_viz.reducers.registry import check_reducer

FrameName = Literal["procrustes", "fixed", "warm", "independent"]
"""A frame that keeps epochs stable during training (and when re-rendering)."""

RenderFrameName = Literal[FrameName, "aligned"]
"""A frame for re-rendering saved snapshots: the training frames plus ``aligned``."""

FRAME_NAMES: tuple[FrameName, ...] = get_args(FrameName)
"""``("procrustes", "fixed", "warm", "independent")``."""

RENDER_FRAME_NAMES: tuple[RenderFrameName, ...] = (*FRAME_NAMES, "aligned")
"""The training frames plus ``aligned``, which lays every saved epoch out at once with ``umap.AlignedUMAP``."""

FrameChoice = Literal["auto", "procrustes", "fixed", "warm", "independent"]
"""What the callback's ``frame`` takes: a frame, or ``"auto"`` (see :func:`resolve_frame`)."""

FRAME_CHOICES: tuple[FrameChoice, ...] = get_args(FrameChoice)
"""``("auto", *FRAME_NAMES)``."""

RenderFrameChoice = Literal["auto", RenderFrameName]
"""What ``lightning-ner-viz render --frame`` takes: a re-rendering frame, or ``"auto"``."""

RENDER_FRAME_CHOICES: tuple[RenderFrameChoice, ...] = ("auto", *RENDER_FRAME_NAMES)
"""``("auto", *RENDER_FRAME_NAMES)``."""

WARM_START_REDUCERS = ("umap", "tsne")
"""Built-in reducers that start from a given layout (their ``init``)."""


def check_frame(frame: str, choices: Sequence[str] = FRAME_NAMES) -> None:
    """Raise unless ``frame`` is one of ``choices`` (the training frames by default).

    Raises:
        ValueError: listing the valid names; ``aligned`` outside ``choices`` says where it works.
    """
    if frame in choices:
        return
    if frame == "aligned":
        raise ValueError(
            f"frame='aligned' only re-renders saved snapshots (lightning-ner-viz render --frame aligned); "
            f"choose one of {sorted(choices)}."
        )
    raise ValueError(f"frame={frame!r} is not one of {sorted(choices)}.")


def check_reducer_frame(reducer: object, frame: str) -> None:
    """Raise unless ``reducer`` and ``frame`` are valid and work together.

    The rule, by frame:

    - ``procrustes`` and ``independent`` take any reducer.
    - ``warm`` starts each fit from the previous layout, so it needs a reducer that takes
      a start layout: ``"umap"``, ``"tsne"`` or an object with an ``init`` attribute. With
      ``"pca"`` (or an object without ``init``) it would silently behave as ``procrustes``.
    - ``fixed`` maps later epochs through the first epoch's fit: an object needs ``transform(X)``.
    - ``aligned`` (re-rendering only) lays every epoch out with ``umap.AlignedUMAP``: it needs
      ``"umap"``, since it would silently ignore any other reducer.

    Raises:
        ValueError: for an unknown name or a combination that cannot work, saying what to choose.
        TypeError: for a reducer that is neither a name nor has ``fit_transform``, or a
            ``fixed`` frame's reducer object without ``transform``.
    """
    check_reducer(reducer)
    check_frame(frame, RENDER_FRAME_NAMES)
    named = isinstance(reducer, str)
    what = repr(reducer) if named else type(reducer).__name__
    if frame == "warm" and (reducer not in WARM_START_REDUCERS if named else not hasattr(reducer, "init")):
        raise ValueError(
            f"frame='warm' starts each fit from the previous layout, and reducer {what} takes no start layout "
            f"(init); use frame='procrustes', or a reducer in {list(WARM_START_REDUCERS)}."
        )
    if frame == "fixed" and not named and not callable(getattr(reducer, "transform", None)):
        raise TypeError(f"The 'fixed' frame needs a reducer with transform(X); {what} has none.")
    if frame == "aligned" and reducer != "umap":
        raise ValueError(f"frame='aligned' lays epochs out with umap.AlignedUMAP; it needs reducer='umap', got {what}.")


def resolve_frame(frame: str, reducer: object) -> str:
    """The frame ``"auto"`` stands for with this reducer; any other frame unchanged.

    ``"auto"`` is ``"procrustes"`` for PCA and reducer objects: PCA's axes move only as much
    as the model did, and aligning them onto the previous epoch removes rotations and flips.
    For UMAP and t-SNE it is ``"fixed"``: their layouts change between fits of near-identical
    data, so refitting each epoch and aligning it draws drift that is not there, while mapping
    every epoch through the first epoch's layout moves a point only when its vector moved.
    """
    if frame != "auto":
        return frame
    return "fixed" if reducer in WARM_START_REDUCERS else "procrustes"

"""What a resumed run renders again: the snapshots a checkpoint lists as captured that never reached the sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_ner_viz._warnings import warn
from lightning_ner_viz.keys import key_from_name, ordered_names
from lightning_ner_viz.projection.renderer import legacy_names
from lightning_ner_viz.store import SnapshotStore


def resume_plan(store: SnapshotStore, state: dict[str, Any], captured: Sequence[str], capturing: Sequence[str],
                skipped: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The renderer's state to continue from, and the snapshots (names, in order) to render again.

    A checkpoint waits neither for the capture nor for rendering, so it may list snapshots whose
    selection (``capturing``) or rendering was still pending. Those that reached the sinks left a render
    state beside their snapshot (read here, in order, up to the first one that did not); the others
    (also those no sink logged) are rendered again from their saved snapshot. ``skipped`` snapshots are
    not rendered again. A snapshot that was never saved is warned about.
    """
    state = {k: v for k, v in state.items() if k != "skipped"}
    rendered = set(state.get("rendered", legacy_names(state.get("rendered_epochs", [])) or captured))
    logged = set(state.get("logged", legacy_names(state.get("logged_epochs", [])) or rendered))
    redo: list[str] = []  # a render state is written once a sink logged the snapshot
    for name in ordered_names(set(captured) - rendered - set(skipped)):
        saved = store.read_render_state(name)
        if saved is not None and not redo:
            state.update(saved)
            rendered.add(name)
            logged.add(name)
        elif store.has(name):
            redo.append(name)
        else:
            when = ("was still being captured when the checkpoint was written, and its snapshot" if name in capturing
                    else "was captured before the checkpoint, but its snapshot")
            warn(f"The validation {key_from_name(name).label} {when} was never saved under "
                 f"{store.directory(name)}; it is missing from the pictures.")
    state["rendered"], state["logged"] = ordered_names(rendered), ordered_names(logged)
    return state, redo

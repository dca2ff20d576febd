"""Catching up: when the pictures fall behind training, the oldest waiting epoch is skipped; training never waits.

The rule (docs/reliability.md, "Shutdown and backlog"): while more than ``max_pending``
captured snapshots wait to be rendered, the oldest waiting *fit* snapshot that already waited
through the start of another snapshot's rendering is taken off the queue (checked when a
snapshot arrives and when a rendering starts; an epoch that arrived just as the one before it
finished is not skipped). It is saved already, so nothing is lost: ``lightning-ner-viz render``
draws every epoch, and a resumed run does not render it again. Before this run (``fit`` or
``validate``) has rendered its first snapshot nothing is skipped: that wait is the projector's
start (its boot and warm-up), not a slow projection. Snapshots of ``trainer.validate()`` are
never skipped. Training never waits for the pictures.
"""

from __future__ import annotations

from collections.abc import Callable

from lightning_ner_viz.keys import key_from_name
from lightning_ner_viz.runtime.jobs import Job, JobRunner
from lightning_ner_viz.runtime.shutdown import one_of_commands


class CatchUp:
    """Which snapshots were skipped to catch up, and whether skipping is allowed yet.

    Attributes:
        skipped: names of the snapshots skipped so far (on disk, not rendered), in order.
        this_fit: those skipped since the current fit started.
        rendered: snapshots rendered since the current fit started.
    """

    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.this_fit: list[str] = []
        self.rendered = 0

    def new_fit(self) -> None:
        """A run (``fit``, ``validate``) starts or ends: count again; nothing is skipped before it rendered a snapshot."""
        self.this_fit, self.rendered = [], 0

    def skip_oldest(self, jobs: JobRunner, snapshot_of: Callable[[Job], str | None]) -> str | None:
        """Withdraw the oldest waiting fit snapshot's rendering from ``jobs``; its name, or ``None`` when none may go.

        ``snapshot_of`` names the snapshot a job renders (``None`` for any other job).
        """
        if not self.rendered:
            return None

        def is_fit(job: Job) -> bool:
            name = snapshot_of(job)
            return name is not None and key_from_name(name).stage == "fit"

        job = jobs.withdraw(is_fit)
        if job is None:
            return None
        name = snapshot_of(job)
        assert name is not None
        self.skipped.append(name)
        self.this_fit.append(name)
        return name


def skip_message(label: str, seconds: float, root: str, commands: list[str]) -> str:
    """The warning given once, at the first skipped snapshot (``label``, waiting for ``seconds``)."""
    return (f"lightning-ner-viz: the pictures fell behind training, so {label} (captured {seconds:.0f} s ago) was "
            "skipped to catch up; training does not wait, and the newest epoch is drawn next. Skipped snapshots are "
            f"saved under {root}; {one_of_commands(commands)} draws every epoch. To skip none: "
            "capture fewer epochs (every_n_epochs) or points (max_tokens), use reducer='pca', or pass "
            "max_pending=None (every epoch is drawn; those left when training ends are drawn after it).")


def skipped_message(labels: list[str], root: str, commands: list[str]) -> str:
    """The warning at the end of a fit that skipped snapshots (``labels``) to catch up."""
    return (f"lightning-ner-viz: {len(labels)} captured epoch(s) were skipped to catch up with training and are not in "
            f"the pictures: {', '.join(labels)}. Their snapshots are saved under {root}; "
            f"{one_of_commands(commands)} draws every epoch.")

"""``wandb.finish()`` waits for a detached end of ``fit`` (:mod:`lightning_ner_viz.runtime.detached`).

A script often ends ``trainer.fit(...)`` with ``wandb.finish()``. When ``fit`` returned before its last
pictures were drawn, the run would then refuse them. W&B runs the ``TeardownStage.EARLY`` hooks of a
run at the start of ``finish()``, before the run stops taking logs (its own Jupyter and logger
hooks use them), so the sink adds one there that waits for the pictures. The hooks are W&B's
internals (``Run._teardown_hooks``, 0.15 to 0.31 at least): where they are missing nothing is added,
and ``callback.wait()`` before ``wandb.finish()`` does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = "_lightning_ner_viz_wait"


def wait_before_finish(run: Any, wait: Callable[[], None]) -> bool:
    """Make ``run.finish()`` call ``wait`` first, replacing an earlier such hook of this package.

    Returns:
        ``False`` when this W&B has no teardown hooks (nothing was added).
    """
    try:
        from wandb.sdk.wandb_run import TeardownHook, TeardownStage

        hooks = run._teardown_hooks
    except (ImportError, AttributeError):
        return False

    def call() -> None:
        wait()

    setattr(call, _MARK, True)
    hooks[:] = [hook for hook in hooks if not getattr(hook.call, _MARK, False)]
    hooks.append(TeardownHook(call, TeardownStage.EARLY))
    return True

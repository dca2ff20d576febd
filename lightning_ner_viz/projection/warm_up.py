"""Warm a projector up before its first epoch: import and compile everything a projection needs.

The projector child does this right after it starts, at the callback's ``setup``, while the
model trains: a first projection otherwise also pays for importing scikit-learn, SciPy and
cleanlab (about 1.3 s on 2 cores) and, with UMAP, for loading (or, the first time on a
machine, compiling) numba's code. The warm-up projects two tiny synthetic validations with a
throwaway :class:`~lightning_ner_viz.projection.projector.Projector` of the same reducer, frame
and dimensions, so the same code paths run (a full layout, then a warm one). It never raises:
whatever fails here fails again, and is reported, on a real epoch.
"""

from __future__ import annotations

import contextlib
import importlib
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_ner_viz.projection.projector import Projector
from lightning_ner_viz.snapshot import Snapshot

_LABELS = ["O", "B-A", "I-A", "B-B"]
_ROWS, _DIMS = 96, 16


def _synthetic(epoch: int) -> Snapshot:
    """A tiny validation with four separated classes (enough rows for UMAP's 15 neighbours and the clusters)."""
    rng = np.random.default_rng(epoch)
    gold = np.arange(_ROWS) % len(_LABELS)
    centres = np.random.default_rng(0).normal(size=(len(_LABELS), _DIMS)) * 4
    hidden = (centres[gold] + rng.normal(size=(_ROWS, _DIMS))).astype(np.float32)
    pred = gold.copy()
    pred[:4] = (gold[:4] + 1) % len(_LABELS)
    sentence_id = np.arange(_ROWS) // 8
    words = [f"w{i % 11}" for i in range(_ROWS)]
    return Snapshot(epoch=epoch, step=epoch + 1, token_id=np.arange(_ROWS) * 2 + 1, sentence_id=sentence_id,
                    position=np.arange(_ROWS) % 8, token=words, word=words, gold=gold, pred=pred,
                    views={"hidden": hidden, "emissions": hidden[:, : len(_LABELS)].copy()}, label_names=_LABELS,
                    sentences={int(s): " ".join(words[s * 8:(s + 1) * 8]) for s in np.unique(sentence_id)})


def warm_up(projector: Projector, done: set[Any] | None = None) -> float:
    """Run ``projector``'s reducer, frame and analyses once on synthetic data; returns the seconds it took.

    ``done`` remembers what was warmed in this process (a pooled child serves several fits): a
    reducer, frame and dimension count already warmed costs nothing. An object reducer (not a
    built-in name) is left alone (its cost on made-up data is unknown); the analyses still warm.
    """
    started = time.perf_counter()
    reducer = projector.reducer if isinstance(projector.reducer, str) else "pca"
    key = (reducer, projector.frame, projector.n_components)
    if done is not None and key in done:
        return 0.0
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        with contextlib.suppress(ImportError):
            import cleanlab.rank  # noqa: F401 - the label issues import it at the first fit epoch
            import cleanlab.token_classification.filter  # noqa: F401
        throwaway = Projector(reducer, projector.n_components, projector.seed, projector.frame, store=None)
        for epoch in (0, 1):
            throwaway.project(_synthetic(epoch))
    if done is not None:
        done.add(key)
    return time.perf_counter() - started


def import_for_sinks(sinks: Sequence[Any]) -> None:
    """Import each sink's ``warm_imports`` (optional dependencies its first epoch would import), quietly."""
    for sink in sinks:
        for module in getattr(sink, "warm_imports", ()):
            with contextlib.suppress(Exception):
                importlib.import_module(module)

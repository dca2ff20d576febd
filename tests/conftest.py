"""Shared fixtures: an isolated environment, tiny data, a locally trained tokenizer, tiny BERT models,
one Trainer helper (``fit_with_callback``), a recording sink and a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pytest

from lightning_ner_viz.sinks.base import Sink

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback

    from lightning_ner_viz import EmbeddingDriftCallback, Snapshot

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `examples` is importable

_HOME = Path(tempfile.mkdtemp(prefix="ner-viz-test-home-"))
for _var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "WANDB_DIR", "WANDB_CACHE_DIR",
             "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "MPLCONFIGDIR"):
    os.environ[_var] = str(_HOME / _var.lower())
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _own_wandb_service_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A W&B run in this process publishes its service in ``WANDB_SERVICE``; a subprocess that inherits
    it hands its run to this process's service, whose files may not be written when the subprocess
    exits. Each subprocess starts its own, as a user's script does."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture(scope="session")
def examples():
    """400 generated product titles (deterministic)."""
    from lightning_ner_viz.demo.data import generate_examples

    return generate_examples(400, seed=1)


@pytest.fixture(scope="session")
def tokenizer(examples):
    """A WordPiece tokenizer trained locally on the examples."""
    from lightning_ner_viz.demo.data import iter_text
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    return train_wordpiece(iter_text(examples), vocab_size=400)


@pytest.fixture()
def datamodule(examples, tokenizer):
    """Train on 320 titles, validate on 80, batch size 16."""
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.demo.datamodule import NerDataModule

    return NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)


@pytest.fixture()
def bert_config(tokenizer):
    """A tiny BertConfig (hidden 32, 2 layers)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)


def trainer_kwargs(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Quiet, CPU-only Trainer arguments for tests."""
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(tmp_path), max_epochs=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, num_sanity_val_steps=0)
    kwargs.update(overrides)
    return kwargs


def epoch_dir(root: Path, epoch: int) -> Path:
    """The one snapshot directory of fit epoch ``epoch`` under ``root`` (``epoch=0001-step=…``)."""
    (found,) = sorted(Path(root).glob(f"epoch={epoch:04d}-step=*"))
    return found


# ---- one fit with the callback ---------------------------------------------------------------


class Fitted(NamedTuple):
    """The Trainer and the callback of a finished ``fit_with_callback``."""

    trainer: pl.Trainer
    callback: EmbeddingDriftCallback


FitWithCallback = Callable[..., Fitted]


@pytest.fixture()
def fit_with_callback(request: pytest.FixtureRequest, tmp_path: Path) -> FitWithCallback:
    """Fit a tiny model with an ``EmbeddingDriftCallback`` on a real, quiet CPU Trainer (:func:`trainer_kwargs`).

    Call it as ``fit_with_callback(callback=None, *, root, model, data, epochs, callbacks, ckpt_path,
    torch_seed, trainer, **callback_kwargs)``:

    - ``callback``: the callback to fit with; ``None`` builds one from ``callback_kwargs`` over
      ``sinks=[]``, ``max_tokens=60`` and the demo's ``label_names``.
    - ``root``: the Trainer's ``default_root_dir`` (the test's ``tmp_path`` by default).
    - ``model``, ``data``: a fresh ``UserCrfTagger`` over ``bert_config`` and the ``datamodule`` fixture by default.
    - ``epochs``: ``max_epochs`` (2); each trains on 2 batches unless ``trainer`` says otherwise.
    - ``callbacks``: more callbacks, after the drift callback; a ``ModelCheckpoint`` among them turns
      checkpointing on.
    - ``ckpt_path``: the checkpoint to resume from.
    - ``torch_seed``: seeds torch before the default model is built (before ``fit`` for a given model).
    - ``trainer``: further :func:`trainer_kwargs` overrides, e.g. ``{"logger": logger}``.
    - ``wait``: call ``callback.wait()`` after ``fit``, as a script that reads the outputs does (``fit`` returns
      before its last pictures are drawn); ``False`` returns as soon as ``fit`` does.
    """

    def fit(
        callback: EmbeddingDriftCallback | None = None,
        *,
        root: Path | None = None,
        model: pl.LightningModule | None = None,
        data: pl.LightningDataModule | None = None,
        epochs: int = 2,
        callbacks: Sequence[Callback] = (),
        ckpt_path: Path | str | None = None,
        torch_seed: int | None = None,
        trainer: Mapping[str, Any] | None = None,
        wait: bool = True,
        **callback_kwargs: Any,
    ) -> Fitted:
        import lightning.pytorch as pl
        import torch
        from lightning.pytorch.callbacks import ModelCheckpoint
        from outside_model import UserCrfTagger

        from lightning_ner_viz import EmbeddingDriftCallback
        from lightning_ner_viz.demo.data import LABEL_NAMES

        if callback is None:
            callback = EmbeddingDriftCallback(**{"sinks": [], "max_tokens": 60, "label_names": LABEL_NAMES,
                                                 **callback_kwargs})
        elif callback_kwargs:
            raise TypeError(f"pass a callback or its arguments, not both: {sorted(callback_kwargs)}")
        checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
        options = {"max_epochs": epochs, "limit_train_batches": 2, "enable_checkpointing": checkpointing,
                   **(trainer or {})}
        built = pl.Trainer(**trainer_kwargs(root or tmp_path, **options), callbacks=[callback, *callbacks])
        if torch_seed is not None:
            torch.manual_seed(torch_seed)
        if model is None:
            model = UserCrfTagger(request.getfixturevalue("bert_config"), num_tags=len(LABEL_NAMES))
        built.fit(model, data if data is not None else request.getfixturevalue("datamodule"), ckpt_path=ckpt_path)
        if wait:
            callback.wait(progress=False)
        return Fitted(built, callback)

    return fit


# ---- a sink that records what it receives ----------------------------------------------------


@dataclass
class LoggedEpoch:
    """One ``log_epoch`` call: the snapshot, copies of its coordinates and metrics."""

    snapshot: Snapshot
    coords: dict[str, np.ndarray]
    metrics: dict[str, float]


@dataclass
class LoggedGroup:
    """One ``log_group`` call: the group's name, its rows and a copy of their coordinates."""

    name: str
    group: Snapshot
    coords: np.ndarray


class RecordingSink(Sink):
    """Records every ``log_epoch``, ``log_group`` and ``log_analysis`` call, and whether it was closed.

    Args:
        fail_with: raised by every ``log_epoch`` once the call is recorded, like a user's sink with a bug.
        gate: every ``log_epoch`` first waits for this event (at most 60 s), like a slow network sink.
    """

    def __init__(self, fail_with: Exception | None = None, gate: threading.Event | None = None) -> None:
        self.fail_with, self.gate = fail_with, gate
        self.logged: list[LoggedEpoch] = []
        self.groups: list[LoggedGroup] = []
        self.analyses: list[tuple[Snapshot, Any]] = []
        self.closed = False

    @property
    def epochs(self) -> list[int]:
        """The epoch of each ``log_epoch`` call, in call order."""
        return [entry.snapshot.epoch for entry in self.logged]

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Wait for the gate, record the call, then fail if asked to."""
        if self.gate is not None:
            self.gate.wait(timeout=60)
        self.logged.append(LoggedEpoch(snapshot, {k: np.array(v) for k, v in coords.items()}, dict(metrics)))
        if self.fail_with is not None:
            raise self.fail_with

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Record the call."""
        self.groups.append(LoggedGroup(name, group, np.array(coords)))

    def log_analysis(self, snapshot: Snapshot, analysis: Any) -> None:
        """Record the call."""
        self.analyses.append((snapshot, analysis))

    def close(self) -> None:
        """Remember that the sink was closed."""
        self.closed = True


# ---- a free port ------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium, which `bash scripts/install_chromium.sh` installs for the headless-browser tests."""

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless-browser test: /usr/bin/chromium not found; "
                                    "install it with `bash scripts/install_chromium.sh` (apt-get through sudo)")

_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


@contextlib.contextmanager
def chromium_page(profile: Path, width: int, height: int) -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium page (software WebGL) of this viewport, and the list its page errors and console errors
    go to."""
    playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (dev extra)")
    with playwright.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), args=_CHROMIUM_ARGS,
                                                   headless=True, viewport={"width": width, "height": height})
        try:
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            yield page, errors
        finally:
            ctx.close()


def validate_then_fit_mid_epoch(root: Path, sink: Any, bert_config: Any, datamodule: Any) -> list[Any]:
    """A baseline ``validate()``, then a 2-epoch fit validating twice per epoch, with ``sink``; the snapshots."""
    import lightning.pytorch as pl
    from outside_model import UserCrfTagger

    from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
    from lightning_ner_viz.demo.data import LABEL_NAMES

    callback = EmbeddingDriftCallback(sinks=[sink], max_tokens=60, label_names=LABEL_NAMES, max_pending=None)
    trainer = pl.Trainer(**trainer_kwargs(root, max_epochs=2, limit_train_batches=4, val_check_interval=0.5),
                         callbacks=[callback])
    model = UserCrfTagger(bert_config, num_tags=len(LABEL_NAMES))
    trainer.validate(model, datamodule=datamodule, verbose=False)
    trainer.fit(model, datamodule=datamodule)
    callback.wait()
    snapshots = load_snapshots(root / "ner_viz")
    assert [(s.stage, s.epoch, s.step) for s in snapshots] == [
        ("validate", 0, 0), ("fit", 0, 2), ("fit", 0, 4), ("fit", 1, 6), ("fit", 1, 8)]
    return snapshots

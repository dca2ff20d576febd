"""For tests/test_shutdown.py and benchmarks/shutdown.py: a slow reducer, and a small fit to run in a subprocess.

The reducer is defined here, in an importable module, so the projector child process can
unpickle it (a class in ``__main__`` would make the callback project in-process instead).

Run the fit as ``python -c "import shutdown_helpers; shutdown_helpers.main()" ROOT [options]``
with this directory on ``PYTHONPATH``. It prints ``validated N`` (flushed) after each
validation epoch, so a test knows when to send SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


_FITS: dict[str, int] = {}
"""Fits so far in this process, by reducer (the frames fit a copy of the reducer each time)."""


class SlowPCA:
    """PCA after ``delay`` seconds of sleep (``then`` seconds from the second fit on): rendering slower
    than training, like UMAP on a busy machine."""

    def __init__(self, delay: float = 1.0, n_components: int = 3, then: float | None = None) -> None:
        self.delay, self.n_components, self.then = delay, n_components, then
        self.key = uuid.uuid4().hex

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        fits = _FITS.get(self.key, 0)
        _FITS[self.key] = fits + 1
        time.sleep(self.delay if fits == 0 or self.then is None else self.then)
        self.mean_ = X.mean(axis=0)
        self.components_ = np.linalg.svd(X - self.mean_, full_matrices=False)[2][: self.n_components]
        return self.transform(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_.T


def _max_pending(text: str) -> int | None | str:
    return {"none": None, "default": "default"}.get(text, text if not text.isdigit() else int(text))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    """Fit a tiny tagger with the callback writing a Rerun file and an HTML report (and W&B) under ROOT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the reducer sleeps per fit")
    parser.add_argument("--max-pending", type=_max_pending, default="default", help="an integer, none or default")
    parser.add_argument("--wandb", action="store_true", help="also a W&B sink (offline)")
    parser.add_argument("--train-batches", type=int, default=2)
    parser.add_argument("--train-seconds", type=float, default=0.0, help="sleep per training epoch (a longer epoch)")
    parser.add_argument("--wandb-logger", action="store_true",
                        help="a WandbLogger (offline) and a WandbSink on its run; wandb.finish() right after fit")
    parser.add_argument("--wait-at-fit-end", action="store_true", help="EmbeddingDriftCallback(wait_at_fit_end=True)")
    args = parser.parse_args(argv)

    import lightning.pytorch as pl
    from outside_model import UserCrfTagger
    from tiny_fit_data import tiny_data_and_config

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.sinks import HtmlSink, RerunSink, WandbSink

    root = Path(args.root)
    data, config = tiny_data_and_config()
    sinks = [RerunSink(path=root / "emb.rrd"), HtmlSink(path=root / "emb.html")]
    if args.wandb:
        sinks.append(WandbSink(init_kwargs={"dir": str(root)}))
    logger: object = False
    if args.wandb_logger:
        from lightning.pytorch.loggers import WandbLogger

        logger = WandbLogger(project="ner-viz-test", save_dir=str(root), offline=True)
        sinks.append(WandbSink())
    extra = {} if args.max_pending == "default" else {"max_pending": args.max_pending}
    drift = EmbeddingDriftCallback(sinks=sinks, max_tokens=60, label_names=LABEL_NAMES, reducer=SlowPCA(args.delay),
                                   wait_at_fit_end=args.wait_at_fit_end, **extra)

    class Progress(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            time.sleep(args.train_seconds)

        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if not trainer.sanity_checking:
                print(f"validated {trainer.current_epoch} at {time.time():.3f}", flush=True)

        def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            print(f"training done at {time.time():.3f}", flush=True)  # before the callback's on_fit_end

    pl.seed_everything(0, verbose=False)
    model = UserCrfTagger(config, num_tags=len(LABEL_NAMES))
    trainer = pl.Trainer(default_root_dir=str(root), max_epochs=args.epochs, limit_train_batches=args.train_batches,
                         logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1, num_sanity_val_steps=0,
                         callbacks=[Progress(), drift])
    trainer.fit(model, data)
    print(f"fit returned at {time.time():.3f}", flush=True)
    if args.wandb_logger:
        import wandb

        wandb.finish()  # what scripts do right after fit: it waits for the pictures (sinks/wandb_finish.py)
        print(f"wandb finished at {time.time():.3f}", flush=True)


if __name__ == "__main__":  # pragma: no cover - run through `import shutdown_helpers` instead
    sys.exit("import shutdown_helpers and call main(): the reducer must not live in __main__")

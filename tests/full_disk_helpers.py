"""For tests/test_full_disk.py: a small fit in a process whose files may not grow past a size limit.

Run it as ``python -c "import full_disk_helpers; full_disk_helpers.main()" ROOT --limit BYTES``
with this directory on ``PYTHONPATH``. ``RLIMIT_FSIZE`` makes every write past ``BYTES`` in any
file fail with ``EFBIG`` (``SIGXFSZ`` is ignored, so the process is not killed): a real write
error, as on a full disk, for the files that grow (the ``.rrd`` recording, the HTML report), while
the small snapshot files still fit. It prints one JSON line: the wall time of ``fit`` and of its first
validation, the package's warnings (and when each came), and the epochs captured and logged.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import time
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Fit the tiny tagger for ``--epochs`` epochs with a Rerun file and an HTML report under ROOT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--limit", type=int, default=0, help="RLIMIT_FSIZE in bytes (0: none)")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)

    import lightning.pytorch as pl
    from outside_model import UserCrfTagger
    from tiny_fit_data import tiny_data_and_config

    from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.sinks import HtmlSink, RerunSink

    root = Path(args.root)
    data, config = tiny_data_and_config()
    drift = EmbeddingDriftCallback(sinks=[RerunSink(path=root / "emb.rrd"), HtmlSink(path=root / "emb.html")],
                                   max_tokens=60, label_names=LABEL_NAMES, reducer="pca",
                                   background="thread")  # no child process to start: steadier timings
    pl.seed_everything(0, verbose=False)
    model = UserCrfTagger(config, num_tags=len(LABEL_NAMES))
    trainer = pl.Trainer(default_root_dir=str(root), max_epochs=args.epochs, limit_train_batches=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1, num_sanity_val_steps=0, callbacks=[drift])
    if args.limit:  # from here on, no file of this process (or its projector child) grows past the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.limit, resource.RLIM_INFINITY))
    times: dict[str, float] = {}
    messages: list[tuple[float, str]] = []

    class Clock(pl.Callback):
        def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            times.setdefault("first_validation", time.monotonic())

    trainer.callbacks.insert(0, Clock())

    def note(message, category, *args, **kwargs) -> None:
        if issubclass(category, NerVizWarning):
            messages.append((time.monotonic(), str(message)))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = note
        times["fit"] = time.monotonic()
        trainer.fit(model, data)
        times["returned"] = time.monotonic()
        drift.wait(progress=False)  # the warnings of the pictures drawn after fit returned
    print(json.dumps({
        "fit_seconds": times["returned"] - times["fit"],
        "first_validation": times["first_validation"] - times["fit"],
        "warnings": [m for _, m in messages],
        "warned_at": [t - times["fit"] for t, _ in messages],
        "captured": drift.captured_epochs, "logged": drift.logged_epochs,
    }), flush=True)

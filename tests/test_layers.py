"""hidden_module="all": every encoder layer captured in the validation forward, and the layer × snapshot figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import RecordingSink, chromium_page, epoch_dir, needs_chromium

from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots
from lightning_ner_viz.analysis.layers import LAYER_FIGURES, LayerAnalyst
from lightning_ner_viz.analysis.linear_probe import probe_accuracy
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.snapshot import LAYERS_FILE, load_layers

LAYERS = ["embeddings", "layer_01", "layer_02"]


@pytest.fixture(scope="module")
def frozen_lower_fit(tmp_path_factory, examples, tokenizer):
    """A 2-layer tagger whose embeddings and first block are frozen at initialisation, fitted for 3 epochs with
    ``hidden_module="all"``: the frozen layers' outputs cannot change (validation runs in eval mode), the rest
    trains. (Freezing the *upper* layers would not keep them still: their inputs change.)"""
    import lightning.pytorch as pl
    import torch
    from conftest import trainer_kwargs
    from outside_model import UserCrfTagger

    from transformers import BertConfig

    from lightning_ner_viz.demo.datamodule import NerDataModule

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    data = NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)
    torch.manual_seed(0)
    model = UserCrfTagger(config, num_tags=len(LABEL_NAMES), lr=1e-2)
    for module in (model.backbone.embeddings, model.backbone.encoder.layer[0]):
        module.requires_grad_(False)
    from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink

    sink = RecordingSink()
    root = tmp_path_factory.mktemp("layers")
    sinks = [sink, HtmlSink("report.html"), RerunSink(path="emb.rrd"), WandbSink(init_kwargs={"dir": "wb"}),
             TensorBoardSink(save_dir="tb")]
    callback = EmbeddingDriftCallback(sinks=sinks, max_tokens=120, label_names=LABEL_NAMES, hidden_module="all",
                                      strict=True, max_pending=None)
    trainer = pl.Trainer(**trainer_kwargs(root, max_epochs=3, limit_train_batches=6), callbacks=[callback])
    trainer.fit(model, data)
    callback.wait()
    return root, sink


def test_every_layer_is_captured_in_the_same_forward_and_saved_beside_the_snapshot(frozen_lower_fit) -> None:
    root, sink = frozen_lower_fit
    snapshot = load_snapshots(root / "ner_viz")[-1]
    assert sorted(snapshot.views) == ["emissions", "hidden"]  # the layers get numbers, not clouds
    assert snapshot.layers == {}  # load() leaves them on disk
    layers = load_layers(epoch_dir(root / "ner_viz", 2))
    assert list(layers) == LAYERS
    assert all(x.shape == (len(snapshot), 32) for x in layers.values())
    # the last block's output is the encoder's output: the hidden view, as saved (float16)
    np.testing.assert_allclose(layers["layer_02"], snapshot.views["hidden"], atol=2e-2)
    assert all(set(entry.coords) == {"hidden", "emissions"} for entry in sink.logged)


def test_frozen_layers_keep_cka_1_to_their_last_snapshot_and_trained_ones_do_not(frozen_lower_fit) -> None:
    _, sink = frozen_lower_fit
    analysis = sink.analyses[-1][1].layers
    assert analysis.layers == LAYERS and len(analysis.snapshots) == 3
    cka = analysis.figures["cka_to_last"]
    np.testing.assert_allclose(cka[:2], 1.0, atol=1e-6)  # embeddings and layer_01: frozen
    assert cka[2, 0] < 0.999  # the trained block moved between the first and the last epoch
    assert cka[2, -1] == pytest.approx(1.0)
    for name in LAYER_FIGURES[1:]:
        assert analysis.figures[name].shape == (3, 3) and np.isfinite(analysis.figures[name]).all(), name
    # the frozen layers' own figures do not move either
    purity = analysis.figures["knn_purity"][:2]
    np.testing.assert_allclose(purity, np.repeat(purity[:, :1], 3, axis=1))
    # each epoch's column is what that epoch reported, and metrics carry the latest column
    first = sink.analyses[0][1].layers
    np.testing.assert_array_equal(first.figures["probe_accuracy"][:, 0], analysis.figures["probe_accuracy"][:, 0])
    assert sink.logged[-1].metrics["layers/probe_accuracy/layer_02"] == analysis.figures["probe_accuracy"][2, -1]


def test_the_probe_is_deterministic_for_a_seed(frozen_lower_fit) -> None:
    root, sink = frozen_lower_fit
    directory = epoch_dir(root / "ner_viz", 2)
    snapshot, layers = load_snapshots(root / "ner_viz")[-1], load_layers(directory)
    reported = sink.analyses[-1][1].layers.figures["probe_accuracy"][:, -1]
    again = [probe_accuracy(layers[name], snapshot.gold, seed=0) for name in LAYERS]
    np.testing.assert_allclose(again, reported, atol=1e-12)  # the child's value, recomputed from the saved layers
    assert again == [probe_accuracy(layers[name], snapshot.gold, seed=0) for name in LAYERS]
    other_seed = [probe_accuracy(layers[name], snapshot.gold, seed=1) for name in LAYERS]
    assert other_seed != again  # the seed picks the folds


def test_a_resumed_projector_continues_the_grids_from_the_saved_state(frozen_lower_fit) -> None:
    """What a resume does: the projector restores the state saved after epoch 1 and projects epoch 2 (its layers
    read back from disk); the grids equal those the training run's child computed."""
    from lightning_ner_viz.projection.projector import Projector
    from lightning_ner_viz.store import SnapshotStore

    root, sink = frozen_lower_fit
    store = SnapshotStore(root / "ner_viz")
    names = store.names()
    projector = Projector(store=store)
    projector.load_state_dict(store.read_render_state(names[1]))
    last = store.load(names[2])
    last.layers = load_layers(store.directory(names[2]))
    resumed = projector.project(last).analysis.layers
    expected = sink.analyses[-1][1].layers
    assert resumed.snapshots == expected.snapshots == names
    for name in LAYER_FIGURES:
        np.testing.assert_allclose(resumed.figures[name], expected.figures[name], atol=1e-9, err_msg=name)
    assert (store.directory(names[0]) / LAYERS_FILE).stat().st_size < 3 * 120 * 32 * 2 + 1000  # float16


def test_all_needs_a_hugging_face_encoder() -> None:
    from torch import nn

    from lightning_ner_viz.capture.discovery import discover_targets

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = nn.Linear(4, 4), nn.Linear(4, 3)

    with pytest.raises(ValueError, match="hidden_module='all' needs a Hugging Face encoder.*List the layers"):
        discover_targets(Plain(), None, hidden_module="all", emissions_module="head", crf_module=None,
                         label_names=["O", "B-X", "I-X"], tokenizer=None)


# ---- every sink shows the grids -----------------------------------------------------------------------


def test_rerun_logs_each_grid_as_an_image_and_a_tensor_at_each_snapshot(frozen_lower_fit) -> None:
    from rrd_reading import read_rrd

    root, sink = frozen_lower_fit
    rows = read_rrd(root / "ner_viz" / "emb.rrd")
    steps = [s.step for s in load_snapshots(root / "ner_viz")]
    for name in LAYER_FIGURES:
        assert sorted({r["step"] for r in rows[f"/embeddings/layers/{name}"]}) == steps, name
        values = [r for r in rows[f"/embeddings/layers/{name}/values"] if r.get("Tensor:data")]
        assert len(values) == 3
    last = [r for r in rows["/embeddings/layers/cka_to_last/values"] if r.get("Tensor:data")][-1]
    assert last["Tensor:data"][0]["shape"] == [3, 3]
    grid = np.asarray(last["Tensor:data"][0]["buffer"]["F32"] if isinstance(last["Tensor:data"][0]["buffer"], dict)
                      else last["Tensor:data"][0]["buffer"], dtype=np.float32).reshape(3, 3)
    np.testing.assert_allclose(grid, sink.analyses[-1][1].layers.figures["cka_to_last"], atol=1e-6)


def test_wandb_logs_a_plotly_heatmap_per_grid_and_one_long_table(frozen_lower_fit) -> None:
    from wandb_reading import history, run_dir

    root, sink = frozen_lower_fit
    run = run_dir(root / "ner_viz" / "wb")
    rows = [r for r in history(run) if "ner_viz/epoch" in r]
    assert len(rows) == 3
    expected = sink.analyses[-1][1].layers
    for name in LAYER_FIGURES:
        heat = json.loads((run / "files" / rows[-1][f"ner_viz/layers/{name}"]["path"]).read_text())["data"][0]
        assert heat["type"] == "heatmap" and heat["y"] == LAYERS and len(heat["x"]) == 3
        np.testing.assert_allclose(np.asarray(heat["z"], dtype=float), expected.figures[name], atol=1e-9)
    table = json.loads((run / "files" / rows[-1]["ner_viz/layers/figures"]["path"]).read_text())
    assert table["columns"] == ["snapshot", "label", "depth", "layer", *LAYER_FIGURES]
    assert len(table["data"]) == 3 * 3
    assert rows[-1]["ner_viz/layers/probe_accuracy/layer_02"] == pytest.approx(
        expected.figures["probe_accuracy"][2, -1])  # and the latest column as scalars, for W&B's line charts


def test_tensorboard_adds_each_grid_as_an_image(frozen_lower_fit) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _ = frozen_lower_fit
    acc = EventAccumulator(str(root / "ner_viz" / "tb"), size_guidance={"images": 0})
    acc.Reload()
    steps = [s.step for s in load_snapshots(root / "ner_viz")]
    for name in LAYER_FIGURES:
        assert [e.step for e in acc.Images(f"ner_viz/layers/{name}")] == steps


@needs_chromium
def test_the_report_draws_the_grids_of_the_snapshot_shown(frozen_lower_fit, tmp_path) -> None:
    root, sink = frozen_lower_fit
    with chromium_page(tmp_path / "profile", 1400, 1600) as (page, errors):
        page.goto((root / "ner_viz" / "report.html").as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        shown = page.evaluate("nerViz.layers()")
        expected = sink.analyses[-1][1].layers
        assert sorted(shown) == sorted(LAYER_FIGURES)
        for name in LAYER_FIGURES:
            assert shown[name]["y"] == LAYERS and shown[name]["x"] == expected.labels
            np.testing.assert_allclose(np.asarray(shown[name]["z"], dtype=float), expected.figures[name], atol=5e-4)
        page.evaluate("nerViz.setSnapshot(nerViz.names[0])")
        page.wait_for_function("nerViz.state().index === 0")
        first = page.evaluate("nerViz.layers()")
        assert first["cka_to_last"]["x"] == expected.labels[:1]  # the grids as of the snapshot shown
        assert errors == []


def test_render_recomputes_the_same_grids_from_the_saved_layers(frozen_lower_fit, tmp_path) -> None:
    from lightning_ner_viz.cli import main
    from lightning_ner_viz.sinks.html import read_payload

    root, sink = frozen_lower_fit
    out = tmp_path / "again.html"
    assert main(["render", str(root / "ner_viz"), "--sink", "html", "--out", str(out)]) == 0
    rendered = read_payload(out)["epochs"][-1]["analysis"]["layers"]
    expected = sink.analyses[-1][1].layers
    assert rendered["layers"] == LAYERS and rendered["labels"] == expected.labels
    for name in LAYER_FIGURES:
        np.testing.assert_allclose(np.asarray(rendered["figures"][name], dtype=float), expected.figures[name],
                                   atol=1e-3, err_msg=name)

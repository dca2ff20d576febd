"""torch.compile: the callback's hooks are attached at setup, before the model first runs, so the compiled
graph calls them; a compiled model captures what the same model captures uncompiled (#17)."""

from __future__ import annotations

import shutil

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import trainer_kwargs
from transformers import AutoModelForTokenClassification

from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning, load_snapshots
from lightning_ner_viz.demo.data import generate_examples, iter_text, label_names_of
from lightning_ner_viz.demo.datamodule import NerDataModule
from lightning_ner_viz.demo.model import HFTokenClassifier, tiny_bert_config
from lightning_ner_viz.demo.tokenizer import train_wordpiece

BACKENDS = ["aot_eager", pytest.param("inductor", marks=pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler"))]


@pytest.fixture(scope="module")
def data_and_model():
    examples = generate_examples(120, seed=3)
    names = label_names_of(examples)
    tokenizer = train_wordpiece(list(iter_text(examples)))
    config = tiny_bert_config(len(tokenizer), names)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0  # compiled dropout draws other numbers
    return (lambda: NerDataModule(examples[:80], examples[80:], tokenizer, names, batch_size=16)), config


def _fit(root, make_data, config, compile_where: str | None, backend: str = "aot_eager", **trainer):
    pl.seed_everything(0, verbose=False)
    module = HFTokenClassifier(AutoModelForTokenClassification.from_config(config))
    if compile_where == "model":  # the whole HF model, as users do: self.model = torch.compile(self.model)
        module.model = torch.compile(module.model, backend=backend)
    elif compile_where == "encoder":
        module.model.bert = torch.compile(module.model.bert, backend=backend)
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=200, background=False)
    pl.Trainer(**trainer_kwargs(root, max_epochs=2, **trainer), callbacks=[callback]).fit(module, make_data())
    return callback, load_snapshots(root / "ner_viz")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compiled_model_captures_what_the_uncompiled_one_does(tmp_path, data_and_model, backend):
    make_data, config = data_and_model
    torch._dynamo.reset()
    _, eager = _fit(tmp_path / "eager", make_data, config, None)
    callback, compiled = _fit(tmp_path / "compiled", make_data, config, "model", backend,
                              num_sanity_val_steps=2)  # the sanity check traces the graph first: hooks gated off
    assert callback.captured_epochs == [0, 1]
    assert "_orig_mod" in callback.hooked_modules["hidden"]
    for plain, traced in zip(eager, compiled):
        assert np.array_equal(plain.token_id, traced.token_id)
        np.testing.assert_allclose(plain.views["hidden"], traced.views["hidden"], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(plain.views["emissions"], traced.views["emissions"], rtol=1e-3, atol=1e-3)


def test_a_compiled_encoder_alone_is_captured(tmp_path, data_and_model):
    make_data, config = data_and_model
    torch._dynamo.reset()
    callback, snapshots = _fit(tmp_path, make_data, config, "encoder")
    assert callback.captured_epochs == [0, 1] and len(snapshots[1]) == 200


def test_a_compiled_model_that_does_not_call_a_hooked_module_disables_capture_with_one_warning(tmp_path,
                                                                                               data_and_model):
    """What happens when the compiled graph skips the hooks (e.g. it was traced before the callback's setup):
    one warning, no snapshot, and training goes on; uncompiled, the same mistake raises (test_bad_input)."""
    make_data, config = data_and_model
    torch._dynamo.reset()
    module = HFTokenClassifier(AutoModelForTokenClassification.from_config(config))
    module.model = torch.compile(module.model, backend="aot_eager")
    module.unused = torch.nn.Linear(config.hidden_size, config.hidden_size)  # never called by the forward
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=200, background=False, hidden_module="unused")
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2), callbacks=[callback])
    with pytest.warns(NerVizWarning, match="captures nothing in this run.*torch.compile") as record:
        trainer.fit(module, make_data())
    assert trainer.current_epoch == 2  # training went on
    assert sum("captures nothing" in str(w.message) for w in record) == 1
    assert callback.captured_epochs == [] and not (tmp_path / "ner_viz").exists()


def test_a_baseline_validate_then_fit_of_a_compiled_model_captures_both(tmp_path, data_and_model):
    """validate() runs (and traces) the compiled model before fit: fit's validations are still captured."""
    make_data, config = data_and_model
    torch._dynamo.reset()
    pl.seed_everything(0, verbose=False)
    module = HFTokenClassifier(AutoModelForTokenClassification.from_config(config))
    module.model = torch.compile(module.model, backend="aot_eager")
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=200, background=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2), callbacks=[callback])
    data = make_data()
    trainer.validate(module, data, verbose=False)
    trainer.fit(module, data)  # NerVizWarning is an error here: no "captures nothing" warning
    assert callback.captured_snapshots[0] == "validate=00-step=0000000" and callback.captured_epochs == [0, 1]
    baseline, *fitted = load_snapshots(tmp_path / "ner_viz")
    assert baseline.key.is_baseline and [s.epoch for s in fitted] == [0, 1]

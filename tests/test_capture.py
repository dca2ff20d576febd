"""Module lookup, output unwrapping, hooks and batch reading."""

from __future__ import annotations

import pytest
import torch
from outside_model import UserCrfTagger
from torch import nn
from transformers import BertForTokenClassification

from lightning_ner_viz.capture.batch import adapt_batch
from lightning_ner_viz.capture.discovery import detect_emissions_module, detect_hidden_module, find_crf
from lightning_ner_viz.capture.hooks import ForwardCapture, unwrap_token_tensor


def test_detects_hidden_emissions_and_crf_in_a_user_module(bert_config):
    model = UserCrfTagger(bert_config, num_tags=11)
    assert detect_hidden_module(model) == "backbone"
    assert detect_emissions_module(model, None) == "head.1"  # nn.Linear with out_features == CRF.num_tags
    assert find_crf(model) is model.crf


def test_detects_base_model_and_classifier_of_hf_token_classification(bert_config):
    bert_config.num_labels = 5
    wrapper = nn.Module()
    wrapper.model = BertForTokenClassification(bert_config)
    assert detect_hidden_module(wrapper) == "model.bert"
    assert detect_emissions_module(wrapper, None) == "model.classifier"


def test_no_hf_model_asks_for_hidden_module():
    with pytest.raises(ValueError, match="Pass `hidden_module="):
        detect_hidden_module(nn.Sequential(nn.Linear(4, 4)))


def test_unwrap_accepts_model_output_tuple_and_tensor(bert_config):
    from transformers.modeling_outputs import BaseModelOutput

    t = torch.zeros(2, 5, 8)
    assert unwrap_token_tensor(BaseModelOutput(last_hidden_state=t), module_name="m") is t
    assert unwrap_token_tensor((t, None), module_name="m") is t
    assert unwrap_token_tensor(t, module_name="m") is t
    with pytest.raises(ValueError, match="no per-token tensor"):
        unwrap_token_tensor(torch.zeros(2, 8), module_name="pooler")


def test_hooks_hold_nothing_past_pop_and_detach():
    layer = nn.Linear(4, 3)
    capture = ForwardCapture({"emissions": ("layer", layer)})
    capture.attach()
    layer(torch.zeros(2, 5, 4))
    assert capture.outputs == {}  # attached but off: nothing stored (training forwards)
    capture.enabled = True
    layer(torch.zeros(2, 5, 4))
    assert capture.pop()["emissions"].shape == (2, 5, 3)
    assert capture.outputs == {}
    capture.detach()
    layer(torch.zeros(2, 5, 4))
    assert capture.outputs == {} and not layer._forward_hooks


def test_tuple_batches_need_a_batch_adapter_that_maps_them():
    """(A dict batch without labels is checked through a whole fit in test_bad_input.py.)"""
    ids, labels = torch.ones(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="batch_adapter"):
        adapt_batch((ids, labels))
    batch = adapt_batch((ids, labels), lambda b: {"input_ids": b[0], "labels": b[1]})
    assert batch.valid.all()


def test_finite_rows_matches_isfinite_without_overflow():
    from lightning_ner_viz.capture.tensor_ops import finite_rows as _finite_rows

    x = torch.randn(3, 5, 7)
    x[0, 1, 2] = float("nan")
    x[1, 2, 0] = float("inf")
    x[2, 3, 6] = -float("inf")
    x[2, 4] = 3e38  # finite, though its sum overflows
    for t in (x, x[:, :4], x.half().nan_to_num(posinf=float("inf"), neginf=-float("inf"))):
        assert torch.equal(_finite_rows(t), torch.isfinite(t).all(-1))


def test_rows_at_reads_sliced_outputs():
    from lightning_ner_viz.capture.tensor_ops import rows_at as _rows_at

    full = torch.randn(4, 9, 3)
    flat = torch.tensor([0, 5, 13, 20, 27])
    for t in (full, full[:, :7]):  # the callback slices captured outputs to the batch's length
        seq = t.shape[1]
        assert torch.equal(_rows_at(t, flat), t[flat // seq, flat % seq])


def test_one_thread_is_scoped_to_this_thread():
    import threading

    from lightning_ner_viz.capture.tensor_ops import one_thread as _one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen, go, done = [], threading.Event(), threading.Event()

        def other() -> None:  # a thread that already ran torch code, like the render worker
            seen.append(torch.get_num_threads())
            go.wait()
            seen.append(torch.get_num_threads())
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        with _one_thread(torch.device("cpu")):
            go.set()
            done.wait()
        thread.join()
        assert seen == [2, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

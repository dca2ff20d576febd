"""Label issues: per-token dynamics over the whole validation set, ranked with cleanlab, in label_issues.csv."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from dynamics_reading import fit_records, plain_dynamics, read_issues, token_id
from torchcrf import CRF

from lightning_ner_viz import EmbeddingDriftCallback
from lightning_ner_viz.cli import main
from lightning_ner_viz.capture.marginals import crf_marginals, label_probabilities
from lightning_ner_viz.store import LABEL_PROBS_FILE


def test_crf_marginals_equal_the_sum_over_every_path():
    torch.manual_seed(0)
    crf = CRF(3, batch_first=True)
    for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
        torch.nn.init.normal_(p)
    emissions = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    found = crf_marginals(emissions, mask, crf)
    for row, length in enumerate(mask.sum(1).tolist()):
        expected = torch.zeros(length, 3)
        for path in itertools.product(range(3), repeat=length):
            tags = torch.tensor([path])
            score = crf(emissions[row:row + 1, :length], tags, reduction="sum").exp()  # p(path | sentence)
            for t, label in enumerate(path):
                expected[t, label] += score
        assert torch.allclose(found[row, :length], expected, atol=1e-5)


def test_without_a_crf_the_probabilities_are_the_softmax():
    emissions = torch.randn(2, 5, 4)
    assert torch.allclose(label_probabilities(emissions, torch.ones(2, 5), None), emissions.softmax(-1))


def test_dynamics_equal_a_plain_computation_and_the_model(tmp_path, fit_with_callback):
    fitted = fit_with_callback(epochs=3, max_tokens=40)
    root = tmp_path / "ner_viz"
    records = fit_records(root)
    assert len(records) == 3 and all(len(r) == len(records[0]) > 40 for r in records)  # the whole set, not the sample
    assert [(root / n / LABEL_PROBS_FILE).exists() for n in sorted(p.name for p in root.glob("epoch=*"))] == [
        False, False, True]  # only the newest validation keeps its probability rows
    plain = plain_dynamics(records)
    rows = read_issues(root)
    assert len(rows) == len(records[0])  # fewer than 1,000 tokens: all of them
    for row in rows:
        confidence, variability, correctness, flips = plain[token_id(row)]
        assert float(row["confidence"]) == pytest.approx(confidence, abs=1e-4)
        assert float(row["variability"]) == pytest.approx(variability, abs=1e-4)
        assert float(row["correctness"]) == pytest.approx(correctness, abs=1e-4)
        assert int(row["flips"]) == flips
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # most suspect first
    # the stored probabilities are the trained model's CRF marginals at those tokens
    model, data = fitted.trainer.lightning_module.eval(), fitted.trainer.datamodule
    batch = next(iter(data.val_dataloader()))
    with torch.no_grad():
        probs = crf_marginals(model(batch["input_ids"], batch["attention_mask"]), batch["attention_mask"], model.crf)
    newest = records[-1]
    at = {t: i for i, t in enumerate(newest.token_id.tolist())}
    for (row, pos) in zip(*np.nonzero(batch["labels"].numpy() >= 0)):
        i = at[(int(row) << 20) | int(pos)]
        assert newest.probs[i].astype(np.float32) == pytest.approx(probs[row, pos].numpy(), abs=2e-3)
        assert float(newest.gold_prob[i]) == pytest.approx(float(probs[row, pos, batch["labels"][row, pos]]), abs=2e-3)


def test_an_int_bounds_the_tokens_with_the_same_subset_every_epoch(tmp_path, fit_with_callback):
    fit_with_callback(epochs=2, label_issues=50)
    records = fit_records(tmp_path / "ner_viz")
    assert [len(r) for r in records] == [50, 50]
    assert np.array_equal(records[0].token_id, records[1].token_id)
    assert records[0].seen > 50


def test_train_dynamics_rank_the_training_batches_tokens(tmp_path, fit_with_callback, capsys):
    fit_with_callback(epochs=2, train_dynamics=True)
    root = tmp_path / "ner_viz"
    records = fit_records(root / "train_dynamics")
    assert len(records) == 2 and all(len(r) > 0 for r in records)
    plain = plain_dynamics(records)
    rows = read_issues(root, "train_label_issues.csv")
    assert {token_id(r) for r in rows} == set(records[-1].token_id.tolist())  # the newest epoch's tokens, ranked
    for row in rows:
        confidence, variability, correctness, flips = plain[token_id(row)]
        assert float(row["confidence"]) == pytest.approx(confidence, abs=1e-4)
        assert (float(row["correctness"]), int(row["flips"])) == (pytest.approx(correctness, abs=1e-4), flips)
    assert main(["issues", str(tmp_path), "--train", "--top", "3", "--conll", str(tmp_path / "train.conll")]) == 0
    printed = capsys.readouterr().out
    assert f"{len(rows)} most suspect tokens listed" in printed and "train_label_issues.csv" in printed
    assert (tmp_path / "train.conll").read_text().count("REVIEW") >= 3


def test_train_dynamics_without_example_ids_says_how_to_add_them(fit_with_callback):
    def no_ids(batch):
        return {k: v for k, v in batch.items() if k != "example_ids"}

    with pytest.raises(ValueError, match="needs every training batch to carry `example_ids`"):
        fit_with_callback(epochs=1, train_dynamics=True, batch_adapter=no_ids)


def test_label_issues_off_writes_no_dynamics(tmp_path, fit_with_callback):
    fit_with_callback(epochs=1, label_issues=False)
    assert not list((tmp_path / "ner_viz").rglob("dynamics.npz"))
    assert not (tmp_path / "ner_viz" / "label_issues.csv").exists()


@pytest.mark.parametrize("value", [-1, "yes", 1.5])
def test_a_bad_label_issues_value_says_what_it_must_be(value):
    with pytest.raises(ValueError, match="label_issues must be True, False or the number"):
        EmbeddingDriftCallback(label_issues=value)


def test_token_dynamics_that_cannot_be_written_leave_the_snapshot_saved(tmp_path):
    from label_issue_data import write_store

    from lightning_ner_viz import NerVizWarning
    from lightning_ner_viz.analysis.token_dynamics import TEXTS_FILE, TokenDynamics
    from lightning_ner_viz.snapshot import _save_dynamics

    store = write_store(tmp_path / "ner_viz")
    name = store.names()[-1]
    record = TokenDynamics.load(store.directory(name))
    target = tmp_path / "target"
    target.mkdir()
    (target / TEXTS_FILE).mkdir()  # a real write error: the JSON file's path is a directory
    with pytest.warns(NerVizWarning, match="Could not save the token dynamics.*the snapshot is saved"):
        _save_dynamics(record, target, target)
    assert not TokenDynamics.exists(target)  # no half-written record left behind


def test_a_token_is_shown_with_its_whole_word_marked_in_its_sentence():
    from lightning_ner_viz.analysis.label_issue_report import TokenTextIndex
    from lightning_ner_viz.analysis.token_dynamics import SentenceText
    from lightning_ner_viz.snapshot import make_token_id

    index = TokenTextIndex({7: SentenceText(["[CLS]", "jo", "##hn", "<img src=x>", "smith", "[SEP]"], [-1, 0, 0, 1, 2, -6])})
    assert index.describe(int(make_token_id(7, 2))) == ("##hn", "john", "«john» <img src=x> smith")
    assert index.describe(int(make_token_id(7, 4))) == ("smith", "smith", "john <img src=x> «smith»")
    assert index.describe(int(make_token_id(8, 1))) == ("?", "?", "")  # a sentence whose text was not kept

"""Every snapshot's analyses reach the sinks from a real fit, computed in the projector child; cluster ids
carry over epochs and a resume (#13)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RecordingSink
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis, error_rows


def test_each_snapshot_brings_its_analyses_to_the_sinks(tmp_path, fit_with_callback):
    sink = RecordingSink()
    fit_with_callback(sinks=[sink], max_tokens=300, epochs=2, torch_seed=0)  # projected in the child process
    assert [s.epoch for s, _ in sink.analyses] == [0, 1]
    for snapshot, analysis in sink.analyses:
        assert isinstance(analysis, EpochAnalysis) and not analysis.notes
        assert set(analysis.errors) == set(analysis.similarity) - {"entities"} == {"hidden", "emissions"}
        wrong = np.flatnonzero(~snapshot.correct)
        assert sorted(analysis.errors["hidden"].index.tolist()) == wrong.tolist()
        rows = error_rows(snapshot, analysis.errors["hidden"])
        margins = [r["margin"] for r in rows if r["margin"] is not None]
        assert margins == sorted(margins) and all(r["gold"] != r["predicted"] for r in rows)
        assert analysis.similarity["hidden"].similarity.shape == (len(snapshot.label_names),) * 2
        assert set(analysis.clusters) == {"hidden", "entities"}
        assert len(analysis.clusters["hidden"].stable_id) == len(snapshot)
        assert len(analysis.clusters["entities"].stable_id) == len(snapshot.groups["entities"])
        assert analysis.to_dict()["clusters"]["hidden"]["summaries"]


def test_cluster_ids_continue_after_a_resume(tmp_path, fit_with_callback):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = RecordingSink()
    fit_with_callback(sinks=[first], max_tokens=300, epochs=2, torch_seed=0, callbacks=[ckpt])
    before = first.analyses[-1][1].clusters["hidden"]
    resumed = RecordingSink()
    _, callback = fit_with_callback(sinks=[resumed], max_tokens=300, epochs=3, torch_seed=0,
                                    ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    ((snapshot, analysis),) = resumed.analyses
    assert snapshot.epoch == 2
    trackers = callback.renderer.state_dict()["clusters"]
    assert trackers["hidden"]["updates"] == 3  # epochs 0 and 1 before the checkpoint, then 2: one history
    assert set(analysis.clusters["hidden"].stable_id.tolist()) & set(before.stable_id.tolist()) - {-1}  # ids carried


def test_without_scikit_learn_the_other_analyses_go_on_and_one_warning_names_the_extra(monkeypatch, fit_with_callback):
    from lightning_utilities.core.imports import RequirementCache

    from lightning_ner_viz import NerVizWarning
    from lightning_ner_viz.analysis import clusters, label_issues

    monkeypatch.setattr(clusters, "_SKLEARN_AVAILABLE", RequirementCache("scikit-learn-missing>=1.3", "sklearn_missing"))
    monkeypatch.setattr(label_issues, "_CLEANLAB_AVAILABLE", RequirementCache("cleanlab-missing>=2.6", "cl_missing"))
    sink = RecordingSink()
    with pytest.warns(NerVizWarning, match=r"No (sub-clusters|label issues).*lightning-ner-viz\[analysis\]") as record:
        fit_with_callback(sinks=[sink], epochs=2, max_tokens=300, background="thread")  # the patch holds in-process
    assert sum("No sub-clusters" in str(w.message) for w in record) == 1  # once, not per epoch
    assert sum("No label issues" in str(w.message) and "[analysis]" in str(w.message) for w in record) == 1
    assert all(a.label_issues is None for _, a in sink.analyses)
    assert [(bool(a.errors), bool(a.similarity), sorted(a.clusters)) for _, a in sink.analyses] == [(True, True, [])] * 2

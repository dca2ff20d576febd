"""The default frame draws no drift that is not there: UMAP on a tagger that barely changes stays still."""

from __future__ import annotations

import numpy as np
from rrd_reading import read_rrd
from transformers import BertForTokenClassification

from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.demo.model import HFTokenClassifier
from lightning_ner_viz.projection.frame_names import resolve_frame
from lightning_ner_viz.sinks import RerunSink


def test_auto_picks_procrustes_for_pca_and_fixed_for_umap_and_tsne():
    assert [resolve_frame("auto", r) for r in ("pca", "umap", "tsne")] == ["procrustes", "fixed", "fixed"]
    assert resolve_frame("warm", "umap") == "warm"


def test_umap_with_the_default_frame_moves_a_barely_trained_tagger_under_5_percent(tmp_path, fit_with_callback,
                                                                                   bert_config, datamodule):
    bert_config.num_labels = len(LABEL_NAMES)
    model = HFTokenClassifier(BertForTokenClassification(bert_config), lr=1e-6)
    rrd = tmp_path / "emb.rrd"
    fitted = fit_with_callback(model=model, epochs=3, reducer="umap", max_tokens=300, sinks=[RerunSink(path=rrd)],
                               torch_seed=0)
    assert fitted.callback.frame == "auto"
    clouds = read_rrd(rrd)["/embeddings/hidden"]
    assert [r["epoch"] for r in clouds] == [0, 1, 2]
    for before, after in zip(clouds, clouds[1:]):
        a, b = np.asarray(before["Points3D:positions"]), np.asarray(after["Points3D:positions"])
        assert before["token_id"] == after["token_id"]
        moved = np.linalg.norm(b - a, axis=1).mean() / np.ptp(a, axis=0).max()
        assert moved < 0.05, moved

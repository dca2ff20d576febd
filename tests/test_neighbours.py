"""Each token's nearest neighbours in the original space, computed in the projector and carried to the sinks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RecordingSink, chromium_page, needs_chromium

from lightning_ner_viz import load_snapshots
from lightning_ner_viz.analysis.neighbours import NeighbourFinder, nearest_neighbours, neighbour_jaccard


def test_nearest_neighbours_are_scikit_learns_cosine_neighbours():
    from sklearn.neighbors import NearestNeighbors

    X = np.random.default_rng(0).standard_normal((300, 24)).astype(np.float32)
    rows, dist = nearest_neighbours(X, 10)
    found = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    np.testing.assert_array_equal(rows, found[1][:, 1:])  # the first is the token itself
    np.testing.assert_allclose(dist, found[0][:, 1:], atol=1e-5)
    assert nearest_neighbours(X[:1], 10)[0].shape == (1, 0)  # a lone token has none


def test_the_overlap_with_the_previous_snapshot_is_by_token_id():
    X = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    ids = np.arange(100, 150)
    rows, _ = nearest_neighbours(X, 5)
    order = np.random.default_rng(2).permutation(50)  # the same tokens, other rows
    back = np.argsort(order)
    same = neighbour_jaccard(ids[order], back[rows][order], ids, rows)
    np.testing.assert_array_equal(same, 1.0)
    newcomer = neighbour_jaccard(np.r_[ids, 999], np.r_[rows, rows[:1]], ids, rows)
    assert np.isnan(newcomer[-1]) and (newcomer[:-1] == 1.0).all()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, examples, tokenizer):
    import lightning.pytorch as pl
    import torch
    from conftest import trainer_kwargs
    from outside_model import UserCrfTagger
    from transformers import BertConfig

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.demo.datamodule import NerDataModule
    from lightning_ner_viz.sinks import HtmlSink, RerunSink

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    data = NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)
    torch.manual_seed(0)
    sink, root = RecordingSink(), tmp_path_factory.mktemp("neighbours")
    callback = EmbeddingDriftCallback(sinks=[sink, HtmlSink("report.html"), RerunSink("emb.rrd")], max_tokens=80,
                                      label_names=LABEL_NAMES, strict=True, max_pending=None)
    trainer = pl.Trainer(**trainer_kwargs(root, max_epochs=2, limit_train_batches=3), callbacks=[callback])
    trainer.fit(UserCrfTagger(config, num_tags=len(LABEL_NAMES)), data)
    callback.wait()
    return root, sink


def test_every_snapshot_carries_its_tokens_neighbours_and_their_overlap_with_the_last(fitted):
    root, sink = fitted
    snapshots = load_snapshots(root / "ner_viz")
    (first, a), (second, b) = sink.analyses
    for snapshot, analysis, saved in ((first, a, snapshots[0]), (second, b, snapshots[1])):
        near = analysis.neighbours
        assert near.view == "hidden" and near.row.shape == (len(snapshot), 10)
        rows, dist = nearest_neighbours(saved.views["hidden"], 10)  # recomputed from what was saved
        np.testing.assert_array_equal(near.row, rows)
        np.testing.assert_allclose(near.distance, dist, atol=1e-6)
    assert np.isnan(a.neighbours.jaccard).all()  # nothing before the first
    kept = b.neighbours.jaccard
    assert np.isfinite(kept).all() and ((0 <= kept) & (kept <= 1)).all() and kept.mean() < 1  # training moved them


def test_a_resumed_finder_compares_with_the_previous_snapshot_read_back(fitted):
    root, sink = fitted
    first, second = load_snapshots(root / "ner_viz")
    resumed = NeighbourFinder().find(second, previous=first)
    np.testing.assert_array_equal(resumed.jaccard, sink.analyses[1][1].neighbours.jaccard)


def test_the_report_gets_the_neighbours(fitted):
    from lightning_ner_viz.sinks.html import read_payload

    root, sink = fitted
    _, analysis = sink.analyses[-1]
    part = read_payload(root / "ner_viz" / "report.html")["epochs"][-1]["analysis"]["neighbours"]
    assert part["k"] == 10 and part["row"] == analysis.neighbours.row.reshape(-1).tolist()
    np.testing.assert_allclose(part["dist"], analysis.neighbours.distance.reshape(-1), atol=5e-4)
    np.testing.assert_allclose(part["jaccard"], analysis.neighbours.jaccard, atol=5e-3)


def test_a_rerun_point_carries_its_neighbours_and_the_crowd_it_left(fitted):
    from rrd_reading import read_rrd

    root, sink = fitted
    clouds = read_rrd(root / "ner_viz" / "emb.rrd")["/embeddings/hidden"]  # the neighbour values merged into the points
    assert [r["epoch"] for r in clouds] == [0, 1] and all(r["Points3D:positions"] for r in clouds)
    for (snapshot, analysis), cloud in zip(sink.analyses, clouds):
        near, gold = analysis.neighbours, snapshot.gold_names()
        assert cloud["token_id"] == snapshot.token_id.tolist() and len(cloud["neighbours"]) == len(snapshot)
        for j in (0, 7, len(snapshot) - 1):
            lines = cloud["neighbours"][j].split("\n")
            assert lines == [f"{snapshot.word[r]} ({gold[r]}, predicted {snapshot.pred_names()[r]}) {d:.3f}"
                             for r, d in zip(near.row[j], near.distance[j])]
            labels = [gold[r] for r in near.row[j]]
            assert cloud["neighbour_labels"][j] == ", ".join(f"{g} ×{labels.count(g)}" for g in
                                                            sorted(set(labels), key=lambda g: (-labels.count(g), labels.index(g))))
    first, second = clouds
    assert set(first["neighbour_labels_before"]) == {""}  # nothing before the first snapshot
    before = dict(zip(clouds[0]["token_id"], first["neighbour_labels"]))
    assert second["neighbour_labels_before"] == [before.get(t, "") for t in clouds[1]["token_id"]]
    np.testing.assert_allclose(second["neighbours_kept_share"], sink.analyses[1][1].neighbours.jaccard, atol=5e-4)


@needs_chromium
def test_the_reports_neighbour_list_is_the_one_python_computed(fitted, tmp_path):
    root, sink = fitted
    snapshot, analysis = sink.analyses[-1]
    near = analysis.neighbours
    token = int(snapshot.token_id[7])
    with chromium_page(tmp_path / "profile", 1400, 1400) as (page, errors):
        page.goto((root / "ner_viz" / "report.html").as_uri())
        page.wait_for_function("window.nerViz !== undefined", timeout=20_000)
        page.evaluate("nerViz.ready")
        shown = page.evaluate(f"nerViz.neighbours({token})")
        assert shown["ids"] == snapshot.token_id[near.row[7]].tolist()
        np.testing.assert_allclose(shown["dist"], near.distance[7], atol=5e-4)
        assert shown["jaccard"] == pytest.approx(float(near.jaccard[7]), abs=5e-3)
        rows = page.evaluate("Array.from(document.querySelectorAll('#nbtable tbody tr')).map(r => +r.dataset.id)")
        assert rows == shown["ids"]
        card = page.evaluate("document.querySelector('#nbtable').closest('.card').textContent")
        assert "kept since the previous snapshot" in card and snapshot.token[7] in card
        page.evaluate("nerViz.setSnapshot(nerViz.names[0])")  # the card follows the slider
        page.wait_for_function("nerViz.state().index === 0")
        first = sink.analyses[0][1].neighbours
        j = int(np.flatnonzero(sink.analyses[0][0].token_id == token)[0])
        rows = page.evaluate("Array.from(document.querySelectorAll('#nbtable tbody tr')).map(r => +r.dataset.id)")
        assert rows == sink.analyses[0][0].token_id[first.row[j]].tolist()
        assert errors == []

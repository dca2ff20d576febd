"""Snapshots: round trip without pickle, atomic writes, clear errors on damage."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lightning_ner_viz import NerVizWarning, load_snapshots
from lightning_ner_viz.snapshot import Snapshot, make_token_id


def _snapshot(epoch: int = 0, n: int = 5) -> Snapshot:
    rng = np.random.default_rng(0)
    sid, pos = np.arange(n) // 2, np.arange(n) % 2 + 1
    return Snapshot(
        epoch=epoch, step=10 * epoch, token_id=make_token_id(sid, pos), sentence_id=sid, position=pos,
        token=[f"t{i}" for i in range(n)], word=[f"w{i}" for i in range(n)], gold=np.arange(n) % 3,
        pred=np.zeros(n), views={"hidden": rng.normal(size=(n, 4)), "emissions": rng.normal(size=(n, 3))},
        label_names=["O", "B-X", "I-X"], sentences={0: "a b", 1: "c d"},
        sentence_tags={0: (np.array([0, 1]), np.array([0, 0]))}, stats={"tokens_seen": 9},
    )


def test_round_trip(tmp_path):
    snap = _snapshot(epoch=3)
    snap.save(tmp_path / "epoch=0003")
    back = load_snapshots(tmp_path)[0]
    assert back.epoch == 3 and back.token == snap.token and back.label_names == snap.label_names
    assert np.array_equal(back.token_id, snap.token_id)
    assert np.allclose(back.views["hidden"], snap.views["hidden"])
    assert back.sentences == snap.sentences and back.stats == snap.stats
    assert np.array_equal(back.sentence_tags[0][0], [0, 1])
    assert back.correct.tolist() == snap.correct.tolist()


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    _snapshot(epoch=1).save(tmp_path / "epoch=0001")
    _snapshot(epoch=1, n=7).save(tmp_path / "epoch=0001")
    assert [p.name for p in tmp_path.iterdir()] == ["epoch=0001"]
    assert len(load_snapshots(tmp_path)[0]) == 7


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="rows"):
        Snapshot(epoch=0, step=0, token_id=np.arange(3), sentence_id=np.arange(3), position=np.arange(3),
                 token=["a"], word=["a", "b", "c"], gold=np.arange(3), pred=np.arange(3), views={},
                 label_names=["O"])


@pytest.mark.parametrize("damage", ["truncate", "garbage_json", "missing"])
def test_damaged_snapshot_gives_a_clear_error(tmp_path, damage):
    path = _snapshot().save(tmp_path / "epoch=0000")
    if damage == "truncate":
        data = (path / "arrays.npz").read_bytes()
        (path / "arrays.npz").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_json":
        (path / "meta.json").write_text("{not json")
    else:
        (path / "arrays.npz").unlink()
    with pytest.raises(ValueError, match=str(path)):
        Snapshot.load(path)


def _edit_meta(path, edit):
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps(edit(meta)))


@pytest.mark.parametrize("edit", [
    lambda meta: [meta],  # a list instead of an object
    lambda meta: "a string",
    lambda meta: None,
    lambda meta: {k: v for k, v in meta.items() if k != "token"},  # a missing key
    lambda meta: {k: v for k, v in meta.items() if k != "sentences"},
    lambda meta: {**meta, "epoch": "3"},  # wrong types
    lambda meta: {**meta, "views": "hidden"},
    lambda meta: {**meta, "views": [1, 2]},
    lambda meta: {**meta, "token": None},
    lambda meta: {**meta, "sentences": ["a b", "c d"]},
    lambda meta: {**meta, "sentences": {"x": "a b"}},
    lambda meta: {**meta, "stats": [1]},
    lambda meta: {**meta, "label_names": {"0": "O"}},
    lambda meta: {**meta, "word": meta["word"][:2]},  # a list of the wrong length
    lambda meta: {**meta, "views": [*meta["views"], "absent"]},  # a view arrays.npz lacks
], ids=["list", "string", "null", "no_token", "no_sentences", "epoch_str", "views_str", "views_ints", "token_null",
        "sentences_list", "sentences_bad_key", "stats_list", "label_names_object", "word_short", "view_absent"])
def test_malformed_meta_json_names_the_file(tmp_path, edit):
    path = _snapshot().save(tmp_path / "epoch=0000")
    _edit_meta(path, edit)
    with pytest.raises(ValueError, match=re.escape(str(path))) as err:
        Snapshot.load(path)
    assert "meta.json" in str(err.value) or "arrays.npz" in str(err.value)
    assert "Delete" in str(err.value)


@pytest.mark.parametrize("damage", ["short_gold", "short_view", "view_1d", "tags_mismatch", "tags_half", "text_ids"])
def test_malformed_arrays_name_the_file(tmp_path, damage):
    path = _snapshot().save(tmp_path / "epoch=0000")
    with np.load(path / "arrays.npz") as npz:
        arrays = dict(npz)
    if damage == "short_gold":
        arrays["gold"] = arrays["gold"][:3]
    elif damage == "short_view":
        arrays["view.hidden"] = arrays["view.hidden"][:2]
    elif damage == "view_1d":
        arrays["view.hidden"] = arrays["view.hidden"][:, 0]
    elif damage == "tags_mismatch":
        arrays["tags.gold"] = arrays["tags.gold"][:1]
    elif damage == "tags_half":
        del arrays["tags.pred"]
    else:
        arrays["token_id"] = np.array(["a"] * 5)
    np.savez(path / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match=re.escape(str(path / "arrays.npz"))):
        Snapshot.load(path)


def _three_epochs_one_damaged(root):
    for epoch in range(3):
        _snapshot(epoch=epoch).save(root / f"epoch={epoch:04d}")
    (root / "epoch=0001" / "meta.json").write_text("[]")
    return root / "epoch=0001"


def test_a_damaged_epoch_is_skipped_with_a_warning(tmp_path):
    bad = _three_epochs_one_damaged(tmp_path)
    with pytest.warns(NerVizWarning, match=re.escape(str(bad))) as record:
        snapshots = load_snapshots(tmp_path)
    assert [s.epoch for s in snapshots] == [0, 2]
    assert len(record) == 1 and "not an object" in str(record[0].message)


def test_strict_refuses_a_damaged_epoch(tmp_path):
    bad = _three_epochs_one_damaged(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(bad / "meta.json"))):
        load_snapshots(tmp_path, strict=True)


def test_every_epoch_damaged_is_an_error(tmp_path):
    for epoch in range(2):
        path = _snapshot(epoch=epoch).save(tmp_path / f"epoch={epoch:04d}")
        (path / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="Every snapshot under .* is damaged"):
        load_snapshots(tmp_path)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = _snapshot().save(tmp_path / "epoch=0000")
    with np.load(path / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["gold"] = np.array([{"evil": 1}] * 5, dtype=object)
    np.savez(path / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match="damaged"):
        Snapshot.load(path)


def test_empty_root_says_so(tmp_path):
    with pytest.raises(ValueError, match="No snapshots"):
        load_snapshots(tmp_path)

"""Snapshots: round trip without pickle, atomic writes, clear errors on damage."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_ner_viz import load_snapshots
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

"""TensorBoardSink: the projector config, tensors/metadata TSVs and scalars, read back from disk; one
projector tensor per snapshot (named by it), scalars at the global step, a baseline's apart."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("tensorboard")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `examples` is importable (conftest.py does this too)
    sys.path.insert(0, str(ROOT))

import lightning.pytorch as pl  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from lightning_ner_viz import EmbeddingDriftCallback, Snapshot, load_snapshots  # noqa: E402
from lightning_ner_viz.sinks import tensorboard as tb_module  # noqa: E402
from lightning_ner_viz.sinks.tensorboard import METADATA_HEADER, TensorBoardSink  # noqa: E402

VIEWS = ("hidden", "emissions")


def _projector(log_dir: Path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    return text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _check_projector(log_dir: Path, snapshots: list[Snapshot], prefix: str = "ner_viz") -> None:
    """One embedding per snapshot and view, in logging order, whose files hold the snapshot's vectors and labels."""
    config = _projector(log_dir)
    names = [e.tensor_name for e in config.embeddings]
    assert names == [f"{prefix}/{view}:{s.key.name}" for s in snapshots for view in VIEWS]
    for snap in snapshots:
        for view in VIEWS:
            (emb,) = [e for e in config.embeddings if e.tensor_name == f"{prefix}/{view}:{snap.key.name}"]
            assert list(emb.tensor_shape) == list(snap.views[view].shape)
            tensors = _read_tsv(log_dir / emb.tensor_path)
            assert len(tensors) == len(snap)
            assert {len(row) for row in tensors} == {snap.views[view].shape[1]}
            np.testing.assert_allclose(np.asarray(tensors, dtype=np.float32), snap.views[view], rtol=1e-5, atol=1e-6)
            metadata = _read_tsv(log_dir / emb.metadata_path)
            assert metadata[0] == METADATA_HEADER
            rows = metadata[1:]
            assert len(rows) == len(snap)
            assert [r[1] for r in rows] == snap.gold_names()
            assert [r[2] for r in rows] == snap.pred_names()
            assert [r[3] == "True" for r in rows] == snap.correct.tolist()
            assert [r[0] for r in rows] == [t.replace("\t", " ") for t in snap.token]


@pytest.fixture()
def fit_hf_example(fit_with_callback):
    """Fit the HF example (seeded, 2 epochs, label names from its config) with one sink, strict."""
    from examples.hf_token_classifier import build

    def fit(sink: TensorBoardSink, logger: TensorBoardLogger | bool = False) -> None:
        pl.seed_everything(0, verbose=False)
        module, data = build(n_examples=100, batch_size=16)
        callback = EmbeddingDriftCallback(sinks=[sink], max_tokens=200, strict=True)
        fit_with_callback(callback, model=module, data=data, trainer={"logger": logger, "log_every_n_steps": 1})
        assert callback.logged_epochs == [0, 1]

    return fit


def test_own_writer_under_default_root_dir(tmp_path, fit_hf_example):
    sink = TensorBoardSink()
    fit_hf_example(sink)
    log_dir = tmp_path / "ner_viz" / "tensorboard"
    assert sink.writer_log_dir == str(log_dir) and sink.save_dir == log_dir
    assert sink._writer is None  # closed by the callback at the end of fit

    snapshots = load_snapshots(tmp_path / "ner_viz")
    assert [s.epoch for s in snapshots] == [0, 1]
    assert all(0 < len(s) <= 200 for s in snapshots)
    _check_projector(log_dir, snapshots)

    scalars = _scalars(log_dir)
    assert [step for step, _ in scalars["ner_viz/n_tokens"]] == [s.step for s in snapshots]  # the global step
    assert 0 < snapshots[0].step < snapshots[1].step
    assert [v for _, v in scalars["ner_viz/n_tokens"]] == [float(len(s)) for s in snapshots]
    accuracy = dict(scalars["ner_viz/sample_accuracy"])
    for snap in snapshots:
        assert accuracy[snap.step] == pytest.approx(float(snap.correct.mean()), abs=1e-6)


def test_reuses_the_trainers_tensorboard_logger(tmp_path, fit_hf_example):
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    sink = TensorBoardSink(prefix="emb")
    fit_hf_example(sink, logger=logger)
    log_dir = Path(logger.log_dir)
    assert sink.writer_log_dir == str(log_dir) and sink.save_dir == log_dir
    assert not (tmp_path / "ner_viz" / "tensorboard").exists()  # no second writer

    snapshots = load_snapshots(tmp_path / "ner_viz")
    _check_projector(log_dir, snapshots, prefix="emb")
    scalars = _scalars(log_dir)  # the logger's own metrics and the sink's, in one event stream, one step axis
    assert [step for step, _ in scalars["emb/n_tokens"]] == [s.step for s in snapshots]
    assert "val_loss" in scalars and "train_loss" in scalars
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1


# ---- unit tests on synthetic snapshots (no Trainer) ----------------------------------------


def _snapshot(epoch: int, n: int = 12, tokens: list[str] | None = None, *, step: int | None = None,
              stage: str = "fit", run: int = 0) -> Snapshot:
    """A snapshot of ``n`` tokens at ``step`` (``10 * epoch`` by default), its vectors seeded by the step."""
    step = 10 * epoch if step is None else step
    rng = np.random.default_rng([epoch, step, run, stage == "fit"])
    gold = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.5, gold, (gold + 1) % 3)
    return Snapshot(
        epoch=epoch, step=step, stage=stage, run=run, token_id=np.arange(n), sentence_id=np.zeros(n, dtype=np.int64),
        position=np.arange(n), token=tokens or [f"tok{i}" for i in range(n)], word=[f"w{i}" for i in range(n)],
        gold=gold, pred=pred,
        views={"hidden": rng.normal(size=(n, 8)).astype(np.float32), "emissions": rng.normal(size=(n, 3)).astype(np.float32)},
        label_names=["O", "B-X", "I-X"],
    )


def _log(sink: TensorBoardSink, snap: Snapshot, metrics: dict[str, float] | None = None) -> None:
    coords = {v: np.zeros((len(snap), 2), dtype=np.float32) for v in snap.views}
    sink.log_epoch(snap, coords, metrics if metrics is not None else {"n_tokens": float(len(snap))})


def _trainer(tmp_path: Path, loggers=()) -> SimpleNamespace:
    return SimpleNamespace(default_root_dir=str(tmp_path), loggers=list(loggers))


def test_relative_save_dir_resolves_under_ner_viz_and_wins_over_a_logger(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    sink = TensorBoardSink("mine")
    sink.setup(_trainer(tmp_path, [logger]))
    assert sink.save_dir == tmp_path / "ner_viz" / "mine"
    _log(sink, _snapshot(0))
    sink.close()
    assert sink.writer_log_dir == str(tmp_path / "ner_viz" / "mine")
    assert logger._experiment is None  # the logger's writer was never opened
    _check_projector(tmp_path / "ner_viz" / "mine", [_snapshot(0)])


def test_close_leaves_the_loggers_writer_open(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    sink = TensorBoardSink()
    sink.setup(_trainer(tmp_path, [logger]))
    _log(sink, _snapshot(0))
    sink.close()
    assert logger.experiment.file_writer is not None  # still open: the logger closes it
    logger.experiment.add_scalar("after", 1.0, 0)
    logger.finalize("success")
    assert "after" in _scalars(Path(logger.log_dir))


def test_picklable_before_and_after_first_use(tmp_path):
    sink = TensorBoardSink(prefix="p")
    sink.setup(_trainer(tmp_path))
    clone = pickle.loads(pickle.dumps(sink))
    assert clone.save_dir == sink.save_dir and clone._writer is None
    _log(sink, _snapshot(0))
    assert sink._writer is not None
    clone = pickle.loads(pickle.dumps(sink))  # an open writer is not pickled
    assert clone._writer is None and not clone._owns_writer
    sink.close()
    assert sink._writer is None
    sink.close()  # idempotent


def test_a_new_writer_on_the_same_dir_keeps_earlier_epochs(tmp_path):
    """A resumed fit opens a new writer: the projector still lists every snapshot, each once, in order."""
    first = TensorBoardSink(str(tmp_path / "tb"))
    first.setup(None)
    _log(first, _snapshot(0))
    _log(first, _snapshot(1))
    first.close()
    second = TensorBoardSink(str(tmp_path / "tb"))
    second.setup(None)
    _log(second, _snapshot(1))  # the resumed epoch is logged again
    _log(second, _snapshot(2))
    second.close()
    _check_projector(tmp_path / "tb", [_snapshot(0), _snapshot(1), _snapshot(2)])


def test_metadata_cells_stay_one_row_and_non_finite_metrics_are_skipped(tmp_path):
    tokens = ["a\tb", "line\nbreak", "", "##x"] + [f"t{i}" for i in range(4)]
    sink = TensorBoardSink(str(tmp_path))
    sink.setup(None)
    _log(sink, _snapshot(0, n=8, tokens=tokens), {"ok": 0.5, "bad": float("nan")})
    sink.close()
    emb = _projector(tmp_path).embeddings[0]
    rows = _read_tsv(tmp_path / emb.metadata_path)[1:]
    assert [r[0] for r in rows] == ["a b", "line break", "", "##x", "t0", "t1", "t2", "t3"]
    scalars = _scalars(tmp_path)
    assert scalars["ner_viz/ok"] == [(0, 0.5)]
    assert "ner_viz/bad" not in scalars


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    from lightning_utilities.core.imports import RequirementCache

    monkeypatch.setattr(tb_module, "_TENSORBOARD_AVAILABLE", RequirementCache("tensorboard>=999"))
    sink = TensorBoardSink()
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'lightning-ner-viz\[tensorboard\]'"):
        sink.setup(_trainer(tmp_path))
    # with a TensorBoardLogger the sink writes through the logger, so no error at setup
    TensorBoardSink().setup(_trainer(tmp_path, [TensorBoardLogger(str(tmp_path))]))


def test_empty_prefix_is_rejected():
    with pytest.raises(ValueError, match="prefix"):
        TensorBoardSink(prefix="/")


def test_save_dir_from_setup_holds_the_default_and_relative_dirs(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    default, relative = TensorBoardSink(), TensorBoardSink("mine")
    default.setup(_trainer(tmp_path / "run"), tmp_path / "store")
    relative.setup(_trainer(tmp_path / "run", [logger]), tmp_path / "store")
    assert default.save_dir == tmp_path / "store" / "tensorboard"
    assert relative.save_dir == tmp_path / "store" / "mine"
    _log(relative, _snapshot(0))
    relative.close()
    _check_projector(tmp_path / "store" / "mine", [_snapshot(0)])


# ---- snapshot keys: a baseline, several validations per epoch, a validate() after fit ----------


def _four_snapshots() -> list[Snapshot]:
    """A baseline (``validate()`` at step 0), two validations of epoch 0 (steps 5, 10), one of epoch 1 (step 20)."""
    return [_snapshot(0, n=8, step=0, stage="validate"), _snapshot(0, n=9, step=5), _snapshot(0, n=10, step=10),
            _snapshot(1, n=11, step=20)]


def _log_all(log_dir: Path, snapshots: list[Snapshot]) -> None:
    sink = TensorBoardSink(str(log_dir))
    sink.setup(None)
    for snap in snapshots:
        _log(sink, snap, {"n_tokens": float(len(snap)), "hidden/cka_prev": snap.step / 100})
    sink.close()


def test_a_baseline_and_two_validations_of_one_epoch_each_get_a_tensor_and_a_point(tmp_path):
    snapshots = _four_snapshots()
    _log_all(tmp_path, snapshots)

    _check_projector(tmp_path, snapshots)  # 4 tensors per view, in logging order, none overwritten
    config = _projector(tmp_path)
    assert len({e.tensor_path for e in config.embeddings}) == 8
    assert [e.tensor_name for e in config.embeddings][::2] == [
        "ner_viz/hidden:validate=00-step=0000000", "ner_viz/hidden:epoch=0000-step=0000005",
        "ner_viz/hidden:epoch=0000-step=0000010", "ner_viz/hidden:epoch=0001-step=0000020"]
    assert (tmp_path / "ner_viz%2fhidden" / "validate=00-step=0000000" / "tensors.tsv").is_file()

    scalars = _scalars(tmp_path)  # the fit's curve starts at step 5; the baseline is its own tag
    assert scalars["ner_viz/n_tokens"] == [(5, 9.0), (10, 10.0), (20, 11.0)]
    assert scalars["ner_viz/baseline/n_tokens"] == [(0, 8.0)]
    assert scalars["ner_viz/baseline/hidden/cka_prev"] == [(0, 0.0)]
    assert [step for step, _ in scalars["ner_viz/hidden/cka_prev"]] == [5, 10, 20]
    assert not any(tag.startswith("ner_viz/validate/") for tag in scalars)


def test_a_validate_after_fit_at_the_fits_last_step_is_kept_apart(tmp_path):
    last, after = _snapshot(1, n=11, step=20), _snapshot(1, n=7, step=20, stage="validate")
    assert not after.key.is_baseline
    _log_all(tmp_path, [last, after])
    _check_projector(tmp_path, [last, after])
    assert [e.tensor_name for e in _projector(tmp_path).embeddings][::2] == [
        "ner_viz/hidden:epoch=0001-step=0000020", "ner_viz/hidden:validate=00-step=0000020"]
    scalars = _scalars(tmp_path)
    assert scalars["ner_viz/n_tokens"] == [(20, 11.0)]
    assert scalars["ner_viz/validate/n_tokens"] == [(20, 7.0)]


def test_tensorboards_projector_plugin_serves_every_snapshot(tmp_path):
    """The names (``:``, ``=``) and ``%2f`` directories are what TensorBoard's projector reads back."""
    from tensorboard.plugins.base_plugin import TBContext
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    from werkzeug.test import Client

    class NoRuns:  # the plugin then reads the log directory itself as the run "."
        def list_runs(self, ctx, *, experiment_id):
            return []

    snapshots = _four_snapshots()
    _log_all(tmp_path, snapshots)
    apps = ProjectorPlugin(TBContext(logdir=str(tmp_path), data_provider=NoRuns())).get_plugin_apps()

    def get(route: str, **args: str):
        response = Client(apps[route]).get("/", query_string={"run": ".", **args})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    assert get("/runs").get_json() == ["."]
    served = [e["tensorName"] for e in get("/info").get_json()["embeddings"]]
    assert served == [f"ner_viz/{view}:{s.key.name}" for s in snapshots for view in VIEWS]
    for snap in snapshots:
        for view in VIEWS:
            name = f"ner_viz/{view}:{snap.key.name}"
            tensor = np.frombuffer(get("/tensor", name=name).data, dtype=np.float32)
            np.testing.assert_allclose(tensor.reshape(snap.views[view].shape), snap.views[view], rtol=1e-6)
            metadata = get("/metadata", name=name).get_data(as_text=True).splitlines()
            assert metadata[0].split("\t") == METADATA_HEADER and len(metadata) == len(snap) + 1


def test_the_loggers_own_add_embedding_and_the_sinks_share_one_config(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    sink = TensorBoardSink()
    sink.setup(_trainer(tmp_path, [logger]))
    baseline, first = _four_snapshots()[:2]
    _log(sink, baseline)
    logger.experiment.add_embedding(np.eye(3, dtype=np.float32), tag="user", global_step=7)  # the user's own
    _log(sink, first)
    sink.close()
    logger.finalize("success")
    names = [e.tensor_name for e in _projector(Path(logger.log_dir)).embeddings]
    assert names == ["ner_viz/hidden:validate=00-step=0000000", "ner_viz/emissions:validate=00-step=0000000",
                     "user:00007", "ner_viz/hidden:epoch=0000-step=0000005", "ner_viz/emissions:epoch=0000-step=0000005"]


def test_a_baseline_validate_then_mid_epoch_validations_in_a_real_fit(tmp_path, bert_config, datamodule):
    from conftest import validate_then_fit_mid_epoch

    snapshots = validate_then_fit_mid_epoch(tmp_path, TensorBoardSink("tb"), bert_config, datamodule)
    log_dir = tmp_path / "ner_viz" / "tb"
    _check_projector(log_dir, snapshots)
    scalars = _scalars(log_dir)
    assert [step for step, _ in scalars["ner_viz/n_tokens"]] == [2, 4, 6, 8]
    assert [step for step, _ in scalars["ner_viz/baseline/n_tokens"]] == [0]

"""Time to picture: the projector child boots and warms up at setup, umap's numba code is cached on disk, and the
rendering knows how far behind training it is."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback

from lightning_ner_viz import EmbeddingDriftCallback
from lightning_ner_viz.demo.data import LABEL_NAMES
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.projection import process
from lightning_ner_viz.projection.lag import RenderLag
from lightning_ner_viz.projection.projector import Projector
from lightning_ner_viz.projection.warm_up import warm_up
from lightning_ner_viz.reducers.umap import UMAPReducer

pytestmark = pytest.mark.serial  # wall-clock bounds: run alone, after the parallel tests (scripts/test.sh)


class ChildAtTrainStart(Callback):
    """Before the first training batch (no validation captured yet): waits for the setup's preparation to finish,
    then notes the projector child and what was rendered."""

    def __init__(self, drift: Callback) -> None:
        self.drift = drift
        self.seen: dict[str, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        render = self.drift._run.render
        deadline = time.monotonic() + 120
        while render._jobs.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        self.seen = {"pending": render._jobs.pending, "pid": render.renderer.child_pid, "place": render.renderer.place,
                     "rendered": list(render.renderer.rendered), "captured": list(self.drift._run.captured)}


@pytest.mark.parametrize("fits", [1, 2])
def test_the_projector_child_boots_and_warms_up_before_the_first_validation(fit_with_callback, fits):
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=80, label_names=LABEL_NAMES, reducer="umap")
    for fit in range(fits):  # a second fit of the same callback: its child went back to the pool, it is taken again
        probe = ChildAtTrainStart(callback)
        fit_with_callback(callback, callbacks=[probe], trainer={"num_sanity_val_steps": 0})
        seen = probe.seen
        assert seen["pending"] == 0 and len(seen["rendered"]) == 2 * fit  # prepared, and nothing new rendered yet
        assert isinstance(seen["pid"], int), seen
        assert seen["pid"] in [proc.pid for proc in process._idle], "the child prepared at setup projected, then pooled"
        lags = callback._run.render.lag.seconds
        assert len(lags) >= 2 and all(s > 0 for s in lags.values()), lags  # captured -> logged, per snapshot


def test_warm_up_runs_the_reducer_once_per_configuration():
    projector = Projector("umap", 2, 0, "warm")
    done: set = set()
    assert warm_up(projector, done) > 0
    assert done == {("umap", "warm", 2)}
    assert warm_up(projector, done) == 0.0  # a pooled child serving a second fit does not warm up again


def test_umap_code_compiled_in_one_process_is_loaded_from_disk_in_the_next():
    script = ("import numpy as np\n"
              "from lightning_ner_viz.reducers.umap import UMAPReducer\n"
              "X = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)\n"
              "UMAPReducer(n_components=2, n_epochs=5).fit(X)\n"
              "import umap.umap_ as u\n"
              "stats = u.smooth_knn_dist.stats\n"
              "print(stats.cache_hits.__len__(), stats.cache_misses.__len__(), type(u.smooth_knn_dist._cache).__name__)\n")
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    hits, _, cache = runs[1].stdout.split()
    assert cache == "FunctionCache"  # umap-learn declares it without cache=True
    assert int(hits) >= 1, "the second process must load smooth_knn_dist's machine code from the disk cache"


def test_umap_layouts_are_unchanged_by_the_disk_cache():
    X = np.random.default_rng(1).normal(size=(80, 12)).astype(np.float32)
    first = UMAPReducer(n_components=2, n_epochs=20).fit_transform(X)
    again = UMAPReducer(n_components=2, n_epochs=20).fit_transform(X)
    np.testing.assert_array_equal(first, again)


def test_render_lag_times_each_snapshot_and_names_the_oldest_waiting():
    lag = RenderLag()
    first, second = SnapshotKey("fit", 0, 10).name, SnapshotKey("fit", 1, 20).name
    assert lag.status() == ""
    lag.handed_over(first)
    time.sleep(0.05)
    lag.handed_over(second)
    assert lag.status().startswith("epoch 0 · step 10 ") and lag.status().endswith(" s behind")
    lag.rendered(first)
    assert lag.seconds[first] >= 0.05
    assert lag.status().startswith("epoch 1 · step 20 ")
    with lag.while_starting():
        assert lag.status().startswith("projector starting, epoch 1 · step 20 ")
    lag.forget(second)
    assert lag.status() == "" and list(lag.seconds) == [first]
    with lag.while_starting():
        assert lag.status() == "projector starting"

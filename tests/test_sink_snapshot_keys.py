"""Where the metric sinks put a snapshot's scalars: the fit's curve, a baseline's or another validate()'s."""

from __future__ import annotations

import pytest

from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.sinks.snapshot_keys import BASELINE, VALIDATE, scalar_namespace, scalar_prefix
from lightning_ner_viz.sinks.tensorboard_projector import tensor_dir, tensor_name


@pytest.mark.parametrize(("key", "namespace", "prefix"), [
    (SnapshotKey("fit", 0, 5), "", "ner_viz"),
    (SnapshotKey("fit", 3, -1), "", "ner_viz"),  # an older run's epoch=0003 directory
    (SnapshotKey("validate", 0, 0), BASELINE, "ner_viz/baseline"),
    (SnapshotKey("validate", 0, 0, run=1), BASELINE, "ner_viz/baseline"),
    (SnapshotKey("validate", 2, 120), VALIDATE, "ner_viz/validate"),
])
def test_scalar_namespace_and_prefix(key, namespace, prefix):
    assert scalar_namespace(key) == namespace
    assert scalar_prefix("ner_viz", key) == prefix


def test_projector_names_are_unique_per_snapshot_and_stay_in_the_log_dir():
    keys = [SnapshotKey("validate", 0, 0), SnapshotKey("fit", 0, 5), SnapshotKey("fit", 0, 10),
            SnapshotKey("fit", 1, 20), SnapshotKey("validate", 1, 20)]
    assert len({tensor_name("ner_viz/hidden", k.name) for k in keys}) == len(keys)
    assert len({tensor_dir("ner_viz/hidden", k.name) for k in keys}) == len(keys)
    assert tensor_name("ner_viz/hidden", keys[0].name) == "ner_viz/hidden:validate=00-step=0000000"
    assert tensor_dir("ner_viz/hidden", keys[1].name) == "ner_viz%2fhidden/epoch=0000-step=0000005"
    assert tensor_dir("../x/50%", keys[1].name) == "..%2fx%2f50%25/epoch=0000-step=0000005"  # one directory level

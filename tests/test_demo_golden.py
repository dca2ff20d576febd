"""The fixed-seed demo writes the same tokens, coordinates and recording paths as before the reorganisation."""

from __future__ import annotations

import json

import numpy as np
from golden.demo_fingerprint import RECORDED, fingerprint, run_demo


def test_demo_outputs_match_the_recorded_fingerprint(tmp_path):
    run_demo(tmp_path / "demo")
    found = fingerprint(tmp_path / "demo")
    expected = json.loads(RECORDED.read_text())
    assert found["entity_paths"] == expected["entity_paths"]
    assert found["tracked_token_ids"] == expected["tracked_token_ids"]
    assert found["clouds"].keys() == expected["clouds"].keys()
    for path, epochs in expected["clouds"].items():
        assert [e["epoch"] for e in found["clouds"][path]] == [e["epoch"] for e in epochs], path
        for got, want in zip(found["clouds"][path], epochs):
            assert got["token_id"] == want["token_id"], (path, want["epoch"])
            want_xyz, got_xyz = np.asarray(want["positions"]), np.asarray(got["positions"])
            scale = np.ptp(want_xyz, axis=0).max()
            np.testing.assert_allclose(got_xyz, want_xyz, atol=2e-3 * scale, err_msg=f"{path} epoch {want['epoch']}")

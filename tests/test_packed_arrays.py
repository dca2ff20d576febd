"""Packed number arrays in the reports' JSON read back as exactly the numbers their decimal text gave."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_ner_viz.sinks.packed_arrays import is_packed, pack, unpack, unpack_tree


@pytest.mark.parametrize("scale, decimals", [(1e-3, 6), (1.0, 3), (40.0, 2), (3e4, 0)])
def test_a_packed_array_unpacks_to_the_doubles_of_its_rounded_decimal_text(scale, decimals):
    x = np.random.default_rng(0).normal(0, scale, 5000)
    packed = pack(x, decimals)
    assert is_packed(packed) and packed["packed"] in {"int8", "int16", "int32"}
    assert unpack(packed) == json.loads(json.dumps(np.round(x, decimals).tolist()))  # bit for bit


def test_the_smallest_type_that_holds_the_values_is_used_and_ints_stay_ints():
    assert pack([0, 255])["packed"] == "uint8" and pack([-1, 3])["packed"] == "int8"
    assert pack([0, 40000])["packed"] == "uint16" and pack([-40000, 1])["packed"] == "int32"
    assert unpack(pack([7, 0, 65535])) == [7, 0, 65535] and all(isinstance(v, int) for v in unpack(pack([7, 1])))
    assert pack(None) is None and unpack(pack([])) == []


def test_values_too_large_or_not_finite_stay_plain_numbers():
    assert pack([3e10, 1.5], 1) == [3e10, 1.5]
    assert pack([1.0, float("inf")]) == [1.0, float("inf")]


def test_unpack_tree_replaces_every_packed_array_and_leaves_the_rest():
    tree = {"a": pack([1, 2]), "b": [{"c": pack([0.5, 0.25], 2)}, {"d": "text"}], "e": [1, 2], "f": None}
    assert unpack_tree(json.loads(json.dumps(tree))) == {"a": [1, 2], "b": [{"c": [0.5, 0.25]}, {"d": "text"}],
                                                         "e": [1, 2], "f": None}

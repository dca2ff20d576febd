"""The padded gather across 2 real gloo processes: any lengths, empty ranks, no deadlock."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_ner_viz.capture import gather


def _worker(rank: int, port: int, cases: list[list[int]], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    results = []
    for lengths in cases:
        n = lengths[rank]
        mine = {"id": torch.arange(n, dtype=torch.long) + 1000 * rank, "vec": torch.full((n, 3), float(rank))}
        got = gather.gather_columns(mine, torch.device("cpu"))
        total = gather.all_reduce_sum(torch.tensor([n]), torch.device("cpu"))
        biggest = gather.all_reduce_max(torch.tensor([n]), torch.device("cpu"))
        results.append({"id": got["id"].tolist(), "vec": got["vec"][:, 0].tolist(), "total": int(total),
                        "max": int(biggest), "shape": list(got["vec"].shape)})
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.destroy_process_group()


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(st.lists(st.integers(0, 40), min_size=2, max_size=2), min_size=10, max_size=40))
def test_gather_pads_and_trims_any_lengths(tmp_path, cases):
    cases = [[0, 0], [0, 5], [7, 0], *cases]  # empty ranks always included
    out = tmp_path / f"result-{abs(hash(str(cases)))}.json"
    mp.spawn(_worker, args=(free_port(), cases, str(out)), nprocs=2, join=True)
    results = json.loads(out.read_text())
    for (n0, n1), got in zip(cases, results):
        assert got["id"] == list(range(n0)) + [1000 + i for i in range(n1)]  # rank order, trimmed
        assert got["vec"] == [0.0] * n0 + [1.0] * n1
        assert got["shape"] == [n0 + n1, 3]
        assert got["total"] == n0 + n1 and got["max"] == max(n0, n1)


def test_single_process_is_a_passthrough():
    t = torch.arange(4)
    assert gather.gather_rows(t, torch.device("cpu"))[0].tolist() == [0, 1, 2, 3]
    assert gather.world_size() == 1 and gather.rank() == 0

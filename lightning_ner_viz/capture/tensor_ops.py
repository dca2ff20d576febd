"""Small tensor helpers of the per-batch selection: finite rows, row gathers, one CPU thread."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def finite_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Whether each row of ``tensor`` (shape (..., dim)) is all finite: shape (...).

    ``amax``/``amin`` propagate NaN and keep +-Inf, and cannot overflow (unlike a sum).
    """
    return torch.isfinite(tensor.amax(-1)) & torch.isfinite(tensor.amin(-1))


def rows_at(tensor: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Rows ``tensor[b, s]`` (shape (n, dim)) of a (batch, seq_len, dim) tensor at flat indices ``b * seq_len + s``."""
    if tensor.stride(0) == tensor.stride(1) * tensor.shape[1]:  # (batch, seq_len) merge into one dim: no copy
        return tensor.flatten(0, 1)[flat]
    return tensor[flat // tensor.shape[1], flat % tensor.shape[1]]


@functools.cache
def _openmp() -> bool:
    """Whether torch's intra-op threads are OpenMP's, whose count is a per-thread setting."""
    return "OpenMP" in torch.__config__.parallel_info()


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Run this thread's CPU tensor operations without intra-op parallelism.

    The selection's operations are small; split across intra-op threads, each split waits
    for a core that training or the projection child is using. Worse, a thread that runs a
    parallel operation gets an OpenMP team of its own, whose threads spin after each region
    on the cores training needs: one ``torch.cat`` of merged batches outside this scope cost
    a 4-layer fit on 2 cores about 0.3 s. OpenMP's thread count is a per-thread setting, so this
    changes only the calling thread. With torch's native pool (where changing it warns)
    nothing is changed.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or not _openmp():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

"""Gather uneven per-rank tensors: pad, all-gather, trim.

Every rank must call these functions, even a rank with zero rows, because the
underlying calls are collectives. A rank that skipped them would deadlock the others.
"""

from __future__ import annotations

import atexit
import functools

import torch
import torch.distributed as dist


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@functools.cache
def destroy_gloo_group_at_exit() -> None:
    """Destroy the default gloo process group when the interpreter exits (registered once per process).

    Lightning does this only for NCCL. Left to the interpreter's final teardown, destroying a
    gloo group can abort a rank of a finished ``ddp_spawn`` fit ("terminate called without
    an active exception"). ``atexit`` handlers run before that teardown, after all user code.
    """
    def destroy() -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
            dist.destroy_process_group()

    atexit.register(destroy)


def world_size() -> int:
    """The number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if _distributed() else 1


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if _distributed() else 0


def all_reduce_sum(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Sum a tensor across ranks (returned on the CPU)."""
    if not _distributed():
        return tensor.clone()
    buffer = tensor.to(device).clone()
    dist.all_reduce(buffer)
    return buffer.cpu()


def all_reduce_max(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Element-wise maximum of a tensor across ranks (returned on the CPU)."""
    if not _distributed():
        return tensor.clone()
    buffer = tensor.to(device).clone()
    dist.all_reduce(buffer, op=dist.ReduceOp.MAX)
    return buffer.cpu()


_AS_BYTES = (torch.int16, torch.float16, torch.bfloat16)


def gather_rows(tensor: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """All-gather tensors whose first dimension differs across ranks.

    Args:
        tensor: array of shape (n_rows, ...) on any device; ``n_rows`` may be 0. The
            trailing shape and dtype must match on all ranks.
        device: where the collective runs (the strategy's root device: CPU for gloo,
            CUDA for NCCL).

    Returns:
        One CPU tensor per rank, each trimmed to that rank's real row count.
    """
    if not _distributed():
        return [tensor.cpu()]
    if tensor.dtype in _AS_BYTES:  # gloo refuses int16 (and, on some builds, half): send the bytes
        width = int(torch.tensor(tensor.shape[1:]).prod())  # elements per row (1 for a 1-D column)
        rows = gather_rows(tensor.reshape(tensor.shape[0], width).contiguous().view(torch.uint8), device)
        return [r.view(tensor.dtype).reshape(-1, *tensor.shape[1:]) for r in rows]
    size = torch.tensor([tensor.shape[0]], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=device)
    padded[: tensor.shape[0]] = tensor.to(device)
    out = [torch.zeros_like(padded) for _ in counts]
    dist.all_gather(out, padded)
    return [o[:n].cpu() for o, n in zip(out, counts)]


def gather_columns(columns: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Gather every column of a row-aligned table and concatenate ranks in rank order.

    All ranks must pass the same keys, dtypes and trailing shapes, even with zero rows.
    """
    return {k: torch.cat(gather_rows(v, device)) for k, v in sorted(columns.items())}


def broadcast_rows(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """Rank zero's 1-D int64 tensor on every rank (other ranks pass ``None``)."""
    if not _distributed():
        assert tensor is not None
        return tensor.cpu()
    size = torch.tensor([0 if tensor is None else tensor.numel()], dtype=torch.long, device=device)
    dist.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.long, device=device)
    if dist.get_rank() == 0 and tensor is not None:
        buffer.copy_(tensor.to(device))
    dist.broadcast(buffer, src=0)
    return buffer.cpu()

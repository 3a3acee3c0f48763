"""DistributedDataParallel under torchrun: gloo on CPU, nccl on CUDA (Li et al. 2020).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op
and a run is a single process.
"""

from __future__ import annotations

import os

import torch
from torch import nn


def _env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_if_launched(device_type: str) -> bool:
    """Join the process group torchrun describes; True if this call created it."""
    import torch.distributed as td

    if _env_world() <= 1 or td.is_initialized():
        return False
    td.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return True


def rank_world() -> tuple[int, int]:
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        return td.get_rank(), td.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Rank 0 (or a single process): the only one that writes files or prints.

    Before the process group is up, torchrun's RANK variable decides.
    """
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        return td.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def local_device(device: torch.device) -> torch.device:
    """On CUDA under torchrun, each process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and device.index is None and _env_world() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when a process group is up, else itself."""
    if rank_world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: torch.Tensor) -> None:
    """Sum ``t`` in place over all ranks (no-op in a single process)."""
    if rank_world()[1] > 1:
        import torch.distributed as td

        td.all_reduce(t, op=td.ReduceOp.SUM)


def shutdown(created: bool) -> None:
    """Tear down the process group if :func:`init_if_launched` created it."""
    if created:
        import torch.distributed as td

        td.destroy_process_group()

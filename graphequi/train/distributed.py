"""Process-group helpers for ``torchrun`` (DistributedDataParallel).

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init` reads them and starts a process group (``gloo``
on CPU, ``nccl`` on CUDA). Without them everything here degrades to a single
process, so the trainer has one code path.

Single node, two processes::

    torchrun --nproc_per_node=2 -m graphequi.train --dataset zinc --model ppgn++

Several nodes (run on every node, with its own ``--node_rank``)::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=zinc \\
        -m graphequi.train --dataset zinc --model ppgn++ --device cuda
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init", "shutdown", "all_gather_objects", "all_reduce_sum", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str) -> DistInfo:
    """Start the process group when launched by ``torchrun``; return this process's place.

    On CUDA each process uses ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank, world, local)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> List[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when single-process."""
    if not info.enabled:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: List[float], info: DistInfo, device) -> List[float]:
    """Sum a short list of floats over ranks (in float64)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()

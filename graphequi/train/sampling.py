"""Size-bucketed batches for dense models (PPGN++), identical for any number of processes.

A dense model pays for the largest graph of its batch: a batch of ZINC
molecules drawn at random pads to about 36 nodes while the mean of
:math:`n^2` is about 550 (23.5^2), so ~2.3x of the work is padding.
:class:`BucketBatchSampler` shuffles, cuts the order into chunks of
``bucket`` batches, sorts each chunk by size, cuts it into batches and
shuffles the batch order -- all from one generator seeded with
``seed + epoch``, so the order is a function of ``(seed, epoch)`` alone (exact
resume) and every process builds the same global batches, of which process
``r`` of ``W`` takes the positions ``r, r + W, ...``.
"""
from __future__ import annotations

from typing import Iterator, List, Sequence

import torch

__all__ = ["BucketBatchSampler"]


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-size graphs for one process.

    Args:
        sizes: number of nodes of each graph.
        batch_size: the *global* batch size (a multiple of ``num_replicas``).
        num_replicas, rank: process count and this process's rank.
        seed: base seed; call :meth:`set_epoch` before each epoch.
        bucket: batches per sorted chunk (larger: less padding, less randomness).

    Example:
        >>> s = BucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, bucket=3)
        >>> sorted(i for b in s for i in b)
        [0, 1, 2, 3, 4, 5]
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, bucket: int = 16):
        if batch_size % num_replicas:
            raise ValueError(f"batch_size {batch_size} is not divisible by {num_replicas} processes")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        if not len(sizes):
            raise ValueError("no graphs to sample")
        self.sizes = torch.as_tensor(list(sizes), dtype=torch.long)
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.seed, self.bucket, self.epoch = seed, bucket, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> List[List[int]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        n, world = len(self.sizes), self.num_replicas
        order = torch.randperm(n, generator=gen).tolist()
        order += order[: (-n) % world]  # pad to a multiple of the process count, as DistributedSampler does
        batches = []
        chunk = self.batch_size * self.bucket
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part.sort(key=lambda i: int(self.sizes[i]))
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        shuffled = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in shuffled]

    def __iter__(self) -> Iterator[List[int]]:
        for batch in self.global_batches():
            yield batch[self.rank::self.num_replicas]

    def __len__(self) -> int:
        n = len(self.sizes) + (-len(self.sizes)) % self.num_replicas
        chunk = self.batch_size * self.bucket
        full, rest = divmod(n, chunk)
        return full * self.bucket + -(-rest // self.batch_size)

r"""Re-estimate batch-norm statistics before evaluation ("precise BN").

During training a batch norm keeps an exponential moving average of batch
statistics, dominated by the last :math:`\approx 1/\text{momentum}` batches.
With size-bucketed batches (each batch holds graphs of one size) those last
batches are of a few sizes only, so the statistics an evaluation uses swing
from epoch to epoch. Precise BN (Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021) replaces them, with the weights frozen, by the plain
average of the statistics of ``num_batches`` training batches:

.. math::
    \hat\mu = \frac{1}{K}\sum_{k=1}^{K} \mu_k, \qquad
    \hat\sigma^2 = \frac{1}{K}\sum_{k=1}^{K} \sigma^2_k \quad(\text{unbiased per batch}).
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Callable, ContextManager, Iterable

import torch

__all__ = ["recompute_batch_norm_statistics"]

BatchNorm = torch.nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def recompute_batch_norm_statistics(model: torch.nn.Module, batches: Iterable, num_batches: int,
                                    forward: Callable = None,
                                    context: Callable[[], ContextManager] = contextlib.nullcontext) -> int:
    """Replace the running statistics of every batch norm in ``model`` by the
    plain average over the first ``num_batches`` of ``batches``.

    Weights are not touched; dropout is off during the pass (only batch norms
    are put in training mode); the modes and momenta of all modules come
    back as they were. Works for :class:`torch.nn.BatchNorm1d`/``2d``/``3d``,
    ``SyncBatchNorm`` and graphequi's ``PairBatchNorm`` (which keeps its
    statistics in an inner ``BatchNorm1d``).

    Args:
        model: the model (its batch norms are found with ``model.modules()``).
        batches: training batches, each passed to ``forward``.
        num_batches (int): how many batches to average (>= 1).
        forward: ``forward(model, batch)``; default ``model(batch)``.
        context: a factory of the context each forward runs in (e.g. autocast).

    Returns:
        int: the number of batches used (fewer if ``batches`` ran out).

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        >>> data = [torch.randn(8, 3) + 5 for _ in range(4)]
        >>> recompute_batch_norm_statistics(model, data, num_batches=10)
        4
        >>> means = torch.stack([model[0](x).mean(0) for x in data]).mean(0)
        >>> torch.allclose(model[1].running_mean, means, atol=1e-5)
        True
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    norms = [m for m in model.modules() if isinstance(m, BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    forward = forward or (lambda m, batch: m(batch))
    batches = iter(batches)
    first = next(batches, None)
    if first is None:  # checked before the statistics are reset
        raise ValueError("recompute_batch_norm_statistics got no batches")
    modes = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in norms}
    used = 0
    try:
        model.eval()
        for bn in norms:
            bn.train()
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: step k weighs 1/k
        for batch in itertools.islice(itertools.chain([first], batches), num_batches):
            with context():
                forward(model, batch)
            used += 1
    finally:
        for m, mode in modes.items():
            m.training = mode
        for bn, momentum in momenta.items():
            bn.momentum = momentum
    return used

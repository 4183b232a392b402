r"""The base of graphequi's aggregations: PyG's :class:`Aggregation` contract
on graphequi's kernels.

:meth:`KernelAggregation.reduce` is the one place that picks the kernel:

* ``ptr`` given: :func:`graphequi.ops.segment` over the CSR offsets;
* ``index`` given: :func:`graphequi.ops.scatter`, whose kernel reduces a sorted
  ``index`` as CSR segments and an unsorted one by "owner computes" (each
  thread owns a range of outputs: no atomics, deterministic).

Gradients of ``min``/``max`` differ from PyG's: graphequi sends the whole
gradient of an output entry to its single winning input row (the lowest row on
ties), while PyG's ``scatter_reduce``-based classes split it evenly among tied
rows. Both are valid subgradients; they agree wherever the winner is unique.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from graphequi import ops

__all__ = ["KernelAggregation"]


class KernelAggregation(Aggregation):
    r"""An :class:`~torch_geometric.nn.aggr.Aggregation` whose reductions run on
    graphequi's scatter/segment kernels.

    Subclasses implement :meth:`forward` with PyG's signature
    ``forward(x, index=None, ptr=None, dim_size=None, dim=-2)`` and call
    :meth:`reduce`, exactly as PyG aggregations do; they work as the ``aggr=``
    of any :class:`~torch_geometric.nn.conv.MessagePassing` layer and inside
    :class:`~torch_geometric.nn.aggr.MultiAggregation`.
    """

    def reduce(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
               dim_size: Optional[int] = None, dim: int = -2, reduce: str = "sum") -> Tensor:
        if ptr is not None:
            if ptr.dim() != 1:
                raise ValueError(f"{self}: ptr must be one-dimensional, got shape {tuple(ptr.shape)}")
            return ops.segment(x, ptr, reduce, dim=dim)
        if index is None:
            raise ValueError(f"{self}: one of index or ptr is needed")
        return ops.scatter(x, index, dim=dim, dim_size=dim_size, reduce=reduce)

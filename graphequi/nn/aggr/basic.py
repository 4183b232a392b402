r"""Sum, mean, max and min aggregation on graphequi's kernels.

Drop-in replacements for the PyG classes of the same names
(:mod:`torch_geometric.nn.aggr.basic`): same signature, same values, empty
groups give 0. Gradients of max/min go to a single winner per output entry
(see :mod:`graphequi.nn.aggr.base`).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from graphequi.nn.aggr.base import KernelAggregation

__all__ = ["SumAggregation", "MeanAggregation", "MaxAggregation", "MinAggregation"]


class _Basic(KernelAggregation):
    _reduce = "sum"

    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2) -> Tensor:
        return self.reduce(x, index, ptr, dim_size, dim, reduce=self._reduce)


class SumAggregation(_Basic):
    r"""Sum of each group: :math:`\mathrm{out}_g = \sum_{i \in \mathcal{X}_g} \mathbf{x}_i`.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.], [2.], [4.]])
        >>> SumAggregation()(x, torch.tensor([0, 0, 2]), dim_size=3)
        tensor([[3.],
                [0.],
                [4.]])
    """
    _reduce = "sum"


class MeanAggregation(_Basic):
    r"""Mean of each group: :math:`\mathrm{out}_g = \frac{1}{|\mathcal{X}_g|}\sum_{i \in \mathcal{X}_g} \mathbf{x}_i`
    (0 for an empty group).

    Example:
        >>> import torch
        >>> MeanAggregation()(torch.tensor([[1.], [2.], [4.]]), ptr=torch.tensor([0, 2, 2, 3]))
        tensor([[1.5000],
                [0.0000],
                [4.0000]])
    """
    _reduce = "mean"


class MaxAggregation(_Basic):
    r"""Feature-wise maximum of each group: :math:`\mathrm{out}_g = \max_{i \in \mathcal{X}_g} \mathbf{x}_i`
    (0 for an empty group; NaN propagates).

    Example:
        >>> import torch
        >>> MaxAggregation()(torch.tensor([[1.], [-2.], [4.]]), torch.tensor([1, 1, 0]))
        tensor([[4.],
                [1.]])
    """
    _reduce = "max"


class MinAggregation(_Basic):
    r"""Feature-wise minimum of each group: :math:`\mathrm{out}_g = \min_{i \in \mathcal{X}_g} \mathbf{x}_i`
    (0 for an empty group; NaN propagates).

    Example:
        >>> import torch
        >>> MinAggregation()(torch.tensor([[1.], [-2.], [4.]]), torch.tensor([1, 1, 0]))
        tensor([[ 4.],
                [-2.]])
    """
    _reduce = "min"

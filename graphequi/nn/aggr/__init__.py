r"""PyG aggregations on graphequi's kernels.

Every class here subclasses :class:`torch_geometric.nn.aggr.Aggregation`
(``forward(x, index=None, ptr=None, dim_size=None, dim=-2)``) and reduces
through :class:`~graphequi.nn.aggr.base.KernelAggregation`, so it can be the
``aggr=`` of any PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer::

    from torch_geometric.nn import GINConv
    from graphequi.nn.aggr import MaxAggregation

    conv = GINConv(mlp, aggr=MaxAggregation())
"""
from graphequi.nn.aggr.base import KernelAggregation
from graphequi.nn.aggr.basic import MaxAggregation, MeanAggregation, MinAggregation, SumAggregation
from graphequi.nn.aggr.lcm import LCMAggregation
from graphequi.nn.aggr.associativity import AssociativityRegularizer

__all__ = ["KernelAggregation", "SumAggregation", "MeanAggregation", "MaxAggregation", "MinAggregation",
           "LCMAggregation", "AssociativityRegularizer"]

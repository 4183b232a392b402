r"""GIN and GINE convolutions on graphequi's kernels.

The same layers as PyG's :class:`~torch_geometric.nn.conv.GINConv` and
:class:`~torch_geometric.nn.conv.GINEConv` (Xu et al., ICLR 2019; Hu et al.,
ICLR 2020), with two ways to aggregate:

* ``edge_index`` a ``[2, E]`` tensor: PyG's ``propagate`` gathers messages
  and reduces them with a :mod:`graphequi.nn.aggr` aggregation;
* an adjacency in CSR form (a :class:`graphequi.ops.CSR` from
  :func:`graphequi.ops.to_csr`, a :class:`torch_geometric.EdgeIndex`, a
  ``torch.sparse_csr`` ``adj_t`` or a ``torch_sparse.SparseTensor``
  ``adj_t``): GIN runs the fused gather-reduce :func:`graphequi.ops.spmm`,
  which never materialises the ``[E, F]`` messages. A :class:`~graphequi.ops.CSR`
  built once (with its transpose) serves every layer of a model, forward and
  backward.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import reset
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

from graphequi import ops
from graphequi.nn.aggr import KernelAggregation, MaxAggregation, MeanAggregation, MinAggregation, SumAggregation

__all__ = ["GINConv", "GINEConv", "resolve_aggregation", "is_csr_adjacency"]


def is_csr_adjacency(adj) -> bool:
    """Whether ``adj`` takes the fused path: a :class:`graphequi.ops.CSR`, an
    ``EdgeIndex``, a ``torch.sparse_csr`` tensor or a ``SparseTensor`` (a plain
    ``[2, E]`` tensor takes PyG's ``propagate``)."""
    if isinstance(adj, (ops.CSR, EdgeIndex)):
        return True
    if isinstance(adj, Tensor):
        return adj.layout == torch.sparse_csr
    return WITH_TORCH_SPARSE and isinstance(adj, SparseTensor)

_BY_NAME = {"sum": SumAggregation, "add": SumAggregation, "mean": MeanAggregation,
            "max": MaxAggregation, "min": MinAggregation}


def resolve_aggregation(aggr: Union[str, KernelAggregation, torch.nn.Module]) -> torch.nn.Module:
    """``'sum'``/``'mean'``/``'max'``/``'min'`` -> the graphequi aggregation; a module passes through."""
    if isinstance(aggr, str):
        if aggr not in _BY_NAME:
            raise ValueError(f"aggr must be one of {sorted(_BY_NAME)} or an Aggregation, got {aggr!r}")
        return _BY_NAME[aggr]()
    if not isinstance(aggr, torch.nn.Module):
        raise TypeError(f"aggr must be a name or an Aggregation module, got {type(aggr).__name__}")
    return aggr


def _fused_reduce(aggr: torch.nn.Module) -> Optional[str]:
    """The :func:`graphequi.ops.spmm` reduction that equals ``aggr``, if any
    (exactly one of the basic classes: a subclass may reduce differently)."""
    return aggr._reduce if type(aggr) in _BY_NAME.values() else None


class _GINBase(MessagePassing):
    r"""What GIN and GINE share: the MLP :math:`h_\Theta`, :math:`\epsilon`, the aggregation."""

    def __init__(self, nn: torch.nn.Module, eps: float, train_eps: bool, aggr):
        super().__init__(aggr=resolve_aggregation(aggr))
        self.nn = nn
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.nn)
        self.eps.data.fill_(self.initial_eps)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(nn={self.nn}, aggr={self.aggr_module})"


class GINConv(_GINBase):
    r"""The graph isomorphism operator

    .. math::
        \mathbf{x}'_i = h_{\Theta}\Big((1 + \epsilon)\,\mathbf{x}_i
            + \bigoplus_{j \in \mathcal{N}(i)} \mathbf{x}_j\Big)

    with :math:`\bigoplus` the aggregation ``aggr`` (sum in the paper).

    Args:
        nn (torch.nn.Module): :math:`h_\Theta`, mapping ``[N, F_in]`` to ``[N, F_out]``.
        eps (float): initial :math:`\epsilon`.
        train_eps (bool): learn :math:`\epsilon`.
        aggr (str or Aggregation): ``'sum'``, ``'mean'``, ``'max'``, ``'min'``
            (graphequi's aggregations) or any PyG aggregation module (then only
            the ``edge_index`` path is available).

    Shapes:
        - input: ``x`` ``[N, F_in]``; ``edge_index`` ``[2, E]`` (messages flow
          from ``edge_index[0]`` to ``edge_index[1]``) or a CSR adjacency whose
          row ``i`` lists the sources of node ``i``.
        - output: ``[N, F_out]``.

    Example:
        >>> conv = GINConv(torch.nn.Linear(4, 8), aggr="max")
        >>> x, edge_index = torch.randn(3, 4), torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> adj = ops.to_csr(edge_index, num_nodes=3)
        >>> torch.allclose(conv(x, edge_index), conv(x, adj))
        True
    """

    def __init__(self, nn: torch.nn.Module, eps: float = 0.0, train_eps: bool = False,
                 aggr: Union[str, torch.nn.Module] = "sum"):
        super().__init__(nn, eps, train_eps, aggr)
        self.reset_parameters()

    def forward(self, x: Tensor, edge_index) -> Tensor:
        if is_csr_adjacency(edge_index):
            adj = edge_index if isinstance(edge_index, ops.CSR) else ops.to_csr(edge_index, x.size(0))
            out = self.message_and_aggregate(adj, x)
        else:
            out = self.propagate(edge_index, x=x, size=None)
        return self.nn(out + (1 + self.eps) * x)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def message_and_aggregate(self, adj: ops.CSR, x: Tensor) -> Tensor:
        reduce = _fused_reduce(self.aggr_module)
        if reduce is None:
            raise ValueError(f"{type(self).__name__}: a CSR adjacency needs aggr sum, mean, max or min, "
                             f"got {self.aggr_module}; pass edge_index instead")
        # index ranges were checked where the adjacency was built or entered
        return adj.spmm(x, reduce, validate=False)


class GINEConv(_GINBase):
    r"""GIN with edge features (Hu et al., ICLR 2020)

    .. math::
        \mathbf{x}'_i = h_{\Theta}\Big((1 + \epsilon)\,\mathbf{x}_i
            + \bigoplus_{j \in \mathcal{N}(i)} \mathrm{ReLU}\big(\mathbf{x}_j
            + W \mathbf{e}_{j,i}\big)\Big)

    The message depends on the edge, so the ``[E, F]`` messages are formed and
    reduced by a :mod:`graphequi.nn.aggr` aggregation.

    Args:
        nn (torch.nn.Module): :math:`h_\Theta`.
        eps (float): initial :math:`\epsilon`.
        train_eps (bool): learn :math:`\epsilon`.
        edge_dim (int, optional): width of ``edge_attr`` when it differs from
            the node width (then :math:`W` is a learned linear map; otherwise
            the identity).
        aggr (str or Aggregation): as in :class:`GINConv`.

    Shapes:
        - input: ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``edge_attr``
          ``[E, edge_dim or F]``.
        - output: ``[N, F_out]``.

    Example:
        >>> conv = GINEConv(torch.nn.Linear(4, 8), edge_dim=2)
        >>> conv(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]), torch.randn(2, 2)).shape
        torch.Size([3, 8])
    """

    def __init__(self, nn: torch.nn.Module, eps: float = 0.0, train_eps: bool = False,
                 edge_dim: Optional[int] = None, aggr: Union[str, torch.nn.Module] = "sum"):
        super().__init__(nn, eps, train_eps, aggr)
        self.lin = None
        if edge_dim is not None:
            first = next((m for m in nn.modules() if isinstance(m, torch.nn.Linear)), None)
            if first is None:
                raise ValueError("GINEConv with edge_dim needs a torch.nn.Linear in nn to read the node width")
            self.lin = torch.nn.Linear(edge_dim, first.in_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        if self.lin is None and edge_attr.size(-1) != x.size(-1):
            raise ValueError(f"edge_attr has width {edge_attr.size(-1)} but x has {x.size(-1)}; "
                             "give GINEConv an edge_dim")
        out = self.propagate(edge_index, x=x, edge_attr=edge_attr, size=None)
        return self.nn(out + (1 + self.eps) * x)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        if self.lin is not None:
            edge_attr = self.lin(edge_attr)
        return (x_j + edge_attr).relu()

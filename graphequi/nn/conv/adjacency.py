r"""Target-major CSR adjacencies for the fused gather-reduce.

A message-passing layer computes :math:`\mathrm{out}_i = \bigoplus_{j \to i}
w_{ji}\, x_j`. In CSR form row :math:`i` lists the *sources* of target
:math:`i` -- PyG's ``adj_t`` convention -- so the reduction is one
:func:`graphequi.ops.spmm` over ``(ptr, col, value)``.

:class:`CSRAdjacency` is the small immutable value that graphequi's layers
pass around (a ``NamedTuple``, so ``torch.compile`` traces through it);
:func:`as_csr_adjacency` brings the forms PyG users already have into it:

* ``edge_index`` ``[2, E]`` (sorted here by target, stable);
* a :class:`torch_geometric.EdgeIndex` (its cached CSC is the target-major
  CSR; nothing is re-sorted when it is cached);
* a ``torch.sparse_csr`` ``adj_t`` tensor (rows are targets, as PyG's
  ``ToSparseTensor`` produces);
* a ``torch_sparse.SparseTensor`` ``adj_t``, when ``torch_sparse`` is installed.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

from graphequi import ops

__all__ = ["CSRAdjacency", "as_csr_adjacency", "is_csr_adjacency"]


class CSRAdjacency(NamedTuple):
    r"""Row ``i`` holds the sources ``col[ptr[i]:ptr[i+1]]`` of target ``i``.

    Args:
        ptr: ``[N_target + 1]`` int64 offsets.
        col: ``[E]`` int64 source node of each entry.
        value: ``[E]`` edge weights, or ``None`` for an unweighted graph.
    """

    ptr: Tensor
    col: Tensor
    value: Optional[Tensor] = None

    @property
    def num_targets(self) -> int:
        return self.ptr.numel() - 1

    @staticmethod
    def from_edge_index(edge_index: Tensor, num_nodes: int, edge_weight: Optional[Tensor] = None
                        ) -> "CSRAdjacency":
        r"""The target-major CSR of ``edge_index`` (messages flow ``edge_index[0] -> edge_index[1]``).

        Args:
            edge_index: ``[2, E]`` integer tensor.
            num_nodes: :math:`N`.
            edge_weight: optional ``[E]`` weights, permuted with the edges.

        Example:
            >>> adj = CSRAdjacency.from_edge_index(torch.tensor([[0, 2, 1], [1, 0, 0]]), num_nodes=3)
            >>> adj.ptr.tolist(), adj.col.tolist()
            ([0, 2, 3, 3], [2, 1, 0])
        """
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
        src, dst = edge_index[0], edge_index[1]
        dst_sorted, perm = torch.sort(dst, stable=True)
        value = edge_weight[perm] if edge_weight is not None else None
        return CSRAdjacency(ops.index_to_ptr(dst_sorted, num_nodes), src[perm], value)

    def matmul(self, x: Tensor, reduce: str = "sum") -> Tensor:
        r""":math:`\mathrm{out}_i = \bigoplus_{k \in [\mathrm{ptr}_i, \mathrm{ptr}_{i+1})} \mathrm{value}_k\, x_{\mathrm{col}_k}`
        by :func:`graphequi.ops.spmm`; ``[N_source, F]`` -> ``[N_target, F]``."""
        spmm = getattr(ops, "spmm", None)
        if spmm is not None:
            return spmm(self.ptr, self.col, x, self.value, reduce=reduce)
        # the unfused form with the same semantics, for builds without the fused kernel
        msg = x.index_select(0, self.col)
        if self.value is not None:
            msg = msg * self.value.view(-1, *([1] * (msg.dim() - 1)))
        return ops.segment(msg, self.ptr, reduce)


def is_csr_adjacency(adj) -> bool:
    """Whether ``adj`` is one of the CSR forms :func:`as_csr_adjacency` accepts
    (a plain ``[2, E]`` tensor is not: it takes the ``edge_index`` path)."""
    if isinstance(adj, (CSRAdjacency, EdgeIndex)):
        return True
    if isinstance(adj, Tensor):
        return adj.layout == torch.sparse_csr
    return WITH_TORCH_SPARSE and isinstance(adj, SparseTensor)


def as_csr_adjacency(adj, num_nodes: Optional[int] = None) -> CSRAdjacency:
    """Bring ``adj`` (see the module docstring) into :class:`CSRAdjacency` form.

    Args:
        adj: ``edge_index``, ``EdgeIndex``, ``torch.sparse_csr`` ``adj_t``,
            ``SparseTensor`` ``adj_t`` or a :class:`CSRAdjacency`.
        num_nodes: the number of targets, needed for a plain ``edge_index``.
    """
    if isinstance(adj, CSRAdjacency):
        return adj
    if isinstance(adj, EdgeIndex):
        # the CSC of edge_index groups edges by target: the CSR of adj_t
        (colptr, row), perm = adj.get_csc()
        return CSRAdjacency(colptr.as_subclass(Tensor), row.as_subclass(Tensor), None)
    if isinstance(adj, Tensor) and adj.layout == torch.sparse_csr:
        value = adj.values()
        return CSRAdjacency(adj.crow_indices().long(), adj.col_indices().long(), value)
    if WITH_TORCH_SPARSE and isinstance(adj, SparseTensor):
        rowptr, col, value = adj.csr()
        return CSRAdjacency(rowptr, col, value)
    if isinstance(adj, Tensor):
        if num_nodes is None:
            raise ValueError("num_nodes is needed to build a CSR adjacency from edge_index")
        return CSRAdjacency.from_edge_index(adj, num_nodes)
    raise TypeError(f"cannot read a CSR adjacency from {type(adj).__name__}")

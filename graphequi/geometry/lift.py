r"""Lifting a graph to a position-orientation graph: every directed edge
:math:`(j \to i)` becomes a node at :math:`p_i` with orientation
:math:`\mathrm{unit}(p_j - p_i)`."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .invariants import edge_vectors, unit

__all__ = ["LiftedGraph", "lift_edges", "lifted_orientations"]


class LiftedGraph(NamedTuple):
    r"""The connectivity of a lifted graph.

    Attributes:
        base: ``[E]``, the base node (edge target :math:`i`) of each lifted
            node; lifted node :math:`u` is edge :math:`u` of the base graph.
        edge_index: ``[2, E_L]`` lifted edges :math:`(v \to u)`: all
            pairs of lifted nodes whose base nodes are equal or joined by a
            base edge :math:`(\mathrm{base}(v) \to \mathrm{base}(u))`,
            sorted by target :math:`u` then source :math:`v`.
    """

    base: Tensor
    edge_index: Tensor


def lift_edges(edge_index: Tensor, num_nodes: int, loop: bool = True) -> LiftedGraph:
    r"""Lift the connectivity of a base graph.

    Lifted node :math:`u` (edge :math:`j_u \to i_u`) receives from every
    lifted node :math:`v` with :math:`i_v = i_u` (other orientations at the
    same point; :math:`v = u` only if ``loop``) or with
    :math:`i_v \to i_u` a base edge. With base degrees :math:`d` there are
    :math:`\sum_{(s \to t)} d_s d_t + \sum_t d_t^2` lifted edges.

    Args:
        edge_index: base edges ``[2, E]`` (``[0]`` source, ``[1]`` target).
        num_nodes: base nodes :math:`N`.
        loop: keep the lifted self-loops :math:`(u \to u)`.

    Returns:
        :class:`LiftedGraph`.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    device = edge_index.device
    base = edge_index[1]
    num_lifted = base.numel()
    # Lifted nodes grouped by base node.
    members = torch.sort(base, stable=True).indices
    sizes = torch.bincount(base, minlength=num_nodes)
    first = torch.cumsum(sizes, 0) - sizes
    # Base-level connectivity: base edges plus the diagonal (same point).
    nodes = torch.arange(num_nodes, device=device)
    b_src = torch.cat([edge_index[0], nodes])
    b_tgt = torch.cat([edge_index[1], nodes])
    # For every base pair (s -> t): all (v at s) x (u at t).
    pair_count = sizes[b_src] * sizes[b_tgt]
    total = int(pair_count.sum())
    pair = torch.repeat_interleave(torch.arange(b_src.numel(), device=device), pair_count,
                                   output_size=total)
    within = torch.arange(total, device=device) - (torch.cumsum(pair_count, 0) - pair_count)[pair]
    ns = sizes[b_src][pair]
    u = members[first[b_tgt][pair] + within // ns]
    v = members[first[b_src][pair] + within % ns]
    if not loop:
        keep = u != v
        u, v = u[keep], v[keep]
    key, perm = torch.sort(u * max(num_lifted, 1) + v)
    return LiftedGraph(base, torch.stack([v[perm], u[perm]], 0))


def lifted_orientations(pos: Tensor, edge_index: Tensor) -> Tensor:
    r""":math:`\mathrm{unit}(p_j - p_i)` for every edge, ``[E, 3]``
    (differentiable in ``pos``).

    Raises:
        ValueError: (eager mode) an edge joins two points at the same
            position, a self-loop included: it has no direction.
    """
    rel = edge_vectors(pos, edge_index)
    if not torch.compiler.is_compiling() and rel.numel():
        zero = (rel == 0).all(-1).nonzero().view(-1)
        if zero.numel():
            k = int(zero[0])
            raise ValueError(f"edge {k} ({int(edge_index[0, k])} -> {int(edge_index[1, k])}) joins two points "
                             f"at the same position, so its orientation unit(p_j - p_i) is undefined "
                             f"({zero.numel()} such edges); drop self-loops and duplicate points")
    return unit(rel)

r"""Where polynomial features live on a PyG ``Data``: the attribute names and
the pair layout, written once for the transform that writes them and the
models that read them.

* node level: ``data.poly_x`` ``[N, k]``;
* edge level: ``data.poly_edge_attr`` ``[E, k]``, aligned with ``edge_index``;
* pair level: ``data.poly_pair_attr`` ``[sum_b n_b^2, k]``, every ordered pair
  of every graph in **row-major order, graph after graph** (row ``i * n + j``
  of a graph with ``n`` nodes is the pair ``(i, j)``), and ``data.pair_index``
  ``[2, sum_b n_b^2]``, which PyG's collation offsets like ``edge_index``
  because its name contains ``index``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

__all__ = ["POLY_NODE_KEY", "POLY_EDGE_KEY", "POLY_PAIR_KEY", "PAIR_INDEX_KEY", "KEY_BY_LEVEL",
           "PairLayout", "row_major_pairs"]

POLY_NODE_KEY = "poly_x"
POLY_EDGE_KEY = "poly_edge_attr"
POLY_PAIR_KEY = "poly_pair_attr"
PAIR_INDEX_KEY = "pair_index"
#: the attribute of each ``PolynomialFeatures`` level
KEY_BY_LEVEL = {"node": POLY_NODE_KEY, "edge": POLY_EDGE_KEY, "pair": POLY_PAIR_KEY}


class PairLayout(NamedTuple):
    """Each pair row's graph and its local ``(row, col)`` nodes."""

    graph: Tensor
    row: Tensor
    col: Tensor


def row_major_pairs(counts: Tensor, num_pairs: Optional[int] = None) -> PairLayout:
    r"""The row-major pair layout of graphs with ``counts[b]`` nodes.

    Args:
        counts: ``[B]`` integer node counts :math:`n_b`.
        num_pairs: :math:`\sum_b n_b^2` when the caller knows it (e.g. the
            row count of the pair values); saves reading it from ``counts``,
            a host synchronisation.

    Returns:
        :class:`PairLayout` of three ``[sum_b n_b^2]`` tensors.

    Example:
        >>> layout = row_major_pairs(torch.tensor([2, 1]))
        >>> layout.graph.tolist(), layout.row.tolist(), layout.col.tolist()
        ([0, 0, 0, 0, 1], [0, 0, 1, 1, 0], [0, 1, 0, 1, 0])
    """
    squares = counts * counts
    graph = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), squares,
                                    output_size=num_pairs)
    start = torch.cat([squares.new_zeros(1), squares.cumsum(0)[:-1]])
    within = torch.arange(graph.numel(), device=counts.device) - start[graph]
    # Never 0 on a real row; the clamp keeps inductor's vectorised integer division
    # from trapping on the masked-off lanes of a loop's tail.
    size = counts[graph].clamp(min=1)
    return PairLayout(graph, torch.div(within, size, rounding_mode="floor"), within % size)

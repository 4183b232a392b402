r"""The size buckets of a batch of ego-net bags, and the size -> weight-group map."""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from graphequi.ops import index_to_ptr, segment

__all__ = ["SizeMap", "EgoBucket", "EgoNetLayout"]

_REQUIRED = ("ego_size", "ego_node", "ego_pair", "ego_pair_index", "ego_edge_pair")


@dataclass(frozen=True)
class SizeMap:
    r"""Which subgraph sizes share weights.

    Size :math:`m` uses weight group ``bisect_left(edges, m)``: with
    ``edges = (1, 2, ..., K)`` every size up to :math:`K` has its own
    weights and all larger (rare) sizes share group :math:`K`; with
    ``edges = ()`` all sizes share one set of weights.

    Example:
        >>> s = SizeMap.up_to(3)
        >>> [s.group(m) for m in (1, 2, 3, 4, 50)], s.num_groups
        ([0, 1, 2, 3, 3], 4)
        >>> SizeMap.shared().group(17)
        0
    """

    edges: tuple[int, ...] = ()

    def __post_init__(self):
        edges = tuple(int(e) for e in self.edges)
        if any(b <= a for a, b in zip(edges, edges[1:])) or (edges and edges[0] < 1):
            raise ValueError(f"SizeMap edges must be increasing positive sizes, got {self.edges!r}")
        object.__setattr__(self, "edges", edges)

    @classmethod
    def up_to(cls, max_size: int) -> "SizeMap":
        """Own weights for sizes ``1..max_size``, one group for all larger ones."""
        return cls(tuple(range(1, int(max_size) + 1)))

    @classmethod
    def shared(cls) -> "SizeMap":
        """One set of weights for every size."""
        return cls(())

    @property
    def num_groups(self) -> int:
        return len(self.edges) + 1

    def group(self, size: int) -> int:
        return bisect.bisect_left(self.edges, int(size))


@dataclass(frozen=True)
class EgoBucket:
    """The ego-nets of one size ``m`` in a batch.

    Attributes:
        size: ``m``.
        subgraphs: ``[B_m]`` subgraph (= centre node) ids.
        nodes: ``[B_m, m]`` global node of each local node (column 0 is the centre).
        pairs: ``[B_m, m * m]`` global pair (column of ``ego_pair_index``) of
            each local pair, row-major.
    """

    size: int
    subgraphs: Tensor
    nodes: Tensor
    pairs: Tensor


@dataclass(frozen=True)
class EgoNetLayout:
    r"""A batch's ego-nets grouped by size, with the maps back to shared
    node and pair features.

    Built once per forward pass by :meth:`from_data` (one host read of the
    distinct sizes; a loop over those sizes, never over nodes or subgraphs).
    :meth:`share_nodes`/:meth:`share_pairs` average the per-subgraph
    outputs of all buckets (concatenated in bucket order) over the subgraphs
    holding each node/pair, with :func:`graphequi.ops.segment` on a
    once-sorted order.
    """

    buckets: tuple[EgoBucket, ...]
    num_nodes: int
    num_pairs: int
    node_index: Tensor  # [sum_b B_m m] global node of every local node, bucket after bucket
    pair_index: Tensor  # [sum_b B_m m^2] global pair of every local pair
    node_perm: Tensor  # sorts the concatenated local nodes by global node
    node_ptr: Tensor
    pair_perm: Tensor
    pair_ptr: Tensor
    node_count: Tensor  # [N] ego-nets holding each node
    pair_count: Tensor  # [P] ego-nets holding each pair

    @classmethod
    def from_data(cls, data) -> "EgoNetLayout":
        missing = [k for k in _REQUIRED if getattr(data, k, None) is None]
        if missing:
            raise ValueError(f"the graph has no ego-net bags ({', '.join(missing)} missing); "
                             "apply graphequi.transforms.EgoNetBags first")
        size, node, pair = data.ego_size, data.ego_node, data.ego_pair
        n, num_pairs = int(data.num_nodes), int(data.ego_pair_index.size(1))
        for key in _REQUIRED:
            value = data[key]
            if value.dtype != torch.long:
                raise TypeError(f"data.{key} must be int64, got {value.dtype}")
        if size.dim() != 1 or size.numel() != n:
            raise ValueError(f"data.ego_size must have one entry per node ({n}), got {list(size.shape)}")
        total, total_sq = int(size.sum()), int((size * size).sum())
        if node.shape != (total,) or pair.shape != (total_sq,):
            raise ValueError(f"ego_node {list(node.shape)} / ego_pair {list(pair.shape)} do not match "
                             f"ego_size (expected [{total}] and [{total_sq}])")
        if n and int(size.min()) < 1:
            raise ValueError("an ego-net is empty; EgoNetBags always includes the centre")
        offset = torch.cumsum(size, 0) - size
        sq = size * size
        pair_offset = torch.cumsum(sq, 0) - sq
        buckets = []
        for m in torch.unique(size).tolist():  # the few distinct sizes, not the subgraphs
            sel = torch.nonzero(size == m).view(-1)
            local = torch.arange(m, device=size.device)
            local_pairs = torch.arange(m * m, device=size.device)
            buckets.append(EgoBucket(int(m), sel, node[offset[sel, None] + local],
                                     pair[pair_offset[sel, None] + local_pairs]))
        node_index = torch.cat([b.nodes.reshape(-1) for b in buckets]) if buckets else node
        pair_index = torch.cat([b.pairs.reshape(-1) for b in buckets]) if buckets else pair
        node_perm = torch.argsort(node_index, stable=True)
        pair_perm = torch.argsort(pair_index, stable=True)
        node_count = torch.bincount(node_index, minlength=n)
        pair_count = torch.bincount(pair_index, minlength=num_pairs)
        return cls(tuple(buckets), n, num_pairs, node_index, pair_index, node_perm, index_to_ptr(node_index[node_perm], n),
                   pair_perm, index_to_ptr(pair_index[pair_perm], num_pairs), node_count, pair_count)

    def subgraph_order(self) -> Tensor:
        """``[N]``: the subgraph ids in bucket order."""
        return torch.cat([b.subgraphs for b in self.buckets])

    def gather(self, h1: Tensor, h2: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Shared ``h1`` ``[N, C_1]``, ``h2`` ``[P, C_2]`` -> per bucket the local
        ``[B_m, m, C_1]`` node and ``[B_m, m^2, C_2]`` pair rows. One gather per
        order for all buckets (its backward is one scatter, not one per bucket)."""
        sizes = [b.subgraphs.numel() for b in self.buckets]
        nodes = h1.index_select(0, self.node_index).split([s * b.size for s, b in zip(sizes, self.buckets)])
        pairs = h2.index_select(0, self.pair_index).split([s * b.size ** 2 for s, b in zip(sizes, self.buckets)])
        return [(x1.view(s, b.size, -1), x2.view(s, b.size ** 2, -1))
                for x1, x2, s, b in zip(nodes, pairs, sizes, self.buckets)]

    def share_nodes(self, values: Sequence[Tensor]) -> Tensor:
        """``[sum_b B_m m, C]`` per-bucket local node values -> ``[N, C]`` means."""
        return segment(torch.cat(list(values)).index_select(0, self.node_perm), self.node_ptr, "mean")

    def share_pairs(self, values: Sequence[Tensor]) -> Tensor:
        """``[sum_b B_m m^2, C]`` per-bucket local pair values -> ``[P, C]`` means."""
        return segment(torch.cat(list(values)).index_select(0, self.pair_perm), self.pair_ptr, "mean")

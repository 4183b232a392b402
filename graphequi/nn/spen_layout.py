r"""The size buckets of a batch of ego-net bags, and the size -> weight-group map."""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Optional, Sequence, Union

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
    """The ego-nets of one dense bucket of a batch.

    Attributes:
        size: ``M``, the bucket's dense size (the largest ego-net in it).
        group: the weight group (:class:`SizeMap`) of all its ego-nets.
        subgraphs: ``[B]`` subgraph (= centre node) ids.
        sizes: ``[B]`` true sizes ``m <= M``; ``None`` when all equal ``M``.
        nodes: ``[B, M]`` global node of each local node (column 0 is the
            centre; ``N`` on padding).
        pairs: ``[B, M * M]`` global pair (column of ``ego_pair_index``) of
            each local pair, row-major (``P`` on padding).
    """

    size: int
    group: int
    subgraphs: Tensor
    sizes: Optional[Tensor]
    nodes: Tensor
    pairs: Tensor


PAD_MODES = (False, True, "pow2", "group")


def _next_pow2(m: int) -> int:
    return 1 << (int(m) - 1).bit_length()


@dataclass(frozen=True)
class EgoNetLayout:
    r"""A batch's ego-nets grouped into dense buckets, with the maps back to
    shared node and pair features.

    Built once per forward pass by :meth:`from_data` (one host read of the
    distinct sizes; a loop over those sizes, never over nodes or subgraphs).
    Without padding a bucket holds the ego-nets of one size. With
    ``pad=True`` the ego-nets of one weight group whose sizes round up to the
    same power of two share a bucket (with ``pad="group"``, all the ego-nets
    of a weight group), zero-padded to its largest size (fewer,
    larger dense tensors: fewer kernel launches for some padding work;
    :class:`SPENConv` normalises by the true sizes, so the result is the
    same). :meth:`gather` reads every bucket's local rows in one gather per
    order; :meth:`share_nodes`/:meth:`share_pairs` average the real local
    outputs of all buckets over the ego-nets holding each node/pair, with
    :func:`graphequi.ops.segment` on a once-sorted order.
    """

    buckets: tuple[EgoBucket, ...]
    num_nodes: int
    num_pairs: int
    padded: bool
    node_index: Tensor  # [sum_b B M] global node of every local node, bucket after bucket
    pair_index: Tensor  # [sum_b B M^2] global pair of every local pair
    node_perm: Tensor  # the real local nodes, sorted by global node
    node_ptr: Tensor
    pair_perm: Tensor
    pair_ptr: Tensor
    node_count: Tensor  # [N] ego-nets holding each node
    pair_count: Tensor  # [P] ego-nets holding each pair

    @classmethod
    def from_data(cls, data, size_map: Optional[SizeMap] = None,
                  pad: Union[bool, str] = False) -> "EgoNetLayout":
        """Args:
            data: a graph or batch written by :class:`graphequi.transforms.EgoNetBags`.
            size_map: weight groups; ego-nets of different groups never share
                a bucket (default: one group).
            pad: ``False``: one bucket per size; ``True`` or ``"pow2"``:
                merge the sizes of one group up to the next power of two;
                ``"group"``: one bucket per weight group, padded to its
                largest ego-net (the fewest tensors, the most padding).
        """
        if pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
        missing = [k for k in _REQUIRED if getattr(data, k, None) is None]
        if missing:
            raise ValueError(f"the graph has no ego-net bags ({', '.join(missing)} missing); "
                             "apply graphequi.transforms.EgoNetBags first")
        size_map = SizeMap.shared() if size_map is None else size_map
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
        device = size.device
        offset = torch.cumsum(size, 0) - size
        sq = size * size
        pair_offset = torch.cumsum(sq, 0) - sq
        keys: dict[tuple[int, int], list[int]] = {}
        for m in torch.unique(size).tolist():  # the few distinct sizes, not the subgraphs
            merged = {False: m, True: _next_pow2(m), "pow2": _next_pow2(m), "group": 0}[pad]
            keys.setdefault((size_map.group(m), merged), []).append(m)
        buckets = []
        for (group, _), members in sorted(keys.items()):
            big = max(members)
            sel = torch.cat([torch.nonzero(size == m).view(-1) for m in members])
            m_true = size[sel]
            a = torch.arange(big, device=device)
            real = a < m_true[:, None]  # [B, M]
            nodes = torch.where(real, node[(offset[sel, None] + a).clamp(max=max(total - 1, 0))], n)
            ab = torch.arange(big * big, device=device)
            row, col = ab // big, ab % big
            real2 = (row < m_true[:, None]) & (col < m_true[:, None])
            local = pair_offset[sel, None] + row * m_true[:, None] + col
            pairs = torch.where(real2, pair[local.clamp(max=max(total_sq - 1, 0))], num_pairs)
            sizes_or_none = m_true if len(members) > 1 else None
            buckets.append(EgoBucket(int(big), group, sel, sizes_or_none, nodes, pairs))
        node_index = torch.cat([b.nodes.reshape(-1) for b in buckets]) if buckets else node
        pair_index = torch.cat([b.pairs.reshape(-1) for b in buckets]) if buckets else pair
        padded = any(b.sizes is not None for b in buckets)
        node_perm, node_ptr, node_count = _sorted_real(node_index, n)
        pair_perm, pair_ptr, pair_count = _sorted_real(pair_index, num_pairs)
        return cls(tuple(buckets), n, num_pairs, padded, node_index, pair_index, node_perm, node_ptr,
                   pair_perm, pair_ptr, node_count, pair_count)

    def subgraph_order(self) -> Tensor:
        """``[N]``: the subgraph ids in bucket order."""
        return torch.cat([b.subgraphs for b in self.buckets])

    def gather(self, h1: Tensor, h2: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Shared ``h1`` ``[N, C_1]``, ``h2`` ``[P, C_2]`` -> per bucket the local
        ``[B, M, C_1]`` node and ``[B, M^2, C_2]`` pair rows (zero on padding).
        One gather per order for all buckets (its backward is one scatter, not
        one per bucket)."""
        if self.padded:  # padding reads the appended zero row
            h1 = torch.cat([h1, h1.new_zeros(1, h1.size(-1))])
            h2 = torch.cat([h2, h2.new_zeros(1, h2.size(-1))])
        counts = [b.subgraphs.numel() for b in self.buckets]
        nodes = h1.index_select(0, self.node_index).split([c * b.size for c, b in zip(counts, self.buckets)])
        pairs = h2.index_select(0, self.pair_index).split(
            [c * b.size ** 2 for c, b in zip(counts, self.buckets)])
        return [(x1.view(c, b.size, -1), x2.view(c, b.size ** 2, -1))
                for x1, x2, c, b in zip(nodes, pairs, counts, self.buckets)]

    def share_nodes(self, values: Sequence[Tensor]) -> Tensor:
        """``[sum_b B M, C]`` per-bucket local node outputs -> ``[N, C]`` means."""
        return segment(torch.cat(list(values)).index_select(0, self.node_perm), self.node_ptr, "mean")

    def share_pairs(self, values: Sequence[Tensor]) -> Tensor:
        """``[sum_b B M^2, C]`` per-bucket local pair outputs -> ``[P, C]`` means."""
        return segment(torch.cat(list(values)).index_select(0, self.pair_perm), self.pair_ptr, "mean")


def _sorted_real(index: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Positions of the real entries (``index < size``) sorted by ``index``,
    the CSR pointer of the sorted entries, and the count per value."""
    real = torch.nonzero(index < size).view(-1)
    perm = real[torch.argsort(index[real], stable=True)]
    return perm, index_to_ptr(index[perm], size), torch.bincount(index[real], minlength=size)

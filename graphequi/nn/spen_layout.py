r"""The size buckets of a batch of ego-net bags, and the size -> weight-group map."""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from graphequi.ops import CSR, index_to_ptr, scatter, segment

__all__ = ["SizeMap", "EgoBucket", "EgoNetLayout", "RaggedEgoNets", "check_ego_bags"]

_REQUIRED = ("ego_size", "ego_node", "ego_pair", "ego_pair_index", "ego_edge_pair")


def check_ego_bags(data) -> None:
    """Clear errors for a graph without (or with inconsistent) ego-net bags:
    missing keys, non-int64 indices, sizes that disagree with the flat maps,
    empty ego-nets."""
    missing = [k for k in _REQUIRED if getattr(data, k, None) is None]
    if missing:
        raise ValueError(f"the graph has no ego-net bags ({', '.join(missing)} missing); "
                         "apply graphequi.transforms.EgoNetBags first")
    size, node, pair = data.ego_size, data.ego_node, data.ego_pair
    n = int(data.num_nodes)
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
        check_ego_bags(data)
        size_map = SizeMap.shared() if size_map is None else size_map
        size, node, pair = data.ego_size, data.ego_node, data.ego_pair
        n, num_pairs = int(data.num_nodes), int(data.ego_pair_index.size(1))
        total, total_sq = int(size.sum()), int((size * size).sum())
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


def _gather_csr(index: Tensor, num_sources: int) -> tuple[CSR, CSR, Tensor]:
    """``rows[l] = source[index[l]]`` as a :class:`CSR` with one entry per row,
    and its transpose (every source's rows; ``spmm(..., 'mean')`` of it is
    the mean over them), each with the other as its cached transpose, so
    neither backward builds an index or zero-fills a scatter buffer; and the
    number of rows of every source."""
    perm = torch.argsort(index, stable=True)
    count = torch.bincount(index, minlength=num_sources)
    share_ptr = _ptr(count)
    ident = torch.arange(index.numel() + 1, device=index.device)
    position = torch.empty_like(perm)
    position[perm] = ident[:-1]
    return CSR(ident, index, None, (share_ptr, perm, perm)), CSR(share_ptr, perm, None, (ident, index, position)), count


@dataclass(frozen=True)
class RaggedEgoNets:
    r"""A batch's ego-nets as flat local rows, without padding or buckets.

    The local nodes of all ego-nets are ``L1 = sum_r m_r`` rows and their
    local pairs ``L2 = sum_r m_r^2`` rows (row-major within an ego-net), in
    the subgraph order of :attr:`subgraphs`: ego-nets of one weight group
    (:class:`SizeMap`) are contiguous, so a layer applies each group's
    weights to one slice. The per-ego-net statistics of :class:`SPENConv`
    (diagonal, row, column and total sums) become segment reductions and
    gathers over these rows (:func:`~graphequi.nn.spen_conv.spen_conv_ragged`),
    so a layer runs the same kernels however many sizes a batch holds, and
    memory is exactly :math:`O(\sum_r m_r^2)`. The pair-level gathers and
    scatters are :class:`~graphequi.ops.CSR` matrices with their transposes
    written down when the layout is built, so that :func:`graphequi.ops.spmm`
    computes each of them and its backward (a segment reduction) without
    sorting, atomics or zero-filled buffers; the few node-level rows use
    torch's gather and :func:`graphequi.ops.scatter`.

    Attributes:
        subgraphs: ``[S]`` subgraph (= centre node) ids in ragged order.
        sizes: ``[S]`` their sizes :math:`m`.
        groups: ``(group, S_g, L1_g, L2_g)`` per weight group present, in order:
            the group id and its number of ego-nets, local nodes and local pairs.
        node_index: ``[L1]`` global node of each local node (the centre first).
        pair_index: ``[L2]`` global pair (column of ``ego_pair_index``).
        node_ptr: ``[S + 1]`` local nodes of each ego-net.
        pair_ptr: ``[S + 1]`` local pairs of each ego-net.
        row_ptr: ``[L1 + 1]`` local pairs :math:`(a, \cdot)` of each local node :math:`a`.
        transpose: ``[L2]`` position of pair :math:`(b, a)` (an involution).
        diagonal: ``[L1]`` position of pair :math:`(a, a)`.
        node_subgraph: ``[L1]`` ragged position of each local node's ego-net.
        center: ``[L1, 1]`` 1 on each ego-net's center, 0 elsewhere (``float32``).
        pair_gather, pair_share: global pairs -> local pairs, and back (mean).
        statistics: ``[3 L1, L2]``: ``spmm(..., 'mean')`` of it gives, stacked, the row means
            :math:`r_a` (the pairs :math:`(a, \cdot)`), the column means :math:`c_b` (the pairs
            :math:`(\cdot, b)`) and the diagonal :math:`d_a` of every ego-net, in one kernel.
        assemble: ``[L2, 2 L2 + 3 L1]``: the 2->2 output of pair :math:`(a, b)` from the
            stacked rows ``[W_0 X, W_1 X`` (interleaved per pair) ``, row terms,
            column terms, diagonal terms]``: entries :math:`2(a,b)`,
            :math:`2(b,a) + 1`, :math:`a`, :math:`b` and, on the diagonal, :math:`a`
            (:func:`~graphequi.nn.spen_conv.spen_conv_ragged`).
        node_count, pair_count: ``[N]`` / ``[P]`` ego-nets holding each node / pair.
    """

    num_nodes: int
    num_pairs: int
    subgraphs: Tensor
    sizes: Tensor
    groups: tuple[tuple[int, int, int, int], ...]
    node_index: Tensor
    pair_index: Tensor
    node_ptr: Tensor
    pair_ptr: Tensor
    row_ptr: Tensor
    transpose: Tensor
    diagonal: Tensor
    node_subgraph: Tensor
    center: Tensor
    pair_gather: CSR
    pair_share: CSR
    statistics: CSR
    assemble: CSR
    node_count: Tensor
    pair_count: Tensor

    @classmethod
    def from_data(cls, data, size_map: Optional[SizeMap] = None) -> "RaggedEgoNets":
        """Args:
            data: a graph or batch written by :class:`graphequi.transforms.EgoNetBags`.
            size_map: weight groups (default: one group for all sizes).

        Example:
            >>> from torch_geometric.data import Data
            >>> from graphequi.transforms import EgoNetBags
            >>> g = EgoNetBags()(Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3))
            >>> ego = RaggedEgoNets.from_data(g)
            >>> ego.sizes.tolist(), ego.node_index.tolist(), ego.transpose.tolist()[:4]
            ([2, 3, 2], [0, 1, 1, 0, 2, 2, 1], [0, 2, 1, 3])
        """
        check_ego_bags(data)
        size_map = SizeMap.shared() if size_map is None else size_map
        size, node, pair = data.ego_size, data.ego_node, data.ego_pair
        n, num_pairs = int(data.num_nodes), int(data.ego_pair_index.size(1))
        device = size.device
        group = torch.zeros_like(size)
        for m in torch.unique(size).tolist():  # the few distinct sizes
            group[size == m] = size_map.group(m)
        order = torch.argsort(group, stable=True)
        sizes, group = size[order], group[order]
        sq = sizes * sizes
        old_node_offset = (torch.cumsum(size, 0) - size)[order]
        old_pair_offset = (torch.cumsum(size * size, 0) - size * size)[order]
        node_ptr, pair_ptr = _ptr(sizes), _ptr(sq)
        s = torch.arange(sizes.numel(), device=device)
        node_subgraph = torch.repeat_interleave(s, sizes)
        pair_subgraph = torch.repeat_interleave(s, sq)
        l1, l2 = node_subgraph.numel(), pair_subgraph.numel()
        a_node = torch.arange(l1, device=device) - node_ptr[:-1][node_subgraph]
        ab = torch.arange(l2, device=device) - pair_ptr[:-1][pair_subgraph]
        m_pair, m_node = sizes[pair_subgraph], sizes[node_subgraph]
        a, b = ab // m_pair, ab % m_pair
        first = node_ptr[:-1][pair_subgraph]
        node_index = node[old_node_offset[node_subgraph] + a_node]
        pair_index = pair[old_pair_offset[pair_subgraph] + ab]
        row_ptr = _ptr(m_node)
        row_node, col_node = first + a, first + b
        pair_pos = torch.arange(l2, device=device)
        transpose = pair_ptr[:-1][pair_subgraph] + b * m_pair + a  # an involution
        diagonal = pair_ptr[:-1][node_subgraph] + a_node * (m_node + 1)
        # statistics: row a averages the pairs (a, .) (entries 0..L2-1 read pair p), row L1 + b
        # the pairs (., b) (entry L2 + q reads t(q)), row 2 L1 + a the pair (a, a); so pair p is
        # read by entries p, L2 + t(p) and, on the diagonal, 2 L2 + a
        on_diag = a == b
        stat_rows = torch.stack([row_node, l1 + col_node, torch.where(on_diag, 2 * l1 + row_node, -1)], 1).view(-1)
        stat_perm = torch.stack([pair_pos, l2 + transpose, torch.where(on_diag, 2 * l2 + row_node, -1)], 1).view(-1)
        statistics = CSR(torch.cat([row_ptr, l2 + row_ptr[1:], 2 * l2 + 1 + torch.arange(l1, device=device)]),
                         torch.cat([pair_pos, transpose, diagonal]), None,
                         (_ptr(2 + on_diag.long()), stat_rows[stat_rows >= 0], stat_perm[stat_perm >= 0]))
        # assemble: row l = pair (a, b) sums sources 2l (W_0 X_ab), 2 t(l) + 1 (W_1 X_ba),
        # 2 L2 + a (row term), 2 L2 + L1 + b (column term) and, when a == b, 2 L2 + 2 L1 + a;
        # its transpose is written down directly rather than sorted
        width = 4 + on_diag.long()
        ptr = _ptr(width)
        entries = torch.stack([2 * pair_pos, 2 * transpose + 1, 2 * l2 + row_node, 2 * l2 + l1 + col_node,
                               torch.where(on_diag, 2 * l2 + 2 * l1 + row_node, -1)], dim=1).view(-1)
        start = ptr[:-1]
        src_rows = torch.cat([torch.stack([pair_pos, transpose], dim=1).view(-1), pair_pos, transpose, diagonal])
        src_perm = torch.cat([torch.stack([start, start[transpose] + 1], dim=1).view(-1), start + 2,
                              start[transpose] + 3, start[diagonal] + 4])
        src_count = torch.cat([torch.ones(2 * l2, dtype=torch.long, device=device), m_node, m_node,
                               torch.ones(l1, dtype=torch.long, device=device)])
        assemble = CSR(ptr, entries[entries >= 0], None, (_ptr(src_count), src_rows, src_perm))
        groups = []
        if sizes.numel():
            ids, counts = torch.unique_consecutive(group, return_counts=True)
            ends = torch.cumsum(counts, 0)
            starts = ends - counts
            rows1, rows2 = node_ptr[ends] - node_ptr[starts], pair_ptr[ends] - pair_ptr[starts]
            groups = [tuple(int(v) for v in row)
                      for row in zip(ids.tolist(), counts.tolist(), rows1.tolist(), rows2.tolist())]
        node_count = torch.bincount(node_index, minlength=n)
        pair_gather, pair_share, pair_count = _gather_csr(pair_index, num_pairs)
        return cls(
            n, num_pairs, order, sizes, tuple(groups), node_index, pair_index, node_ptr, pair_ptr, row_ptr,
            transpose, diagonal, node_subgraph, (a_node == 0).to(torch.float32).unsqueeze(-1), pair_gather,
            pair_share, statistics, assemble, node_count, pair_count)

    def gather(self, h1: Tensor, h2: Tensor) -> tuple[Tensor, Tensor]:
        """Shared ``[N, C_1]``, ``[P, C_2]`` -> local rows ``[L1, C_1]``, ``[L2, C_2]``."""
        # node rows are few: torch's own gather, whose autograd costs less than a custom op's
        return h1.index_select(0, self.node_index), self.pair_gather.spmm(h2, validate=False)

    def share_nodes(self, y1: Tensor) -> Tensor:
        """``[L1, C]`` local node outputs -> ``[N, C]`` means over the ego-nets holding each node."""
        return scatter(y1, self.node_index, 0, self.num_nodes, "mean")

    def share_pairs(self, y2: Tensor) -> Tensor:
        """``[L2, C]`` local pair outputs -> ``[P, C]`` means over the ego-nets holding each pair."""
        return self.pair_share.spmm(y2, "mean", validate=False)


def _ptr(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

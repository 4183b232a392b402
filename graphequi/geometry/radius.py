r"""Radius and fully connected graphs of point clouds, with
``torch_cluster.radius_graph``'s conventions and no dependency on it.

Edge convention (``flow="source_to_target"``, PyG's default):
``edge_index[0]`` is the source :math:`j` (the neighbor) and
``edge_index[1]`` the target :math:`i` (the center), so a
:class:`~torch_geometric.nn.conv.MessagePassing` layer aggregates at
:math:`i` the messages of the points within distance :math:`r` of it.

Edge order: sorted by target :math:`i`, then by source :math:`j`,
ascending (lexicographic on ``(i, j)``). When a target has more than
``max_num_neighbors`` neighbors, the ones with the **lowest source indices**
are kept (as ``torch_cluster``'s CUDA kernel, which scans sources in index
order; its CPU kernel keeps an unspecified subset). Which neighbors survive a
cap therefore depends on the node numbering, as in ``torch_cluster``.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional

import torch
from torch import Tensor

from ._checks import check_batch, check_positions

__all__ = ["radius_graph", "fully_connected_graph"]

# Largest number of candidate pairs held at once: bounds the memory of one
# target chunk, independent of N.
_CHUNK_CANDIDATES = 1 << 22
# Below this many nodes all pairs are tested at once (N^2 D floats, a few MB):
# binning and binary search cost more than they save on small clouds.
_DENSE_NODES = 1024


def _check_common(max_num_neighbors, flow):
    if max_num_neighbors is not None and (not isinstance(max_num_neighbors, int)
                                          or isinstance(max_num_neighbors, bool)
                                          or max_num_neighbors < 0):
        raise ValueError(f"max_num_neighbors must be a non-negative int or None, "
                         f"got {max_num_neighbors!r}")
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"flow must be 'source_to_target' or 'target_to_source', got {flow!r}")


def _finish(src: Tensor, tgt: Tensor, num_nodes: int, max_num_neighbors: Optional[int],
            flow: str) -> Tensor:
    """Sort edges by (target, source), cap each target, orient."""
    key = tgt * num_nodes + src
    key, perm = torch.sort(key)
    src, tgt = src[perm], tgt[perm]
    if max_num_neighbors is not None and tgt.numel():
        first = torch.searchsorted(tgt, tgt, right=False)
        keep = (torch.arange(tgt.numel(), device=tgt.device) - first) < max_num_neighbors
        src, tgt = src[keep], tgt[keep]
    if flow == "source_to_target":
        return torch.stack([src, tgt], 0)
    return torch.stack([tgt, src], 0)


def _expand(starts: Tensor, counts: Tensor, owners: Tensor) -> tuple[Tensor, Tensor]:
    """For ranges ``[starts[m], starts[m] + counts[m])`` owned by ``owners[m]``:
    (every position in the ranges, its owner), range by range."""
    total = int(counts.sum())
    seg = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts,
                                  output_size=total)
    begin = torch.cumsum(counts, 0) - counts
    within = torch.arange(total, device=counts.device) - begin[seg]
    return starts[seg] + within, owners[seg]


def radius_graph(pos: Tensor, r: float, batch: Optional[Tensor] = None,
                 max_num_neighbors: Optional[int] = 32, loop: bool = False,
                 flow: str = "source_to_target", *, method: str = "auto",
                 chunk_candidates: int = _CHUNK_CANDIDATES) -> Tensor:
    r"""Edges :math:`(j, i)` between points of the same graph with
    :math:`\lVert p_j - p_i \rVert < r` (strict, on the squared distance
    :math:`\sum_d (p_{j,d} - p_{i,d})^2 < r^2` in ``pos.dtype``).

    Algorithm: a cell list. Points are binned into cubic cells of side
    :math:`\ge r` (keyed by graph id and cell, sorted); the candidate
    sources of a target are the points of its :math:`3^D` neighboring cells,
    found by binary search in the sorted keys. Targets are processed in
    chunks holding at most ``chunk_candidates`` candidate pairs, so memory is
    :math:`O(N + E)` plus one chunk, and work is :math:`O(N \log N + E)` for
    point clouds of bounded density. Clouds of at most 1024 points
    (``method="auto"``) test all :math:`N^2` pairs at once instead, which is
    faster there and gives the same edges. Pure PyTorch (no compiled
    extension), any device.

    Args:
        pos: positions, shape ``[N, D]`` (``D`` = 1, 2 or 3 typically).
        r: the radius, ``> 0`` (``math.inf`` connects each graph fully).
        batch: graph id of every node, shape ``[N]`` (need not be sorted);
            ``None`` for one graph.
        max_num_neighbors: most sources kept per target (the lowest
            indices, see the module docstring); ``None`` for no cap.
        loop: include self-loops :math:`(i, i)`.
        flow: ``"source_to_target"`` (``edge_index[0] = j``) or
            ``"target_to_source"`` (rows swapped).
        method: ``"auto"``, ``"cells"`` (always the cell list) or
            ``"dense"`` (always all pairs, :math:`O(N^2)` memory).
        chunk_candidates: memory bound of one chunk, in candidate pairs.

    Returns:
        ``edge_index`` of shape ``[2, E]`` (int64), sorted by target then
        source.

    Raises:
        ValueError: for ``r <= 0`` or NaN, a finite ``r`` whose square
            over- or underflows ``pos.dtype``, NaN/inf positions, bad shapes.

    Example:
        >>> pos = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [2.0, 0, 0]])
        >>> radius_graph(pos, r=1.0).tolist()
        [[1, 0], [0, 1]]
    """
    check_positions(pos)
    if not isinstance(r, (int, float)) or isinstance(r, bool) or math.isnan(r) or r <= 0:
        raise ValueError(f"r must be a positive number, got {r!r}")
    finfo = torch.finfo(pos.dtype)
    if math.isfinite(r) and not finfo.tiny <= float(r) * float(r) <= finfo.max:
        # the test compares squared distances in pos.dtype: an r^2 that overflows
        # or underflows there would accept every pair or none
        raise ValueError(f"r = {r!r} is out of range for {pos.dtype} positions: r^2 must lie in "
                         f"[{finfo.tiny:.3g}, {finfo.max:.3g}]; rescale the positions or use a wider dtype")
    _check_common(max_num_neighbors, flow)
    if method not in ("auto", "cells", "dense"):
        raise ValueError(f"method must be 'auto', 'cells' or 'dense', got {method!r}")
    num_nodes, dim = pos.shape
    batch = check_batch(batch, num_nodes)
    device = pos.device
    if num_nodes == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    single_graph = batch is None
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    r2 = float(r) * float(r)
    if method == "dense" or (method == "auto" and num_nodes <= _DENSE_NODES):
        # one coordinate at a time: an [N, N] accumulator instead of an
        # [N, N, D] difference tensor (several times faster), summed in the
        # same order as the cell path so both give the same edges.
        p = pos.detach()
        d2 = torch.zeros(num_nodes, num_nodes, dtype=p.dtype, device=device)
        for d in range(dim):
            c = p[:, d]
            diff = c.unsqueeze(0) - c.unsqueeze(1)                     # [i, j]: p_j - p_i
            d2.addcmul_(diff, diff)
        mask = d2 < r2
        if single_graph is False:
            mask &= batch.unsqueeze(0) == batch.unsqueeze(1)
        if not loop:
            mask.fill_diagonal_(False)
        tgt, src = mask.nonzero().unbind(1)
        return _finish(src, tgt, num_nodes, max_num_neighbors, flow)
    num_graphs = int(batch.max()) + 1

    # Binning in float64 with cells slightly larger than r: a pair accepted
    # by the test in pos.dtype (which may round a distance just above r down)
    # is still in adjacent cells.
    p64 = pos.detach().to(torch.float64)
    lo = p64.min(0).values
    extent = p64.max(0).values - lo
    cell = r * (1.0 + 1e-5)
    # Keys b * cells + cell id must fit in int64: cap the cells per dim.
    cap = max(2, int((2.0 ** 60 / num_graphs) ** (1.0 / dim)))
    side = torch.clamp(extent / (cap - 1), min=cell) if math.isfinite(cell) else \
        torch.full_like(extent, math.inf)
    side = torch.where(extent > 0, side, torch.full_like(side, math.inf))
    grid = torch.where(torch.isfinite(side), torch.floor(extent / side) + 1,
                       torch.ones_like(side)).long()
    coord = torch.where(torch.isfinite(side), torch.floor((p64 - lo) / side),
                        torch.zeros_like(p64)).long()
    coord = torch.minimum(coord, grid - 1)
    stride = torch.ones(dim, dtype=torch.long, device=device)
    for d in range(dim - 2, -1, -1):
        stride[d] = stride[d + 1] * grid[d + 1]
    cells = int(stride[0] * grid[0])
    key = batch * cells + (coord * stride).sum(-1)
    sorted_key, order = torch.sort(key, stable=True)

    offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=dim)),
                           dtype=torch.long, device=device)          # [K, D]
    ncoord = coord.unsqueeze(1) + offsets.unsqueeze(0)                # [N, K, D]
    valid = ((ncoord >= 0) & (ncoord < grid)).all(-1)                 # [N, K]
    nkey = batch.unsqueeze(1) * cells + (ncoord * stride).sum(-1)
    start = torch.searchsorted(sorted_key, nkey, right=False)
    count = (torch.searchsorted(sorted_key, nkey, right=True) - start) * valid
    per_target = count.sum(1)

    srcs, tgts = [], []
    bounds = torch.cumsum(per_target, 0)
    t0 = 0
    while t0 < num_nodes:
        # Largest chunk [t0, t1) within the budget (at least one target).
        base = int(bounds[t0 - 1]) if t0 else 0
        t1 = int(torch.searchsorted(bounds, torch.tensor(base + chunk_candidates, device=device),
                                    right=True))
        t1 = min(max(t1, t0 + 1), num_nodes)
        owners = torch.arange(t0, t1, device=device).repeat_interleave(offsets.size(0))
        position, tgt = _expand(start[t0:t1].reshape(-1), count[t0:t1].reshape(-1), owners)
        src = order[position]
        diff = pos.detach()[src] - pos.detach()[tgt]
        keep = (diff * diff).sum(-1) < r2
        if not loop:
            keep &= src != tgt
        srcs.append(src[keep])
        tgts.append(tgt[keep])
        t0 = t1
    src, tgt = torch.cat(srcs), torch.cat(tgts)
    return _finish(src, tgt, num_nodes, max_num_neighbors, flow)


def fully_connected_graph(num_nodes: int, batch: Optional[Tensor] = None, loop: bool = False,
                          flow: str = "source_to_target", device=None) -> Tensor:
    r"""Every ordered pair :math:`(j, i)` of nodes of the same graph
    (:math:`j \ne i` unless ``loop``), in :func:`radius_graph`'s order
    (target, then source). Memory :math:`O(E) = O(\sum_g n_g^2)`.

    Args:
        num_nodes: :math:`N`.
        batch: graph id per node ``[N]`` (need not be sorted), or ``None``.
        loop: include self-loops.
        flow: as in :func:`radius_graph`.

    Returns:
        ``edge_index`` of shape ``[2, E]``.

    Example:
        >>> fully_connected_graph(3).tolist()
        [[1, 2, 0, 2, 0, 1], [0, 0, 1, 1, 2, 2]]
    """
    if not isinstance(num_nodes, int) or num_nodes < 0:
        raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
    _check_common(None, flow)
    batch = check_batch(batch, num_nodes)
    if batch is not None:
        device = batch.device
    if num_nodes == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    members = torch.sort(batch, stable=True).indices                  # nodes grouped by graph
    sizes = torch.bincount(batch)
    first = torch.cumsum(sizes, 0) - sizes
    targets = torch.arange(num_nodes, device=batch.device)
    position, tgt = _expand(first[batch], sizes[batch], targets)
    src = members[position]
    if not loop:
        keep = src != tgt
        src, tgt = src[keep], tgt[keep]
    # Already sorted by (target, source): targets ascend, members ascend.
    return torch.stack([src, tgt], 0) if flow == "source_to_target" else torch.stack([tgt, src], 0)

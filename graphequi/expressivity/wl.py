r"""Exact Weisfeiler-Leman oracles: color refinement (1-WL) and folklore 2-WL.

``k=1`` is color refinement on nodes,

.. math::
    c^{t+1}(v) = \big(c^t(v),\ \{\!\{ c^t(u) : u \in N(v) \}\!\}\big),

and ``k=2`` is the folklore 2-WL (2-FWL, as strong as the oblivious 3-WL and
as PPGN) on ordered node pairs,

.. math::
    c^{t+1}(i, j) = \big(c^t(i, j),\ \{\!\{ (c^t(i, w), c^t(w, j)) : w \in V \}\!\}\big),

starting from the atomic type of :math:`(i, j)` (equal?, adjacent?, initial
colors of :math:`i` and :math:`j`, and optional initial pair colors such as
polynomial pair channels, ``SimpleGraph.pair_features``). Both iterate until
the number of color classes stops growing.

Determinism: colors are never hashed with Python's salted ``hash()``. After
each round the signatures are sorted and the new color is the rank of a
node's (pair's) signature among the distinct signatures, so color names are
canonical. :func:`wl_equivalent` runs the refinement on both graphs in lock
step with *one* joint ranking per round, which is the textbook comparison;
:func:`wl_hash` digests (BLAKE2b) the sorted signature tables of every round,
so equal hashes mean equal refinements up to digest collisions.

Speed: each round summarizes every multiset by a 64-bit hash with fixed
random tables (1-WL: a sum over the neighbors, :func:`_node_multiset_hash`;
2-FWL: one ``uint64`` matrix product, :func:`_pair_multiset_hash`), ranks
``(old color, hash)`` keys with one lexsort, and then *verifies exactly*
that every node (pair) has the same sorted multiset as its class
representative (2-FWL in chunks: ``O(n^3 log n)`` time, ``O(n^2)`` memory
beyond one chunk). A hash collision is resolved by exact sorting of the
affected classes, so results never depend on luck.

Example:
    >>> import networkx as nx
    >>> two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    >>> hexagon = nx.cycle_graph(6)
    >>> wl_equivalent(two_triangles, hexagon, k=1), wl_equivalent(two_triangles, hexagon, k=2)
    (True, False)
    >>> wl_hash(hexagon) == wl_hash(nx.relabel_nodes(hexagon, {i: 5 - i for i in range(6)}))
    True
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ._graphs import SimpleGraph, as_simple_graph

__all__ = ["wl_hash", "wl_equivalent", "wl_colors"]

# Elements per chunk of the [b, n, n] 2-FWL verification tensor (32 MiB of uint64).
_CHUNK_ELEMENTS = 1 << 22
_TABLE_SEED = 0x6772617068657175  # fixed: hash tables must not depend on the process


def _pair_multiset_hash(C: np.ndarray, num_classes: int) -> np.ndarray:
    """64-bit hash of the multisets ``{(C[i,w], C[w,j]) : w}`` for all ``(i, j)``.

    With fixed random tables ``r1, r2`` over the colors it is the bilinear
    form ``sum_w r1[C[i,w]] * r2[C[w,j]] (mod 2^64)``, i.e. one ``uint64``
    matrix product: ``h = r1[C] @ r2[C]``. Distinct multisets collide with
    probability about ``2^-55``; collisions are caught by the exact check.
    """
    r1, r2 = np.random.default_rng(_TABLE_SEED).integers(
        0, np.iinfo(np.uint64).max, size=(2, num_classes), dtype=np.uint64, endpoint=True)
    return r1[C] @ r2[C]


def _node_multiset_hash(rows: np.ndarray, nbr_colors: np.ndarray, num_nodes: int,
                        num_classes: int) -> np.ndarray:
    """64-bit hash of each node's neighbor-color multiset:
    ``sum_{u in N(v)} r[c(u)] (mod 2^64)`` with a fixed random table ``r``;
    collisions are caught by the exact check."""
    table = np.random.default_rng(_TABLE_SEED + 1).integers(
        0, np.iinfo(np.uint64).max, size=num_classes, dtype=np.uint64, endpoint=True)
    out = np.zeros(num_nodes, dtype=np.uint64)
    np.add.at(out, rows, table[nbr_colors])
    return out


def _check_k(k: int) -> None:
    if k not in (1, 2):
        raise ValueError(f"k must be 1 (color refinement) or 2 (folklore 2-WL), got {k!r}")


def _rank_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canonical ranks of the rows of ``keys``: (unique rows, first index,
    inverse, counts), unique rows in lexicographic order."""
    # A stable lexsort over the columns (first column most significant) is
    # much faster than np.unique(axis=0) and gives the same order.
    num = keys.shape[0]
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.ones(num, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(num, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    start_pos = np.flatnonzero(starts)
    counts = np.diff(np.append(start_pos, num))
    return ordered[starts], order[starts], inverse, counts


class _Refinement:
    """Lock-step refinement of several graphs with one joint color ranking.

    After ``run()``: ``colors[g]`` holds the stable colors of graph ``g``
    (``[n]`` for k=1, ``[n*n]`` row-major pairs for k=2), ``histories[g]``
    the color histogram of every round and ``tables`` the sorted signature
    table (rows, counts) of every round (meaningful as a single-graph digest).
    """

    def __init__(self, graphs: Sequence[SimpleGraph], k: int):
        self.graphs = list(graphs)
        self.k = k
        self.sizes = [g.num_nodes if k == 1 else g.num_nodes ** 2 for g in self.graphs]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        self.histories: list[list[np.ndarray]] = [[] for _ in self.graphs]
        if k == 2 and len({g.num_nodes for g in self.graphs}) > 1:
            raise ValueError("joint 2-FWL refinement needs graphs of equal size")

    # -- bookkeeping ---------------------------------------------------------
    def _assign(self, keys: np.ndarray) -> np.ndarray:
        uniq, first, inverse, counts = _rank_rows(keys)
        self.tables.append((uniq, counts))
        self._first = first
        ids = inverse.astype(np.int64)
        self.num_classes = int(uniq.shape[0])
        self.colors = [ids[self.offsets[g]:self.offsets[g + 1]] for g in range(len(self.graphs))]
        for g, c in enumerate(self.colors):
            self.histories[g].append(np.bincount(c, minlength=self.num_classes))
        return ids

    def histograms_differ(self) -> bool:
        last = [h[-1] for h in self.histories]
        return any(not np.array_equal(last[0], h) for h in last[1:])

    # -- initial colors -----------------------------------------------------
    def _initial(self) -> None:
        if self.k == 1:
            keys = np.concatenate([g.features for g in self.graphs])
            if keys.shape[1] == 0:
                keys = np.zeros((keys.shape[0], 1))
        else:
            rows = []
            for g in self.graphs:
                n, f = g.num_nodes, g.features
                adj = g.dense().reshape(-1, 1).astype(np.float64)
                eye = np.eye(n, dtype=np.float64).reshape(-1, 1)
                fi = np.repeat(f, n, axis=0)  # feature of i for pair (i, j)
                fj = np.tile(f, (n, 1))       # feature of j
                cols = [eye, adj, fi, fj]
                if g.pair_features is not None:
                    cols.append(g.pair_features.reshape(n * n, -1).astype(np.float64) + 0.0)
                rows.append(np.hstack(cols))
            keys = np.concatenate(rows)
        self._assign(keys)

    # -- one round -------------------------------------------------------------
    def _joint_csr(self) -> None:
        """Neighbor lists of all graphs as one CSR over the joint node ids."""
        indptrs, indices, node_off, edge_off = [], [], 0, 0
        for g in self.graphs:
            indptr, idx = g.csr()
            indptrs.append(indptr[:-1] + edge_off)
            indices.append(idx + node_off)
            node_off += g.num_nodes
            edge_off += idx.size
        self._indptr = np.concatenate(indptrs + [np.array([edge_off])]).astype(np.int64)
        self._indices = np.concatenate(indices).astype(np.int64)
        self._deg = np.diff(self._indptr)
        self._rows = np.repeat(np.arange(node_off), self._deg)

    def _step_1wl(self) -> None:
        colors = np.concatenate(self.colors)
        nbr = colors[self._indices]
        h = _node_multiset_hash(self._rows, nbr, colors.size, self.num_classes)
        keys = np.stack([colors.astype(np.uint64), self._deg.astype(np.uint64), h], axis=1)
        _, first, inverse, _ = _rank_rows(keys)
        # Exact check: every node's sorted neighbor colors must equal its
        # class representative's (degrees agree, being part of the key).
        sorted_nbr = nbr[np.lexsort((nbr, self._rows))]
        others = np.flatnonzero(first[inverse] != np.arange(inverse.size))
        deg = self._deg[others]
        within = np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg)
        mine = sorted_nbr[np.repeat(self._indptr[others], deg) + within]
        theirs = sorted_nbr[np.repeat(self._indptr[first[inverse[others]]], deg) + within]
        broken = np.repeat(others, deg)[mine != theirs]
        if broken.size:
            sub = np.zeros((inverse.size, 1), dtype=np.uint64)
            for cls in np.unique(inverse[broken]):
                members = np.flatnonzero(inverse == cls)
                d = int(self._deg[members[0]])
                lists = sorted_nbr[self._indptr[members][:, None] + np.arange(d)]
                sub[members, 0] = np.unique(lists, axis=0, return_inverse=True)[1].reshape(-1)
            keys = np.hstack([keys, sub])
        self._assign(keys)

    def _step_2fwl(self) -> None:
        n = self.graphs[0].num_nodes
        K = np.uint64(self.num_classes)
        mats = np.stack([c.reshape(n, n) for c in self.colors]).astype(np.uint64)
        self._transposed = np.ascontiguousarray(mats.transpose(0, 2, 1))
        hashes = [_pair_multiset_hash(C, self.num_classes).reshape(-1) for C in mats]
        keys = np.stack([mats.reshape(-1), np.concatenate(hashes)], axis=1)
        _, first, inverse, _ = _rank_rows(keys)
        bad = self._collided_classes(mats, inverse, first, n, K)
        if bad.size:
            keys = np.hstack([keys, self._split_collisions(mats, inverse, bad, n, K)])
        self._assign(keys)

    def _sorted_rows(self, mats: np.ndarray, items: np.ndarray, n: int, K: np.uint64) -> np.ndarray:
        """Sorted multisets ``{(C[i,w], C[w,j])}`` (as codes ``C[i,w] K + C[w,j]``)
        for global pair ids ``items``; ``mats`` is ``[graphs, n, n]``."""
        g, flat = np.divmod(items, n * n)
        i, j = np.divmod(flat, n)
        rows = mats.reshape(-1, n)  # row (g, i) of C_g, contiguous
        cols = self._transposed.reshape(-1, n)  # column (g, j) of C_g, contiguous
        out = rows[g * n + i]
        out *= K
        out += cols[g * n + j]
        out.sort(axis=1)
        return out

    def _collided_classes(self, mats, inverse, first, n, K) -> np.ndarray:
        """Classes whose members do not all share their representative's
        multiset (i.e. a hash collision); normally empty. Exact: compares
        sorted multisets, in chunks, for every item that is not its class
        representative (so discrete classes cost nothing)."""
        others = np.flatnonzero(first[inverse] != np.arange(inverse.size))
        bad = []
        for start in range(0, others.size, max(1, _CHUNK_ELEMENTS // n)):
            items = others[start:start + max(1, _CHUNK_ELEMENTS // n)]
            reps = first[inverse[items]]
            mismatch = (self._sorted_rows(mats, items, n, K)
                        != self._sorted_rows(mats, reps, n, K)).any(axis=1)
            if mismatch.any():
                bad.append(inverse[items[mismatch]])
        return np.unique(np.concatenate(bad)) if bad else np.zeros(0, dtype=np.int64)

    def _split_collisions(self, mats, inverse, bad, n, K) -> np.ndarray:
        """Exact sub-ranks inside collided classes (0 elsewhere), canonical
        because they are ranks of sorted multisets."""
        sub = np.zeros((inverse.size, 1), dtype=np.uint64)
        members = np.nonzero(np.isin(inverse, bad))[0]
        rows = self._sorted_rows(mats, members, n, K)
        keyed = np.hstack([inverse[members, None].astype(np.uint64), rows])
        uniq, inv = np.unique(keyed, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        first_of_class = np.searchsorted(uniq[:, 0], uniq[:, 0], side="left")
        sub[members, 0] = (np.arange(uniq.shape[0]) - first_of_class)[inv].astype(np.uint64)
        return sub

    def run(self, stop_on_difference: bool = False) -> "_Refinement":
        if self.k == 1:
            self._joint_csr()
        self._initial()
        while True:
            if stop_on_difference and self.histograms_differ():
                return self
            before = self.num_classes
            self._step_1wl() if self.k == 1 else self._step_2fwl()
            if self.num_classes == before:
                return self


def _prepare(graph: Any, node_attr: Optional[str]) -> SimpleGraph:
    return graph if isinstance(graph, SimpleGraph) else as_simple_graph(graph, node_attr)


def wl_colors(graph: Any, k: int = 1, *, node_attr: Optional[str] = None) -> Tensor:
    """Stable WL colors of one graph.

    Args:
        graph: networkx graph or PyG ``Data`` (treated as undirected simple).
        k: ``1`` for color refinement, ``2`` for folklore 2-WL.
        node_attr: optional node attribute used as initial colors (see
            :func:`~graphequi.expressivity._graphs.as_simple_graph`).

    Returns:
        ``LongTensor`` of shape ``[n]`` (``k=1``) or ``[n, n]`` (``k=2``,
        entry ``(i, j)`` is the color of the ordered pair), colors numbered
        ``0..c-1`` canonically (relabeling the graph permutes the entries).

    Example:
        >>> import networkx as nx
        >>> wl_colors(nx.path_graph(4)).tolist()
        [0, 1, 1, 0]
    """
    _check_k(k)
    g = _prepare(graph, node_attr)
    run = _Refinement([g], k).run()
    colors = torch.from_numpy(run.colors[0].copy())
    return colors if k == 1 else colors.reshape(g.num_nodes, g.num_nodes)


def wl_hash(graph: Any, k: int = 1, *, node_attr: Optional[str] = None) -> str:
    """A WL-invariant hash: equal for WL-equivalent graphs, different (up to
    BLAKE2b/64-bit-hash collisions) otherwise. Stable across processes,
    platforms and ``PYTHONHASHSEED``.

    Args:
        graph: networkx graph or PyG ``Data`` (treated as undirected simple).
        k: ``1`` (color refinement) or ``2`` (folklore 2-WL).
        node_attr: optional node attribute used as initial colors.

    Returns:
        32 hexadecimal characters.
    """
    _check_k(k)
    g = _prepare(graph, node_attr)
    run = _Refinement([g], k).run()
    digest = hashlib.blake2b(digest_size=16, person=b"graphequi-wl")
    digest.update(f"k={k};n={g.num_nodes};m={g.num_edges};rounds={len(run.tables)}".encode())
    for rows, counts in run.tables:
        rows = np.ascontiguousarray(rows)
        digest.update(str(rows.shape).encode())
        digest.update(rows.astype("<f8" if rows.dtype.kind == "f" else "<u8").tobytes())
        digest.update(counts.astype("<i8").tobytes())
    return digest.hexdigest()


def wl_equivalent(g1: Any, g2: Any, k: int = 1, *, node_attr: Optional[str] = None) -> bool:
    """Whether ``k``-WL (1 = color refinement, 2 = folklore 2-WL) fails to
    distinguish ``g1`` and ``g2``.

    Both graphs are refined in lock step with one joint canonical color
    ranking per round; they are equivalent when the color histograms agree
    in every round up to the stable one.

    Args:
        g1, g2: networkx graphs or PyG ``Data`` (treated as undirected simple).
        k: ``1`` or ``2``.
        node_attr: optional node attribute used as initial colors (on both).
    """
    _check_k(k)
    a, b = _prepare(g1, node_attr), _prepare(g2, node_attr)
    if a.num_nodes != b.num_nodes or a.num_edges != b.num_edges:
        return False
    if a.features.shape[1] != b.features.shape[1]:
        return False
    widths = [None if g.pair_features is None else g.pair_features.shape[2] for g in (a, b)]
    if widths[0] != widths[1]:
        raise ValueError(f"both graphs need the same pair features, got widths {widths}")
    if widths[0] is not None and k != 2:
        raise ValueError("pair_features are initial colors of node pairs and need k=2")
    run = _Refinement([a, b], k).run(stop_on_difference=True)
    return not run.histograms_differ()

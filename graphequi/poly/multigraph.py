r"""Multigraphs with marked nodes: the index set of equivariant polynomials.

A multigraph :math:`H = (V, E)` with ``d`` edges and marked nodes
``(a)`` or ``(a, b)`` defines the polynomial

.. math::

    P_H(X)_{i_1 i_2} = \sum_{j: V \to [n],\ j(a) = i_1,\ j(b) = i_2}
        \ \prod_{(r, s) \in E} X_{j(r), j(s)}

(Puny, Lim, Kiani, Maron, Lipman, *Equivariant Polynomials for Graph Neural
Networks*, ICML 2023). Isomorphic multigraphs (by a node map that keeps each
mark in its place) define the same polynomial, so :class:`Multigraph`
compares and hashes by a canonical form.

Canonical form
--------------
:func:`canonical_labeling` is a small individualization-refinement search
(the scheme of nauty, without its full automorphism pruning):

1. nodes start with a color (marks get their own colors), which is refined
   by color refinement (1-WL on the multigraph, with edge multiplicities,
   loops and edge directions) until the partition is stable;
2. while a color class has several nodes, each node of the first smallest
   class is *individualized* in turn and the partition refined again;
3. every discrete partition is a labeling; the canonical one is the
   labeling whose relabeled (sorted) edge list is smallest.

Two nodes of the same class whose transposition is an automorphism (twins,
e.g. the leaves of a star or the ends of a bundle of parallel edges) lead to
identical subtrees, so only one of them is tried. Connected components are
canonicalized separately and concatenated in sorted order, which keeps
matchings and other disconnected multigraphs cheap.
"""
from __future__ import annotations

import functools
from collections import Counter
from typing import Iterable, Sequence

from graphequi._deprecation import renamed_function

__all__ = ["Multigraph", "canonical_labeling"]

Edge = tuple[int, int]


def _normalize_edges(edges: Iterable[Sequence[int]], directed: bool) -> tuple[Edge, ...]:
    out = []
    for e in edges:
        u, v = int(e[0]), int(e[1])
        if not directed and u > v:
            u, v = v, u
        out.append((u, v))
    return tuple(sorted(out))


def _components(num_nodes: int, edges: Sequence[Edge]) -> list[list[int]]:
    parent = list(range(num_nodes))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
    groups: dict[int, list[int]] = {}
    for x in range(num_nodes):
        groups.setdefault(find(x), []).append(x)
    return list(groups.values())


def _refine(colors: list[int], adjacency: list[list[tuple[int, int]]]) -> list[int]:
    """Color refinement to a stable partition.

    New colors are ranks of ``(old color, sorted neighbor signature)``, so
    the old order stays the primary key and the result does not depend on
    node ids.
    """
    num_colors = len(set(colors))
    while True:
        signatures = [
            (colors[v], tuple(sorted([3 * colors[u] + tag for u, tag in adjacency[v]])))
            for v in range(len(colors))
        ]
        ranks = {s: r for r, s in enumerate(sorted(set(signatures)))}
        colors = [ranks[s] for s in signatures]
        if len(ranks) == num_colors:
            return colors
        num_colors = len(ranks)


def _connected_labeling(num_nodes: int, edges: Sequence[Edge], colors: Sequence[int],
                         directed: bool) -> tuple[tuple, list[int]]:
    """Canonical certificate and labeling of one (connected) colored multigraph."""
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(num_nodes)]
    for u, v in edges:
        if u == v:
            adjacency[u].append((u, 2))
        else:
            adjacency[u].append((v, 0))
            adjacency[v].append((u, 1 if directed else 0))
    edge_count = Counter(edges)

    def swapped_is_automorphism(x: int, y: int) -> bool:
        def sw(a: int) -> int:
            return y if a == x else x if a == y else a

        moved: Counter = Counter()
        for (u, v), c in edge_count.items():
            a, b = sw(u), sw(v)
            if not directed and a > b:
                a, b = b, a
            moved[(a, b)] += c
        return moved == edge_count

    # Initial ranks from the given colors (kept as the primary sort key).
    ranks = {c: r for r, c in enumerate(sorted(set(colors)))}
    start = _refine([ranks[c] for c in colors], adjacency)
    best: list = [None, None]

    def certificate(labels: list[int]) -> tuple:
        relabeled = []
        for u, v in edges:
            a, b = labels[u], labels[v]
            if not directed and a > b:
                a, b = b, a
            relabeled.append((a, b))
        return tuple(sorted(relabeled))

    def search(part: list[int]) -> None:
        sizes = Counter(part)
        if len(sizes) == num_nodes:
            cert = certificate(part)
            if best[0] is None or cert < best[0]:
                best[0], best[1] = cert, part
            return
        # First smallest non-singleton class: an isomorphism-invariant choice.
        target = min((s, c) for c, s in sizes.items() if s > 1)[1]
        tried: list[int] = []
        for v in range(num_nodes):
            if part[v] != target:
                continue
            if any(swapped_is_automorphism(v, w) for w in tried):
                continue
            tried.append(v)
            # Individualize v: it comes first inside its class.
            split = [2 * c + (1 if c == target and x != v else 0) for x, c in enumerate(part)]
            search(_refine(split, adjacency))

    search(start)
    color_sequence = [None] * num_nodes
    for v, label in enumerate(best[1]):
        color_sequence[label] = colors[v]
    return (num_nodes, tuple(color_sequence), best[0]), best[1]


@functools.lru_cache(maxsize=200_000)
def canonical_labeling(num_nodes: int, edges: tuple[Edge, ...], colors: tuple[int, ...],
                        directed: bool) -> tuple[tuple, tuple[int, ...]]:
    """Canonical certificate and labeling of a node-colored multigraph.

    Args:
        num_nodes: number of nodes ``N`` (ids ``0..N-1``).
        edges: normalized edge tuple (see :class:`Multigraph`).
        colors: one sortable color per node; isomorphisms must keep colors.
        directed: whether ``(u, v)`` and ``(v, u)`` differ.

    Returns:
        ``(certificate, labels)`` where ``labels[v]`` is the canonical id of
        node ``v``. Two colored multigraphs are isomorphic iff their
        certificates are equal.
    """
    comps = _components(num_nodes, edges)
    node_to_comp = {}
    for ci, comp in enumerate(comps):
        for j, v in enumerate(comp):
            node_to_comp[v] = (ci, j)
    comp_edges: list[list[Edge]] = [[] for _ in comps]
    for u, v in edges:
        ci, a = node_to_comp[u]
        _, b = node_to_comp[v]
        if not directed and a > b:
            a, b = b, a
        comp_edges[ci].append((a, b))
    results = []
    for ci, comp in enumerate(comps):
        cert, labels = _connected_labeling(len(comp), comp_edges[ci],
                                            [colors[v] for v in comp], directed)
        results.append((cert, ci, labels))
    results.sort(key=lambda r: r[0])
    labels_out = [0] * num_nodes
    color_seq: list = []
    all_edges: list[Edge] = []
    offset = 0
    for cert, ci, labels in results:
        for j, v in enumerate(comps[ci]):
            labels_out[v] = offset + labels[j]
        color_seq.extend(cert[1])
        all_edges.extend((offset + a, offset + b) for a, b in cert[2])
        offset += cert[0]
    return (num_nodes, tuple(color_seq), tuple(all_edges)), tuple(labels_out)


canonical_labelling = renamed_function("canonical_labelling", "canonical_labeling", canonical_labeling)


class Multigraph:
    r"""An immutable multigraph with 0, 1 or 2 marked nodes.

    Args:
        num_nodes: number of nodes; ids are ``0 .. num_nodes - 1``.
        edges: sequence of ``(u, v)`` pairs. Repeated pairs are parallel
            edges and ``u == v`` is a self-loop. For undirected multigraphs
            ``(u, v)`` and ``(v, u)`` are the same edge.
        marked: tuple of 0, 1 or 2 distinct node ids ``(a,)`` / ``(a, b)``;
            the order matters (``a`` indexes rows, ``b`` columns).
        directed: whether edges are directed, i.e. whether the edge
            ``(r, s)`` stands for the factor :math:`X_{j(r) j(s)}` rather than
            a symmetric :math:`X`.

    Equality and hashing are up to isomorphism keeping each mark in place.
    ``edges`` is stored sorted (and, undirected, with ``u <= v``).

    Example:
        >>> tri = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
        >>> tri == Multigraph(3, [(2, 1), (0, 2), (1, 0)])
        True
        >>> tri.degree, tri.einsum_equation()
        (3, 'ab,ac,bc->')
        >>> Multigraph(2, [(0, 1)], marked=(0,)) == Multigraph(2, [(0, 1)], marked=(1,))
        True
        >>> Multigraph(2, [(0, 1)], marked=(0,), directed=True) == Multigraph(2, [(0, 1)], marked=(1,), directed=True)
        False
    """

    __slots__ = ("num_nodes", "edges", "marked", "directed", "_key", "_labels")

    def __init__(self, num_nodes: int, edges: Iterable[Sequence[int]] = (),
                 marked: Sequence[int] = (), directed: bool = False):
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
            raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
        edge_list = list(edges)
        for e in edge_list:
            if len(e) != 2:
                raise ValueError(f"each edge must be a (u, v) pair, got {e!r}")
            for x in e:
                if not (0 <= int(x) < num_nodes):
                    raise ValueError(f"edge {tuple(e)!r} has a node outside 0..{num_nodes - 1}")
        marked = tuple(int(m) for m in marked)
        if len(marked) > 2:
            raise ValueError(f"at most 2 marked nodes are supported, got {marked!r}")
        if len(set(marked)) != len(marked):
            raise ValueError(f"marked nodes must be distinct, got {marked!r}")
        for m in marked:
            if not 0 <= m < num_nodes:
                raise ValueError(f"marked node {m} is outside 0..{num_nodes - 1}")
        object.__setattr__(self, "num_nodes", num_nodes)
        object.__setattr__(self, "edges", _normalize_edges(edge_list, bool(directed)))
        object.__setattr__(self, "marked", marked)
        object.__setattr__(self, "directed", bool(directed))
        object.__setattr__(self, "_key", None)
        object.__setattr__(self, "_labels", None)

    def __setattr__(self, name, value):
        raise AttributeError("Multigraph is immutable")

    def __delattr__(self, name):
        raise AttributeError("Multigraph is immutable")

    def __reduce__(self):
        return (Multigraph, (self.num_nodes, self.edges, self.marked, self.directed))

    # -- basic properties -------------------------------------------------
    @property
    def degree(self) -> int:
        """Number of edges ``d`` (the polynomial degree)."""
        return len(self.edges)

    @property
    def num_marks(self) -> int:
        return len(self.marked)

    def node_colors(self) -> tuple[int, ...]:
        """Color 0/1 for the marks ``a``/``b``, 2 for every other node."""
        colors = [2] * self.num_nodes
        for i, m in enumerate(self.marked):
            colors[m] = i
        return tuple(colors)

    node_colours = renamed_function("Multigraph.node_colours", "Multigraph.node_colors", node_colors)

    def node_degrees(self) -> tuple[int, ...]:
        """Number of edge ends at each node (a loop counts twice)."""
        deg = [0] * self.num_nodes
        for u, v in self.edges:
            deg[u] += 1
            deg[v] += 1
        return tuple(deg)

    def isolated_nodes(self) -> tuple[int, ...]:
        """Nodes without any incident edge."""
        return tuple(v for v, d in enumerate(self.node_degrees()) if d == 0)

    def is_connected(self) -> bool:
        """Whether the multigraph (marks included) is connected."""
        return len(_components(self.num_nodes, self.edges)) <= 1

    def has_loops(self) -> bool:
        return any(u == v for u, v in self.edges)

    def is_simple(self) -> bool:
        """No loops and no parallel edges."""
        return not self.has_loops() and len(set(self.edges)) == len(self.edges)

    # -- canonical form -----------------------------------------------------
    def _canonical(self) -> tuple[tuple, tuple[int, ...]]:
        if self._labels is None:
            cert, labels = canonical_labeling(self.num_nodes, self.edges, self.node_colors(),
                                               self.directed)
            object.__setattr__(self, "_key", (self.directed, len(self.marked), cert))
            object.__setattr__(self, "_labels", labels)
        return self._key, self._labels

    def key(self) -> tuple:
        """Hashable, totally ordered canonical key (equal iff isomorphic)."""
        return self._key if self._key is not None else self._canonical()[0]

    def canonical(self) -> "Multigraph":
        """The canonical representative of the isomorphism class."""
        key, labels = self._canonical()
        out = Multigraph(self.num_nodes, [(labels[u], labels[v]) for u, v in self.edges],
                         tuple(labels[m] for m in self.marked), self.directed)
        object.__setattr__(out, "_key", key)  # same class, no need to search again
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, Multigraph):
            return NotImplemented
        return self.key() == other.key()

    def __lt__(self, other: "Multigraph") -> bool:
        return self.key() < other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    # -- presentation ---------------------------------------------------------
    def einsum_equation(self) -> str:
        """``torch.einsum`` equation of the product over edges, e.g. ``'ab,bc->a'``.

        Node ``i`` is the letter ``chr(ord('a') + i)``; each edge ``(r, s)`` is one
        operand ``X``; marked nodes are the output. Isolated nodes have no
        operand: an isolated unmarked node multiplies the polynomial by ``n``
        and an isolated mark broadcasts, which :func:`~graphequi.poly.evaluate`
        handles.
        """
        if self.num_nodes > 52:
            raise ValueError("einsum_equation supports at most 52 nodes")
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        ops = ",".join(letters[u] + letters[v] for u, v in self.edges)
        return ops + "->" + "".join(letters[m] for m in self.marked)

    def __repr__(self) -> str:
        marked = f", marked={self.marked}" if self.marked else ""
        directed = ", directed=True" if self.directed else ""
        edges = "[" + ", ".join(f"({u}, {v})" for u, v in self.edges) + "]"
        return f"Multigraph({self.num_nodes}, {edges}{marked}{directed})"

    def draw(self, ax=None, *, node_size: float = 300.0):
        """Draw with matplotlib: marks are colored (``a`` red, ``b`` blue),
        parallel edges are arcs and loops small circles. Returns the axes."""
        import math

        import matplotlib.pyplot as plt
        from matplotlib.patches import Circle, FancyArrowPatch

        if ax is None:
            _, ax = plt.subplots(figsize=(2.2, 2.2))
        n = max(self.num_nodes, 1)
        pos = {v: (math.cos(2 * math.pi * v / n + math.pi / 2), math.sin(2 * math.pi * v / n + math.pi / 2))
               for v in range(self.num_nodes)}
        seen: Counter = Counter()
        for u, v in self.edges:
            k = seen[(u, v)]
            seen[(u, v)] += 1
            if u == v:
                x, y = pos[u]
                r = 0.18 + 0.08 * k
                ax.add_patch(Circle((x * (1 + r), y * (1 + r)), r, fill=False, lw=1.2))
                continue
            rad = 0.0 if k == 0 else (0.25 * ((k + 1) // 2) * (1 if k % 2 else -1))
            ax.add_patch(FancyArrowPatch(pos[u], pos[v], connectionstyle=f"arc3,rad={rad}",
                                         arrowstyle="-|>" if self.directed else "-",
                                         mutation_scale=10, lw=1.2, shrinkA=6, shrinkB=6))
        colors = ["tab:red", "tab:blue"]
        for v, (x, y) in pos.items():
            c = colors[self.marked.index(v)] if v in self.marked else "lightgray"
            ax.scatter([x], [y], s=node_size, c=c, edgecolors="black", zorder=3)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"d={self.degree}", fontsize=8)
        return ax

"""Generators of graph pairs that Weisfeiler-Leman tests find hard.

All generators return plain :class:`networkx.Graph` objects on nodes
``0..n-1`` (use :func:`to_data` for PyG). Families:

* :func:`csl_graph` -- circular skip-link graphs (4-regular, 1-WL-equivalent
  for equal ``n``);
* :func:`cfi_pair` -- Cai-Fürer-Immerman graphs over a base graph, untwisted
  and twisted. ``k``-dimensional (folklore) WL separates them if and only if
  ``k >= treewidth(base)`` (Cai-Fürer-Immerman 1992; Dawar-Richerby 2007;
  Roberson 2022), so over a cycle they defeat 1-WL only, over ``K4`` they
  also defeat 2-FWL;
* :func:`rook_graph` / :func:`shrikhande_graph` -- both SRG(16, 6, 2, 2),
  indistinguishable by 2-FWL;
* :func:`classic_pairs` -- the small 1-WL-hard pairs every paper shows;
* :func:`random_regular_pair` -- two non-isomorphic ``d``-regular graphs
  (1-WL-equivalent by regularity).

Example:
    >>> from graphequi.expressivity import wl_equivalent
    >>> g, h = cfi_pair(nx.cycle_graph(4))
    >>> wl_equivalent(g, h, k=1), wl_equivalent(g, h, k=2)
    (True, False)
"""
from __future__ import annotations

import itertools
from typing import Optional

import networkx as nx
import numpy as np

from ._graphs import GraphPair, to_data

__all__ = [
    "CSL_SKIPS",
    "csl_graph",
    "cfi_pair",
    "rook_graph",
    "shrikhande_graph",
    "classic_pairs",
    "random_regular_pair",
    "to_data",
]

#: The 10 skip lengths of the CSL benchmark (Murphy et al. 2019), with n = 41.
CSL_SKIPS = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)


def csl_graph(n: int, skip: int) -> nx.Graph:
    """Circular skip-link graph: the cycle ``0..n-1`` plus chords
    ``i -- i + skip (mod n)``.

    Args:
        n: number of nodes (at least 3).
        skip: chord length, ``2 <= skip <= n - 2`` (``1`` and ``n - 1``
            would only double the cycle edges).

    Example:
        >>> g = csl_graph(41, 2)
        >>> g.number_of_nodes(), sorted({d for _, d in g.degree()})
        (41, [4])
    """
    if n < 3:
        raise ValueError(f"CSL graphs need n >= 3 nodes, got {n}")
    if not 2 <= skip <= n - 2:
        raise ValueError(f"skip must satisfy 2 <= skip <= n - 2 = {n - 2}, got {skip}")
    g = nx.cycle_graph(n)
    g.add_edges_from((i, (i + skip) % n) for i in range(n))
    g.graph["name"] = f"CSL({n},{skip})"
    return g


def cfi_pair(base: nx.Graph, colored: bool = False) -> tuple[nx.Graph, nx.Graph]:
    """Cai-Fürer-Immerman graphs ``X(base)`` and its twisted version.

    Each base vertex ``v`` with incident edges ``E(v)`` becomes a gadget:
    inner nodes ``a(v, S)`` for the even subsets ``S`` of ``E(v)`` and outer
    nodes ``b(v, e, 0), b(v, e, 1)`` per incident edge, with
    ``a(v, S) -- b(v, e, [e in S])``. For every base edge ``e = uv`` the outer
    nodes are joined ``b(u, e, x) -- b(v, e, x)``; the twisted graph crosses
    the two connections of one edge (``x -- 1 - x``). For a connected base the
    two graphs are non-isomorphic, and ``k``-dimensional (folklore) WL tells
    them apart iff ``k >= treewidth(base)``.

    Args:
        base: a connected networkx graph with at least one edge.
        colored: when True each node gets the attribute ``"color"``
            ``(index of its base vertex, 0 for inner / 1 for outer)``, the
            colored variant of the original construction. The attribute
            ``"gadget"`` (base vertex) is always set.

    Returns:
        ``(untwisted, twisted)`` graphs on nodes ``0..N-1`` with
        ``N = sum_v (2^(deg v - 1) + 2 deg v)`` (isolated base vertices
        excluded by connectivity).
    """
    if not isinstance(base, nx.Graph) or base.is_directed() or base.is_multigraph():
        raise TypeError("base must be an undirected simple networkx.Graph")
    if base.number_of_edges() == 0:
        raise ValueError("base graph needs at least one edge")
    if not nx.is_connected(base):
        raise ValueError("base graph must be connected (the twist of a disconnected base "
                         "is only defined per component)")
    if nx.number_of_selfloops(base):
        raise ValueError("base graph must not have self-loops")
    vertices = list(base.nodes())
    vindex = {v: i for i, v in enumerate(vertices)}
    edges = sorted(tuple(sorted((vindex[u], vindex[v]))) for u, v in base.edges())
    twist_edge = edges[0]

    def build(twisted: bool) -> nx.Graph:
        g = nx.Graph()
        for vi in range(len(vertices)):
            incident = [e for e in edges if vi in e]
            for e in incident:
                for x in (0, 1):
                    g.add_node(("b", vi, e, x), gadget=vertices[vi], kind=1)
            for size in range(0, len(incident) + 1, 2):
                for subset in itertools.combinations(incident, size):
                    a = ("a", vi, subset)
                    g.add_node(a, gadget=vertices[vi], kind=0)
                    for e in incident:
                        g.add_edge(a, ("b", vi, e, int(e in subset)))
        for e in edges:
            u, v = e
            flip = twisted and e == twist_edge
            for x in (0, 1):
                g.add_edge(("b", u, e, x), ("b", v, e, x ^ int(flip)))
        g = nx.convert_node_labels_to_integers(g, ordering="sorted")
        for node, attrs in g.nodes(data=True):
            if colored:
                attrs["color"] = (vindex[attrs["gadget"]], attrs["kind"])
            del attrs["kind"]
        g.graph["name"] = f"CFI{'~' if twisted else ''}({base.graph.get('name', 'base')})"
        return g

    return build(False), build(True)


def rook_graph(m: int = 4) -> nx.Graph:
    """The ``m x m`` rook's graph (``K_m x K_m``); for ``m = 4`` it is
    SRG(16, 6, 2, 2), co-spectral and 2-FWL-equivalent to the Shrikhande graph.

    Example:
        >>> rook_graph(4).number_of_edges()
        48
    """
    if m < 2:
        raise ValueError(f"rook's graph needs m >= 2, got {m}")
    g = nx.Graph()
    cells = list(itertools.product(range(m), repeat=2))
    g.add_nodes_from(range(m * m))
    for (a, b), (c, d) in itertools.combinations(cells, 2):
        if (a == c) != (b == d):
            g.add_edge(a * m + b, c * m + d)
    g.graph["name"] = f"rook{m}x{m}"
    return g


def shrikhande_graph() -> nx.Graph:
    """The Shrikhande graph: Cayley graph of ``Z4 x Z4`` with connection set
    ``{+-(1,0), +-(0,1), +-(1,1)}``; SRG(16, 6, 2, 2)."""
    g = nx.Graph()
    g.add_nodes_from(range(16))
    steps = [(1, 0), (3, 0), (0, 1), (0, 3), (1, 1), (3, 3)]
    for a, b in itertools.product(range(4), repeat=2):
        for da, db in steps:
            g.add_edge(a * 4 + b, ((a + da) % 4) * 4 + (b + db) % 4)
    g.graph["name"] = "shrikhande"
    return g


def _decalin() -> nx.Graph:
    # Two hexagons sharing the bond 0-5.
    g = nx.cycle_graph(6)
    nx.add_path(g, [5, 6, 7, 8, 9, 0])
    return g


def _bicyclopentyl() -> nx.Graph:
    # Two pentagons joined by the bond 0-5.
    g = nx.disjoint_union(nx.cycle_graph(5), nx.cycle_graph(5))
    g.add_edge(0, 5)
    return g


def classic_pairs() -> list[GraphPair]:
    """Small non-isomorphic pairs that 1-WL cannot separate.

    * ``two_triangles/hexagon`` (2-FWL separates: triangle counts);
    * ``decalin/bicyclopentyl`` (2-FWL separates: cycle lengths);
    * ``K33/prism`` (3-regular on 6 nodes; 2-FWL separates: triangles);
    * ``C4+C4/C8`` (2-FWL separates: connectivity);
    * ``rook4x4/shrikhande`` (2-FWL fails: both SRG(16, 6, 2, 2)).

    Category ``"classic"``; ``name`` as above.
    """
    two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    prism = nx.circular_ladder_graph(3)
    pairs = [
        ("two_triangles/hexagon", two_triangles, nx.cycle_graph(6)),
        ("decalin/bicyclopentyl", _decalin(), _bicyclopentyl()),
        ("K33/prism", nx.complete_bipartite_graph(3, 3), prism),
        ("C4+C4/C8", nx.disjoint_union(nx.cycle_graph(4), nx.cycle_graph(4)), nx.cycle_graph(8)),
        ("rook4x4/shrikhande", rook_graph(4), shrikhande_graph()),
    ]
    out = []
    for name, g, h in pairs:
        g = nx.convert_node_labels_to_integers(nx.Graph(g))
        h = nx.convert_node_labels_to_integers(nx.Graph(h))
        out.append(GraphPair(g, h, "classic", name))
    return out


def random_regular_pair(n: int, d: int, seed: int = 0, connected: bool = True,
                        max_tries: int = 100) -> tuple[nx.Graph, nx.Graph]:
    """Two non-isomorphic random ``d``-regular graphs on ``n`` nodes.

    Regularity makes them 1-WL-equivalent; whether 2-FWL separates them
    depends on the draw (it usually does). Deterministic in ``seed``.

    Raises:
        ValueError: ``n * d`` odd, ``d >= n``, or no non-isomorphic
            (connected) pair found in ``max_tries`` draws.
    """
    if d < 0 or d >= n or (n * d) % 2:
        raise ValueError(f"no {d}-regular graph on {n} nodes (need 0 <= d < n and n*d even)")
    rng = np.random.default_rng(seed)

    def draw() -> Optional[nx.Graph]:
        g = nx.random_regular_graph(d, n, seed=int(rng.integers(2 ** 31)))
        return g if not connected or nx.is_connected(g) else None

    first = None
    for _ in range(max_tries):
        g = draw()
        if g is None:
            continue
        if first is None:
            first = g
        elif not nx.is_isomorphic(first, g):
            return (nx.convert_node_labels_to_integers(first),
                    nx.convert_node_labels_to_integers(g))
    raise ValueError(f"found no non-isomorphic pair of {'connected ' if connected else ''}"
                     f"{d}-regular graphs on {n} nodes in {max_tries} draws")

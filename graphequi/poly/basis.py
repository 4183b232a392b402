r"""Enumeration of polynomial bases: all multigraphs of a given degree.

:func:`basis` grows multigraphs one edge at a time, starting from the marked
nodes alone: every multigraph with ``d`` edges and no isolated unmarked node
arises by adding one edge (touching zero, one or two new nodes) to one with
``d - 1`` edges (remove any edge, then drop the unmarked nodes it isolated).
Deduplicating by canonical form at each level keeps each level as small as
the basis itself, instead of enumerating all edge multisets.
"""
from __future__ import annotations

import functools
from typing import Iterator

from .multigraph import Multigraph, _components

__all__ = ["basis"]


def _extensions(g: Multigraph, loops: bool, allow_two_new: bool) -> Iterator[Multigraph]:
    n = g.num_nodes
    edges = list(g.edges)
    orientations = (lambda u, v: ((u, v), (v, u))) if g.directed else (lambda u, v: ((u, v),))
    for u in range(n):
        for v in range(u if loops else u + 1, n):
            for e in (orientations(u, v) if u != v else ((u, u),)):
                yield Multigraph(n, edges + [e], g.marked, g.directed)
    for u in range(n):  # an edge to one new node
        for e in orientations(u, n):
            yield Multigraph(n + 1, edges + [e], g.marked, g.directed)
    if loops:  # a loop on a new node
        yield Multigraph(n + 1, edges + [(n, n)], g.marked, g.directed)
    if allow_two_new:
        yield Multigraph(n + 2, edges + [(n, n + 1)], g.marked, g.directed)


@functools.lru_cache(maxsize=None)
def basis(degree: int, marks: int = 0, *, directed: bool = False, loops: bool = True,
          connected: bool = False) -> tuple[Multigraph, ...]:
    r"""All pairwise non-isomorphic multigraphs with exactly ``degree`` edges,
    ``marks`` marked nodes and no isolated unmarked node.

    Their polynomials :math:`P_H` (see :class:`Multigraph`) form a basis of
    the permutation-invariant (``marks=0``), node-equivariant (``marks=1``)
    or pair-equivariant (``marks=2``) homogeneous polynomials of degree
    ``degree`` in the entries of :math:`X \in \mathbb{R}^{n \times n}`
    (for ``n`` at least the number of nodes).

    Args:
        degree: number of edges ``d >= 0``.
        marks: 0, 1 or 2 marked nodes.
        directed: directed edges (general ``X``) or undirected (symmetric ``X``).
        loops: allow self-loops (they read the diagonal of ``X``).
        connected: keep only connected multigraphs (marks included).

    Returns:
        A tuple sorted by canonical key (deterministic across runs), cached.

    Example:
        >>> [len(basis(1, m, directed=True)) for m in (0, 1, 2)]
        [2, 5, 10]
        >>> connected = basis(3, 0, loops=False, connected=True)
        >>> len(connected), sum(g.is_simple() for g in connected)  # simple: triangle, path, star
        (5, 3)
    """
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    if marks not in (0, 1, 2):
        raise ValueError(f"marks must be 0, 1 or 2, got {marks!r}")
    level = {Multigraph(marks, (), tuple(range(marks)), directed)}
    for step in range(degree):
        remaining = degree - step - 1
        nxt: dict[tuple, Multigraph] = {}
        for g in level:
            for h in _extensions(g, loops, allow_two_new=True):
                if connected and len(_components(h.num_nodes, h.edges)) - 1 > remaining:
                    continue
                key = h.key()
                if key not in nxt:
                    nxt[key] = h.canonical()
        level = list(nxt.values())
    out = list(level)
    if connected:
        out = [g for g in out if g.is_connected()]
    return tuple(sorted(out, key=Multigraph.key))

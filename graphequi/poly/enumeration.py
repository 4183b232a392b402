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


from .multigraph import Multigraph, canonical_labeling

__all__ = ["basis"]


def _children(n: int, edges: tuple, comp: tuple, directed: bool, loops: bool):
    """All one-edge extensions of a raw multigraph, with their component
    labels: ``(num_nodes, edges, comp, num_components)``."""
    ncomp = len(set(comp))

    def add(e, new_nodes, new_comp):
        u, v = e
        if not directed and u > v:
            e = (v, u)
        return n + new_nodes, tuple(sorted(edges + (e,))), new_comp

    for u in range(n):
        for v in range(u if loops else u + 1, n):
            if comp[u] == comp[v]:
                merged = comp
            else:
                merged = tuple(comp[u] if c == comp[v] else c for c in comp)
            pairs = ((u, v), (v, u)) if directed and u != v else ((u, v),)
            for e in pairs:
                yield add(e, 0, merged)
    for u in range(n):  # an edge to one new node
        for e in (((u, n), (n, u)) if directed else ((u, n),)):
            yield add(e, 1, comp + (comp[u],))
    fresh = max(comp, default=-1) + 1
    if loops:  # a loop on a new node
        yield add((n, n), 1, comp + (fresh,))
    yield add((n, n + 1), 2, comp + (fresh, fresh))


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
    # Raw entries (num_nodes, edges, component label per node, marks), one per class.
    level: list[tuple[int, tuple, tuple, tuple]] = [(marks, (), tuple(range(marks)), tuple(range(marks)))]
    certs: list = [None]
    for step in range(degree):
        remaining = degree - step - 1
        nxt: dict[tuple, tuple[int, tuple, tuple, tuple]] = {}
        for n, edges, comp, marked in level:
            for child_n, child_edges, child_comp in _children(n, edges, comp, directed, loops):
                if connected and len(set(child_comp)) - 1 > remaining:
                    continue
                colors = [2] * child_n
                for i, m in enumerate(marked):
                    colors[m] = i
                cert, labels = canonical_labeling(child_n, child_edges, tuple(colors), directed)
                if cert in nxt:
                    continue
                relabeled = [(labels[u], labels[v]) for u, v in child_edges]
                if not directed:
                    relabeled = [(min(e), max(e)) for e in relabeled]
                canon_comp = [0] * child_n
                for v, c in enumerate(child_comp):
                    canon_comp[labels[v]] = c
                nxt[cert] = (child_n, tuple(sorted(relabeled)), tuple(canon_comp),
                             tuple(labels[m] for m in marked))
        certs = list(nxt)
        level = list(nxt.values())
    out = []
    for cert, (n, edges, comp, marked) in zip(certs, level):
        if connected and len(set(comp)) > 1:
            continue
        g = Multigraph(n, edges, marked, directed)
        if cert is not None:  # the class key is already known
            object.__setattr__(g, "_key", (directed, marks, cert))
        out.append(g)
    return tuple(sorted(out, key=Multigraph.key))

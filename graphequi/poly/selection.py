r"""Named polynomial sets, e.g. the extra input features of PPGN++.

``select('ppgn++', max_degree=6)``
-----------------------------------
PPGN++ (Puny, Lim, Kiani, Maron, Lipman, *Equivariant Polynomials for Graph
Neural Networks*, ICML 2023) adds to a PPGN (2-FWL-equivalent) network
polynomial features that it cannot compute on its own. The paper decides
whether a model can compute :math:`P_H` by searching for a sequence of
tensor contractions the model can perform. For PPGN, whose operations are
sums over one index, matrix products :math:`(XY)_{uv} = \sum_w X_{uw}
Y_{wv}` and Hadamard products, this comes down to the *elimination rule*
(the paper's PPGN bank, Sec. 4):

    repeatedly delete an unmarked node with at most one neighbor, or an
    unmarked node with exactly two neighbors after joining those two
    neighbors by an edge.

:math:`P_H` counts as PPGN-computable iff this removes every unmarked node.
Deleting a degree-1 node is a sum over one index; deleting a degree-2 node
is a matrix product followed by a Hadamard product with whatever already
joins the two neighbors. That is why neighbors are counted without
multiplicity here. For unmarked graphs the rule removes everything exactly
when the treewidth is at most 2, i.e. there is no :math:`K_4` minor (this is
tested).

The selection runs over connected simple undirected multigraphs with 0, 1 or
2 marks: the invariant, node-level and pair-level polynomials that PPGN++
takes as inputs. Simple graphs are all that matters for a 0/1 adjacency
matrix with an empty diagonal, where loops vanish and parallel edges
collapse. Up to degree 6 the rule selects 12 polynomials. One has degree 5:
the diamond :math:`K_4 - e`, marked on the two ends of its missing edge. The
other 11 have degree 6: :math:`K_4` with 0, 1 and 2 marks, and 8 more
pair-level ones on 5 nodes (1 + 11, as in Puny et al. 2023).
"""
from __future__ import annotations

import functools
from typing import Optional

from .enumeration import basis
from .multigraph import Multigraph

__all__ = ["select", "ppgn_computable", "ppgn_elimination", "PPGN_ELIMINATIONS"]

# The contraction that sums out an unmarked node with 0, 1 or 2 distinct
# neighbors: global readout, row sum, matrix product (then a Hadamard product
# with whatever joins the two neighbors). The ``'ppgn'`` contraction bank of
# graphequi.expressivity is built from this table.
PPGN_ELIMINATIONS = ("readout", "row_sum", "matmul")


def ppgn_elimination(num_neighbors: int) -> Optional[str]:
    """The PPGN contraction summing out an unmarked node with
    ``num_neighbors`` distinct neighbors, or ``None`` when PPGN has none.

    Example:
        >>> ppgn_elimination(2), ppgn_elimination(3)
        ('matmul', None)
    """
    return PPGN_ELIMINATIONS[num_neighbors] if num_neighbors < len(PPGN_ELIMINATIONS) else None


def ppgn_computable(graph: Multigraph) -> bool:
    """Whether the elimination rule above removes every unmarked node.

    Example:
        >>> k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
        >>> ppgn_computable(k4), ppgn_computable(Multigraph(3, [(0, 1), (1, 2), (2, 0)]))
        (False, True)
    """
    neighbors: dict[int, set[int]] = {v: set() for v in range(graph.num_nodes)}
    for u, v in graph.edges:
        if u != v:
            neighbors[u].add(v)
            neighbors[v].add(u)
    marked = set(graph.marked)
    progress = True
    while progress:
        progress = False
        for v in sorted(neighbors):
            if v in marked or ppgn_elimination(len(neighbors[v])) is None:
                continue
            near = neighbors.pop(v)
            for u in near:
                neighbors[u].discard(v)
            if len(near) == 2:
                a, b = near
                neighbors[a].add(b)
                neighbors[b].add(a)
            progress = True
    return set(neighbors) <= marked


@functools.lru_cache(maxsize=None)
def select(name: str, max_degree: int = 6) -> tuple[Multigraph, ...]:
    """A named set of polynomials, sorted by (degree, number of marks, key).

    Args:
        name: ``'ppgn++'``: the connected simple undirected multigraphs with
            0, 1 or 2 marks and degree ``<= max_degree`` that PPGN cannot
            compute (see the module docstring for the rule and its source).
        max_degree: largest degree.

    Example:
        >>> ppgn = select('ppgn++', max_degree=6)
        >>> len(ppgn), [g.degree for g in ppgn].count(5)
        (12, 1)
    """
    if name.lower() not in ("ppgn++", "ppgnpp"):
        raise ValueError(f"unknown polynomial set {name!r}; available: 'ppgn++'")
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 0:
        raise ValueError(f"max_degree must be a non-negative int, got {max_degree!r}")
    out = []
    for degree in range(max_degree + 1):
        for marks in (0, 1, 2):
            for g in basis(degree, marks, loops=False, connected=True):
                if g.is_simple() and not ppgn_computable(g):
                    out.append(g)
    return tuple(sorted(out, key=lambda g: (g.degree, g.num_marks, g.key())))

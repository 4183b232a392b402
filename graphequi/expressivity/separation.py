r"""Which polynomials separate given graph pairs, computed numerically.

The empirical counterpart of the symbolic analysis: where
:func:`~graphequi.expressivity.certify` says which polynomials a bank
computes, :func:`separating_polynomials` evaluates polynomials on the 0/1
adjacency matrices of concrete pairs (``graphequi.poly.evaluate``) and
reports which ones tell the two graphs apart.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from graphequi.poly import Multigraph

__all__ = ["separating_polynomials"]


def separating_polynomials(pairs, polys: Sequence[Multigraph], *, chunk: int = 4) -> dict:
    """Which polynomials tell the graphs of each pair apart.

    A polynomial separates ``(G, H)`` when its values on the 0/1 adjacency
    matrices differ as multisets: the scalar for invariants, the multiset over
    nodes (one mark) or over ordered node pairs (two marks). Arithmetic is
    float64 on integer counts, so it is exact for counts below ``2**53``.

    Args:
        pairs: :class:`~graphequi.expressivity.GraphPair` objects (keyed by
            ``name``) or ``(G, H)`` tuples of networkx graphs (keyed by index).
        polys: multigraphs with any number of marks (evaluated per mark count).
        chunk: graphs per evaluation batch; all graphs are padded to one size
            so that one contraction plan per mark count serves every chunk.

    Returns:
        ``{pair key: set of separating polynomials}``.

    Example:
        >>> import networkx as nx
        >>> pair = (nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)), nx.cycle_graph(6))
        >>> tri, edge = Multigraph(3, [(0, 1), (1, 2), (2, 0)]), Multigraph(2, [(0, 1)])
        >>> separating_polynomials([pair], [tri, edge]) == {0: {tri}}
        True
    """
    import networkx as nx
    import torch

    from graphequi.poly import evaluate

    keys, graphs = [], []
    for i, pair in enumerate(pairs):
        first, second = tuple(pair)
        keys.append(getattr(pair, "name", None) or i)
        graphs += [first, second]
    if not graphs:
        raise ValueError("no pairs given")
    n = max(g.number_of_nodes() for g in graphs)
    X = torch.zeros(len(graphs), n, n, dtype=torch.float64)
    mask = torch.zeros(len(graphs), n, dtype=torch.bool)
    sizes = []
    for i, g in enumerate(graphs):
        m = g.number_of_nodes()
        X[i, :m, :m] = torch.from_numpy(nx.to_numpy_array(g, nodelist=list(g.nodes()), weight=None))
        mask[i, :m] = True
        sizes.append(m)
    out = {k: set() for k in keys}
    by_marks: dict[int, list[Multigraph]] = {}
    for p in polys:
        by_marks.setdefault(p.num_marks, []).append(p)
    for marks, group in by_marks.items():
        multisets = []
        for start in range(0, len(graphs), chunk):
            values = evaluate(group, X[start:start + chunk], mask=mask[start:start + chunk]).numpy()
            for j, v in enumerate(values):
                m = sizes[start + j]
                v = v if marks == 0 else v[:m] if marks == 1 else v[:m, :m].reshape(m * m, -1)
                multisets.append(np.sort(v.reshape(-1, len(group)), axis=0))
        for i, key in enumerate(keys):
            a, b = multisets[2 * i], multisets[2 * i + 1]
            if a.shape != b.shape:  # different sizes: node/pair multisets differ in size
                out[key] |= set(group)
                continue
            differ = ~np.isclose(a, b, rtol=1e-12, atol=0.5).all(axis=0)
            out[key] |= {group[k] for k in np.flatnonzero(differ)}
    return out


r"""Polynomial features as exact initial colors of the WL oracles.

A network that reads equivariant polynomial features (Puny et al., 2023)
starts from a richer coloring than the bare graph. Its WL bound is the
refinement started from those values: 1-WL with the node-level polynomials
:math:`P_H(A)_i` for node models (PolyGIN), 2-FWL with the pair-level ones
:math:`P_H(A)_{ij}` for PPGN++. The values are computed unnormalized in
``float64``, so they are exact integer homomorphism counts and two entries
get the same color exactly when their counts agree.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import torch

from ._graphs import SimpleGraph, as_simple_graph

__all__ = ["with_polynomial_colors"]


def with_polynomial_colors(graph: Any, polys: Union[str, Sequence] = "ppgn++", level: str = "pair",
                           max_degree: int = 6) -> SimpleGraph:
    """``graph`` as a :class:`SimpleGraph` whose initial colors include
    polynomial features.

    Args:
        graph: networkx graph (nodes in ``graph.nodes()`` order) or PyG
            ``Data``.
        polys: ``'ppgn++'`` or a sequence of undirected
            :class:`~graphequi.poly.Multigraph` (as for
            :class:`~graphequi.transforms.PolynomialFeatures`).
        level: ``'pair'`` sets ``pair_features`` ``[n, n, k]`` (for the
            2-FWL oracle), ``'node'`` sets ``features`` ``[n, k]`` (for 1-WL
            or 2-FWL).
        max_degree: degree bound of a named polynomial set.

    Example:
        >>> import networkx as nx
        >>> from graphequi.expressivity import wl_equivalent
        >>> two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
        >>> a = with_polynomial_colors(two_triangles, level="node")
        >>> b = with_polynomial_colors(nx.cycle_graph(6), level="node")
        >>> wl_equivalent(two_triangles, nx.cycle_graph(6), k=1), wl_equivalent(a, b, k=1)
        (True, False)
    """
    from torch_geometric.data import Data

    from graphequi.transforms import PolynomialFeatures

    if level not in ("node", "pair"):
        raise ValueError(f"level must be 'node' or 'pair', got {level!r}")
    simple = graph if isinstance(graph, SimpleGraph) else as_simple_graph(graph)
    n = simple.num_nodes
    e = torch.from_numpy(simple.edges)
    data = Data(edge_index=torch.cat([e, e.flip(0)], dim=1), num_nodes=n)
    transform = PolynomialFeatures(polys, level=level, normalize=False, max_degree=max_degree,
                                   dtype=torch.float64, attr_name="oracle_colors")
    values = transform(data)["oracle_colors"].numpy()
    if level == "node":
        return SimpleGraph(n, simple.edges, np.hstack([simple.features, values]), simple.pair_features)
    pair = values.reshape(n, n, -1)
    if simple.pair_features is not None:
        pair = np.concatenate([simple.pair_features, pair], axis=2)
    return SimpleGraph(n, simple.edges, simple.features, pair)


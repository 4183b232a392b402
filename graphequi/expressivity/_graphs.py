"""Conversion between networkx graphs, PyG ``Data`` and the plain arrays the
expressivity oracles work on.

Every oracle in :mod:`graphequi.expressivity` treats its input as an
*undirected simple graph*: edge directions are forgotten, parallel edges are
merged and self-loops are dropped (CSL, for instance, stores self-loops that
carry no structure). Node features are ignored unless a ``node_attr`` is
named, in which case they become the initial colors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import networkx as nx
import numpy as np
import torch
from torch import Tensor

__all__ = ["GraphPair", "StoredRelabelings", "SimpleGraph", "as_simple_graph", "to_data", "to_networkx"]


@dataclass(frozen=True, eq=False)
class SimpleGraph:
    """An undirected simple graph as arrays.

    Attributes:
        num_nodes: number of nodes ``n`` (at least 1).
        edges: ``int64`` array ``[2, m]`` with each undirected edge once,
            ``edges[0] < edges[1]``, sorted lexicographically.
        features: ``float64`` array ``[n, f]`` of initial node colors
            (``f = 0`` when no node attribute is used).
        pair_features: optional ``float64`` array ``[n, n, q]`` of initial
            colors of the ordered pairs ``(i, j)``, read by the 2-FWL oracle
            only (e.g. polynomial pair channels, see
            :func:`~graphequi.expressivity.with_polynomial_colors`).
    """

    num_nodes: int
    edges: np.ndarray
    features: np.ndarray
    pair_features: Optional[np.ndarray] = None

    def __post_init__(self):
        pf = self.pair_features
        if pf is not None:
            n = self.num_nodes
            if pf.ndim != 3 or pf.shape[:2] != (n, n):
                raise ValueError(f"pair_features must have shape [n, n, q] = [{n}, {n}, q], "
                                 f"got {list(pf.shape)}")
            if not np.isfinite(pf).all():
                raise ValueError("pair_features contain NaN or infinite values")

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[1])

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Neighbor lists as ``(indptr [n+1], indices [2m])``."""
        n = self.num_nodes
        src = np.concatenate([self.edges[0], self.edges[1]])
        dst = np.concatenate([self.edges[1], self.edges[0]])
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        return indptr, dst

    def dense(self) -> np.ndarray:
        """Boolean adjacency matrix ``[n, n]``."""
        adj = np.zeros((self.num_nodes, self.num_nodes), dtype=bool)
        adj[self.edges[0], self.edges[1]] = True
        adj[self.edges[1], self.edges[0]] = True
        return adj


def _canonical_edges(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    keep = src != dst
    lo = np.minimum(src[keep], dst[keep]).astype(np.int64)
    hi = np.maximum(src[keep], dst[keep]).astype(np.int64)
    if lo.size == 0:
        return np.zeros((2, 0), dtype=np.int64)
    codes = np.unique(lo * n + hi)
    return np.stack([codes // n, codes % n])


def _feature_rows(values: list, what: str) -> np.ndarray:
    try:
        rows = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numbers or numeric sequences to serve as "
                        f"initial colors ({exc})") from None
    widths = {r.size for r in rows}
    if len(widths) > 1:
        raise ValueError(f"{what} have different lengths {sorted(widths)}")
    out = np.stack(rows) if rows else np.zeros((0, 0))
    if not np.isfinite(out).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return out + 0.0  # -0.0 -> 0.0, so equal colors have equal bytes


def as_simple_graph(graph: Any, node_attr: Optional[str] = None) -> SimpleGraph:
    """Convert a networkx graph or a PyG ``Data`` to a :class:`SimpleGraph`.

    Args:
        graph: a :class:`networkx.Graph` (any flavour; directions and
            multi-edges are dropped) or a :class:`torch_geometric.data.Data`
            with ``edge_index`` (and ``num_nodes`` when isolated nodes exist).
        node_attr: optional node attribute used as initial color: a networkx
            node attribute name, or a ``Data`` attribute holding a tensor with
            one row per node (e.g. ``"x"``). Rows are compared exactly.

    Raises:
        TypeError: unsupported graph type, non-integer ``edge_index`` or
            non-numeric node attributes.
        ValueError: empty graph, malformed or out-of-range ``edge_index``,
            missing node attribute, NaN features.
    """
    if isinstance(graph, nx.Graph):
        nodes = list(graph.nodes())
        n = len(nodes)
        if n == 0:
            raise ValueError("graph has no nodes")
        index = {v: i for i, v in enumerate(nodes)}
        if graph.number_of_edges():
            pairs = np.array([(index[u], index[v]) for u, v in graph.edges()], dtype=np.int64)
        else:
            pairs = np.zeros((0, 2), dtype=np.int64)
        edges = _canonical_edges(pairs[:, 0], pairs[:, 1], n)
        if node_attr is None:
            feats = np.zeros((n, 0))
        else:
            missing = [v for v in nodes if node_attr not in graph.nodes[v]]
            if missing:
                raise ValueError(f"node attribute {node_attr!r} missing on {len(missing)} "
                                 f"node(s), e.g. {missing[0]!r}")
            feats = _feature_rows([graph.nodes[v][node_attr] for v in nodes],
                                  f"node attribute {node_attr!r} values")
        return SimpleGraph(n, edges, feats)

    edge_index = getattr(graph, "edge_index", None)
    if edge_index is None or not hasattr(graph, "num_nodes"):
        raise TypeError(f"expected a networkx graph or a PyG Data with edge_index, got "
                        f"{type(graph).__name__}")
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"edge_index must have an integer dtype, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    n = graph.num_nodes
    if n is None or int(n) == 0:
        raise ValueError("graph has no nodes (set data.num_nodes)")
    n = int(n)
    ei = edge_index.detach().cpu().numpy().astype(np.int64)
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise ValueError(f"edge_index has entries outside [0, {n}): min {ei.min()}, max {ei.max()}")
    edges = _canonical_edges(ei[0], ei[1], n)
    if node_attr is None:
        feats = np.zeros((n, 0))
    else:
        value = getattr(graph, node_attr, None)
        if not isinstance(value, Tensor):
            raise ValueError(f"Data has no tensor attribute {node_attr!r}")
        if value.size(0) != n:
            raise ValueError(f"Data.{node_attr} has {value.size(0)} rows but the graph has {n} nodes")
        arr = value.detach().cpu().to(torch.float64).reshape(n, -1).numpy()
        feats = _feature_rows(list(arr), f"Data.{node_attr}")
    return SimpleGraph(n, edges, feats)


def to_data(graph: nx.Graph, node_attr: Optional[str] = None) -> "torch_geometric.data.Data":  # noqa: F821
    """A networkx graph as a PyG ``Data`` (undirected: both edge directions).

    Nodes are numbered in ``graph.nodes()`` order. ``x`` holds the node
    attribute ``node_attr`` as float rows when given, else ones ``[n, 1]``
    (BREC's featureless convention). A graph-level ``label`` in
    ``graph.graph`` becomes ``y``.

    Example:
        >>> import networkx as nx
        >>> data = to_data(nx.cycle_graph(4))
        >>> data.num_nodes, data.edge_index.size(1), data.x.shape
        (4, 8, torch.Size([4, 1]))
    """
    from torch_geometric.data import Data

    simple = as_simple_graph(graph, node_attr)
    e = torch.from_numpy(simple.edges)
    edge_index = torch.cat([e, e.flip(0)], dim=1)
    order = torch.argsort(edge_index[0] * simple.num_nodes + edge_index[1])
    edge_index = edge_index[:, order]
    if node_attr is None:
        x = torch.ones(simple.num_nodes, 1)
    else:
        x = torch.from_numpy(simple.features).to(torch.get_default_dtype())
    data = Data(x=x, edge_index=edge_index, num_nodes=simple.num_nodes)
    if "label" in graph.graph:
        data.y = torch.tensor([graph.graph["label"]])
    return data


def to_networkx(graph: Any) -> nx.Graph:
    """A networkx graph or PyG ``Data`` as a plain simple ``nx.Graph`` on
    nodes ``0..n-1`` (features dropped)."""
    simple = as_simple_graph(graph)
    g = nx.Graph()
    g.add_nodes_from(range(simple.num_nodes))
    g.add_edges_from(simple.edges.T.tolist())
    return g


@dataclass(frozen=True, eq=False)
class GraphPair:
    """Two graphs to be told apart, with where they come from.

    Attributes:
        first, second: the graphs (networkx, nodes ``0..n-1`` for loaded and
            generated pairs).
        category: family name used for per-category counts (e.g. BREC's
            ``"Basic"``, ``"CFI"``; ``"EXP"``; ``"CSL"``).
        name: identifier unique within a pair list (e.g. ``"cfi-17"``).
    """

    first: nx.Graph
    second: nx.Graph
    category: str = ""
    name: str = ""

    def __iter__(self):
        return iter((self.first, self.second))

    def __repr__(self) -> str:
        return (f"GraphPair(name={self.name!r}, category={self.category!r}, "
                f"n=({self.first.number_of_nodes()}, {self.second.number_of_nodes()}))")


def graph_signature(graph: nx.Graph) -> tuple[int, int, tuple[int, ...]]:
    """``(nodes, edges, sorted degrees)``: equal for a graph and any relabeling
    of it (a cheap necessary condition, not an isomorphism test)."""
    return graph.number_of_nodes(), graph.number_of_edges(), tuple(sorted(d for _, d in graph.degree()))


@dataclass(frozen=True, eq=False)
class StoredRelabelings:
    """Relabelings of one pair given in advance (BREC's ``brec_v3.npy``), used
    by the BREC protocol instead of drawing its own.

    Attributes:
        pairs: ``2 R`` graphs, relabelings of the pair's first and second
            graph interleaved (``first, second, first, second, ...``), the
            order in which BREC stores them and feeds them to the model.
        reliability: ``2 R`` relabelings of one graph of the pair, compared
            in consecutive pairs by the reliability check.
    """

    pairs: tuple[nx.Graph, ...]
    reliability: tuple[nx.Graph, ...]

    def check(self, pair: GraphPair, num_relabel: int, where: str) -> None:
        """Raise a ``ValueError`` unless both blocks hold ``2 * num_relabel``
        graphs that can be relabelings of ``pair`` (:func:`graph_signature`).

        This catches a misaligned file (another pair's graphs), not a swap of
        the pair's two graphs: BREC's pairs are 1-WL equivalent, so their
        degree sequences agree, and an isomorphism test per stored graph
        would cost more than the protocol on the large CFI pairs."""
        need = 2 * num_relabel
        if len(self.pairs) != need or len(self.reliability) != need:
            raise ValueError(f"{where}: stored relabelings hold {len(self.pairs)} pair graphs and "
                             f"{len(self.reliability)} reliability graphs; num_relabel={num_relabel} "
                             f"needs {need} of each")
        wanted = (graph_signature(pair.first), graph_signature(pair.second))
        for i, graph in enumerate(self.pairs):
            if graph_signature(graph) != wanted[i % 2]:
                role = "first" if i % 2 == 0 else "second"
                raise ValueError(f"{where}: stored graph {i} is not a relabeling of the pair's {role} "
                                 f"graph (node count, edge count or degrees differ)")
        seen = {graph_signature(g) for g in self.reliability}
        if len(seen) != 1 or not seen <= set(wanted):
            raise ValueError(f"{where}: the stored reliability graphs must all relabel one graph of the pair")

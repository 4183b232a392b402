r"""GIN and GINE with equivariant polynomial features: the cheap, sparse way to
add expressivity.

``PolynomialFeatures(level='node')`` writes node-level polynomial values
(e.g. the 12 ``ppgn++`` polynomials, which 2-FWL cannot compute, such as
counts of the cycles through a node) to ``data.poly_x``, and
``level='edge'`` writes their pair-level values on existing edges to
``data.poly_edge_attr``. These models concatenate them to the (embedded) node
and edge features and run PyG's :class:`~torch_geometric.nn.conv.GINConv` /
:class:`~torch_geometric.nn.conv.GINEConv` (Xu et al. 2019; Hu et al. 2020).
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from graphequi import ops
from graphequi.nn._graph import graph_ptr, num_nodes_of
from graphequi.nn.conv import GINConv, GINEConv, is_csr_adjacency
from graphequi.nn.encoders import FeatureEncoder, Vocab, warn_ignored_features
from graphequi.ops.checks import first_empty_graph
from graphequi.poly.keys import POLY_EDGE_KEY, POLY_NODE_KEY

__all__ = ["PolyGIN", "PolyGINE"]


def _gin_mlp(in_channels: int, hidden: int, norm: bool) -> torch.nn.Sequential:
    layers = [torch.nn.Linear(in_channels, 2 * hidden)]
    if norm:
        layers.append(torch.nn.BatchNorm1d(2 * hidden))
    layers += [torch.nn.ReLU(), torch.nn.Linear(2 * hidden, hidden)]
    return torch.nn.Sequential(*layers)


class PolyGIN(torch.nn.Module):
    r"""GIN with polynomial node features concatenated to the input.

    .. math::
        h_v^{(0)} &= [\,\mathrm{enc}(x_v) \,\|\, p_v\,], \qquad p_v = \texttt{data.poly\_x}[v] \\
        h_v^{(\ell+1)} &= \mathrm{ReLU}\Big(\mathrm{BN}\big(
            \mathrm{MLP}^{(\ell)}\big((1 + \epsilon^{(\ell)}) h_v^{(\ell)}
            + \textstyle\sum_{u \in \mathcal{N}(v)} h_u^{(\ell)}\big)\big)\Big) \\
        y &= \mathrm{Lin}\Big(\mathrm{pool}_{v}\, h_v^{(L)}\Big)

    (no ReLU after the last layer, as in the OGB GIN baseline; dropout after
    every layer). The output is invariant to relabeling the nodes of each graph.

    Args:
        out_channels (int): number of graph-level outputs.
        hidden_channels (int): width :math:`d`.
        num_layers (int): number of GIN layers :math:`L`.
        node_vocab (int or sequence of int, optional): type counts of integer
            columns of ``data.x``; or
        node_in_channels (int, optional): width of real ``data.x``. With
            neither, ``data.x`` is ignored (structure and polynomials only).
        poly_channels (int): width :math:`k` of ``data.poly_x`` (0: none).
        dropout (float): dropout rate.
        pool (str): ``'mean'`` or ``'sum'``.
        norm (bool): batch norm inside and after each GIN MLP.
        train_eps (bool): learn :math:`\epsilon`.
        aggr (str or callable): neighborhood aggregation, ``'sum'`` (GIN),
            ``'mean'``, ``'max'`` or ``'min'``; or a factory
            ``aggr(channels) -> Aggregation`` called once per layer with the
            width of that layer's input (each layer gets its own module, e.g.
            ``LCMAggregation.square(cell='gru')``). A factory's aggregation runs
            on ``edge_index`` (never fused).
        fused (bool): GIN only: build the batch's target-major CSR adjacency
            once per forward (a stable sort of ``edge_index`` by target) and
            aggregate every layer with :func:`graphequi.ops.spmm`, without
            ``[E, F]`` messages. A batch that carries ``adj_t`` (a
            ``torch.sparse_csr``, ``EdgeIndex``, ``SparseTensor`` or
            :class:`graphequi.ops.CSR`) is used as it is.

    Shapes:
        - input: a PyG ``Batch``/``Data`` with ``edge_index`` ``[2, E]``,
          optional ``x`` ``[N, *]``, ``poly_x`` ``[N, k]``, optional ``adj_t``.
        - output: ``[B, out_channels]``.

    Example:
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.tensor([[0], [1], [1]]), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...          poly_x=torch.rand(3, 2))
        >>> PolyGIN(1, hidden_channels=8, num_layers=2, node_vocab=2, poly_channels=2).eval()(g).shape
        torch.Size([1, 1])
    """

    uses_edge_features = False

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int = 300,
        num_layers: int = 5,
        *,
        node_vocab: Optional[Vocab] = None,
        node_in_channels: Optional[int] = None,
        poly_channels: int = 0,
        dropout: float = 0.5,
        pool: str = "mean",
        norm: bool = True,
        train_eps: bool = False,
        edge_vocab: Optional[Vocab] = None,
        edge_in_channels: Optional[int] = None,
        poly_edge_channels: int = 0,
        aggr: Union[str, Callable[[int], torch.nn.Module]] = "sum",
        fused: bool = True,
    ):
        super().__init__()
        if pool not in ("mean", "sum"):
            raise ValueError(f"pool must be 'mean' or 'sum', got {pool!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not self.uses_edge_features and (edge_vocab is not None or edge_in_channels is not None
                                            or poly_edge_channels):
            raise ValueError("PolyGIN ignores edge features; use PolyGINE for edge_vocab / "
                             "edge_in_channels / poly_edge_channels")
        self.out_channels, self.hidden_channels, self.num_layers = out_channels, hidden_channels, num_layers
        self.poly_channels = int(poly_channels)
        self.poly_edge_channels = int(poly_edge_channels)
        self.dropout, self.pool = dropout, pool
        if isinstance(aggr, torch.nn.Module) or not (isinstance(aggr, str) or callable(aggr)):
            raise TypeError(f"aggr must be a name or a factory channels -> Aggregation (each layer needs "
                            f"its own module), got {type(aggr).__name__}")
        self.aggr = aggr if isinstance(aggr, str) else repr(aggr)
        self._fusable = isinstance(aggr, str)
        self.fused = fused and not self.uses_edge_features and self._fusable
        self.node_encoder = (FeatureEncoder(hidden_channels, vocab=node_vocab, in_channels=node_in_channels,
                                            name="node features (data.x)")
                             if node_vocab is not None or node_in_channels is not None else None)
        in_channels = (hidden_channels if self.node_encoder is not None else 1) + self.poly_channels
        self.in_channels = in_channels
        edge_dim = None
        if self.uses_edge_features:
            self.edge_encoder = (FeatureEncoder(hidden_channels, vocab=edge_vocab, in_channels=edge_in_channels,
                                                name="edge features (data.edge_attr)")
                                 if edge_vocab is not None or edge_in_channels is not None else None)
            edge_dim = (hidden_channels if self.edge_encoder is not None else 0) + self.poly_edge_channels
            if edge_dim == 0:
                raise ValueError("PolyGINE needs edge features: give edge_vocab, edge_in_channels "
                                 "or poly_edge_channels (or use PolyGIN)")
        self.edge_dim = edge_dim
        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for i in range(num_layers):
            width = in_channels if i == 0 else hidden_channels
            mlp = _gin_mlp(width, hidden_channels, norm)
            layer_aggr = aggr if isinstance(aggr, str) else aggr(width)
            if self.uses_edge_features:
                conv = GINEConv(mlp, train_eps=train_eps, edge_dim=edge_dim, aggr=layer_aggr)
            else:
                conv = GINConv(mlp, train_eps=train_eps, aggr=layer_aggr)
            self.convs.append(conv)
            self.norms.append(torch.nn.BatchNorm1d(hidden_channels) if norm else torch.nn.Identity())
        self.head = torch.nn.Linear(hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _node_input(self, data, num_nodes: int) -> Tensor:
        parts = []
        if self.node_encoder is not None:
            if getattr(data, "x", None) is None:
                raise ValueError("the model was built with node features but `data.x` is missing")
            parts.append(self.node_encoder(data.x))
        else:
            parts.append(torch.ones(num_nodes, 1, device=data.edge_index.device,
                                    dtype=self.head.weight.dtype))
        if self.poly_channels:
            parts.append(self._poly(data, POLY_NODE_KEY, num_nodes, self.poly_channels, "level='node'"))
        return torch.cat(parts, dim=-1)

    def _poly(self, data, key: str, rows: int, channels: int, level: str) -> Tensor:
        p = getattr(data, key, None)
        if p is None:
            raise ValueError(f"the model expects {channels} polynomial channels in `data.{key}`; "
                             f"apply PolynomialFeatures({level})")
        if p.dim() == 1:
            p = p.unsqueeze(-1)
        if p.dim() != 2 or p.size(0) != rows or p.size(1) != channels:
            raise ValueError(f"`data.{key}` has shape {list(p.shape)}, expected [{rows}, {channels}]")
        return p.to(self.head.weight.dtype)

    def _edge_input(self, data) -> Optional[Tensor]:
        return None

    def _adjacency(self, data, edge_index: Tensor, num_nodes: int):
        adj_t = getattr(data, "adj_t", None)
        if adj_t is not None and is_csr_adjacency(adj_t) and self._fusable:
            return adj_t if isinstance(adj_t, ops.CSR) else ops.to_csr(adj_t, num_nodes)
        if self.fused:
            # one CSR and its transpose for every layer, forward and backward; a compiled
            # model trusts its input (validated where it entered), eager mode checks it
            return ops.to_csr(edge_index, num_nodes, validate=not torch.compiler.is_compiling())
        return edge_index

    def forward(self, data) -> Tensor:
        edge_index = data.edge_index
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError("expected `edge_index` of shape [2, E]")
        if edge_index.is_floating_point():
            raise TypeError(f"edge_index must be an integer tensor, got {edge_index.dtype}")
        num_nodes = num_nodes_of(data)
        if not num_nodes:
            raise ValueError(f"{type(self).__name__} got a graph with 0 nodes; a graph-level "
                             "prediction needs at least one node per graph")
        ptr = graph_ptr(data, num_nodes, edge_index.device)
        if not torch.compiler.is_compiling() and ptr.numel() > 2:
            # eager only (a compiled model trusts its validated input): an empty graph of
            # a batch would otherwise get the pooling of zero nodes as its prediction
            empty = first_empty_graph(ptr)
            if empty is not None:
                raise ValueError(f"{type(self).__name__} got an empty graph (0 nodes) at position "
                                 f"{empty} of the batch; a graph-level prediction needs at "
                                 "least one node per graph")
        warn_ignored_features(self, data, {"x": self.node_encoder, **(
            {"edge_attr": self.edge_encoder} if self.uses_edge_features else {})})
        h = self._node_input(data, num_nodes)
        e = self._edge_input(data)
        adj = edge_index if e is not None else self._adjacency(data, edge_index, num_nodes)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h, adj) if e is None else conv(h, adj, e))
            if i < self.num_layers - 1:
                h = torch.relu(h)
            h = torch.nn.functional.dropout(h, self.dropout, self.training)
        return self.head(ops.segment(h, ptr, "mean" if self.pool == "mean" else "sum"))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_channels={self.in_channels}, "
                f"hidden_channels={self.hidden_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers}, poly_channels={self.poly_channels}, aggr={self.aggr!r}"
                + (f", edge_dim={self.edge_dim}" if self.uses_edge_features else "") + ")")


class PolyGINE(PolyGIN):
    r"""GINE with polynomial node *and* edge features concatenated.

    As :class:`PolyGIN`, with the GINE update

    .. math::
        h_v^{(\ell+1)} = \mathrm{MLP}^{(\ell)}\Big((1 + \epsilon) h_v^{(\ell)}
            + \sum_{u \in \mathcal{N}(v)} \mathrm{ReLU}\big(h_u^{(\ell)}
            + W^{(\ell)} e_{uv}\big)\Big),
        \qquad e_{uv} = [\,\mathrm{enc}(a_{uv}) \,\|\, q_{uv}\,]

    where :math:`a_{uv}` is ``data.edge_attr`` and :math:`q_{uv}` is
    ``data.poly_edge_attr`` (width ``poly_edge_channels``).

    Example:
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.tensor([[0], [1]]), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...          edge_attr=torch.tensor([1, 1]), poly_edge_attr=torch.rand(2, 3))
        >>> PolyGINE(1, 8, 2, node_vocab=2, edge_vocab=4, poly_edge_channels=3).eval()(g).shape
        torch.Size([1, 1])
    """

    uses_edge_features = True

    def _edge_input(self, data) -> Tensor:
        num_edges = data.edge_index.size(1)
        parts = []
        if self.edge_encoder is not None:
            if getattr(data, "edge_attr", None) is None:
                raise ValueError("the model was built with edge features but `data.edge_attr` is missing")
            if data.edge_attr.size(0) != num_edges:
                raise ValueError(f"`data.edge_attr` has {data.edge_attr.size(0)} rows for {num_edges} edges")
            parts.append(self.edge_encoder(data.edge_attr))
        if self.poly_edge_channels:
            parts.append(self._poly(data, POLY_EDGE_KEY, num_edges, self.poly_edge_channels,
                                    "level='edge'"))
        return torch.cat(parts, dim=-1)

r"""SPEN: subgraph permutation equivariant networks on ego-net bags.

Reference: J. Mitton, R. Murray-Smith, "Subgraph Permutation Equivariant
Networks" (arXiv 2111.11840; first version "Local Permutation Equivariance
for Graph Neural Networks").

Every node :math:`r` has its ego-net :math:`S_r` (:class:`EgoNetBags`).
The network keeps *shared* features: :math:`h_u \in \mathbb{R}^{C}` per node
and :math:`H_{uv} \in \mathbb{R}^{C}` per pair lying in some ego-net. A layer

1. reads, for every ego-net :math:`S_r` of size :math:`m`, the dense tensors
   :math:`v = (h_u)_{u \in S_r} \in \mathbb{R}^{C \times m}` (plus a channel
   marking the centre :math:`r`) and
   :math:`X = (H_{uv})_{u,v \in S_r} \in \mathbb{R}^{C \times m \times m}`;
2. applies :class:`SPENConv` with the weights of the size group of
   :math:`m` (:class:`SizeMap`);
3. shares: every node's (pair's) new feature is the mean of its outputs over
   the ego-nets holding it,
   :math:`h'_u = \frac{1}{|\{r : u \in S_r\}|}\sum_{r : u \in S_r} Y^{(1),r}_u`
   (likewise :math:`H'_{uv}`), then normalisation and ReLU.

By default (``layout='ragged'``) the local nodes and pairs of all ego-nets
are flat rows (:class:`~graphequi.nn.spen_layout.RaggedEgoNets`): the
per-ego-net statistics of the layer are segment reductions and
gather-reduces (:func:`graphequi.ops.spmm`) over those rows, the weights of
each size group multiply one contiguous slice, and memory is exactly
:math:`O(\sum_r m_r^2)` (:math:`O(n\,\bar m^2)`) instead of the
:math:`O(n^2)` of a global order-2 network, whatever the mix of sizes. With
``layout='buckets'`` the ego-nets of one size are stacked into one dense
``[B_m, C, m, m]`` bucket and the forward pass loops over the distinct sizes
of the batch (:class:`~graphequi.nn.spen_layout.EgoNetLayout`). Neither
loops over nodes or subgraphs.

Readout: per ego-net the invariants :math:`s_d, s_a, s_v` (see
:mod:`graphequi.nn.spen_basis`) and the centre's feature :math:`h_r`, the
mean over the ego-nets of each graph, an MLP.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from graphequi.nn.encoders import FeatureEncoder, Vocab, warn_ignored_features
from graphequi.nn.spen_conv import SPENConv, spen_conv_ragged
from graphequi.nn.spen_layout import PAD_MODES, EgoNetLayout, RaggedEgoNets, SizeMap
from graphequi.ops import scatter, segment

__all__ = ["SPEN", "build_spen", "bucket_inputs"]


def bucket_inputs(x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
    """Local rows of one bucket, ``[B_m, m, C_1]`` and ``[B_m, m^2, C_2]``, to the
    dense inputs of :class:`SPENConv`: ``[B_m, C_1 + 1, m]`` (the last channel
    marks the centre, local node 0) and ``[B_m, C_2, m, m]`` (a channels-first
    view of the channels-last rows)."""
    b, m, _ = x1.shape
    mark = torch.zeros(m, dtype=x1.dtype, device=x1.device)
    mark[0] = 1.0
    x1 = torch.cat([x1.transpose(1, 2), mark.expand(b, 1, m)], dim=1)
    return x1, x2.view(b, m, m, x2.size(-1)).permute(0, 3, 1, 2)


def _bucket_step(conv: SPENConv, x1: Tensor, x2: Tensor,
                 size: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """One bucket through one layer, from its local rows to its outputs
    flattened to local rows (``[B_m m, D_1]`` and ``[B_m m^2, D_2]``) for sharing;
    ``size``: true sizes of a padded bucket."""
    y1, y2 = conv(*bucket_inputs(x1, x2), size)
    return y1.transpose(1, 2).reshape(-1, y1.size(1)), y2.permute(0, 2, 3, 1).reshape(-1, y2.size(1))


def _encoded(data, key: str, encoder: FeatureEncoder, rows: int, what: str) -> Tensor:
    """``encoder(data[key])``, after checking the attribute exists and has ``rows`` rows."""
    value = getattr(data, key, None)
    if value is None:
        raise ValueError(f"the model was built with {what} features but `data.{key}` is missing")
    if value.size(0) != rows:
        raise ValueError(f"data.{key} has {value.size(0)} rows for {rows} {what}")
    return encoder(value)


class SPEN(torch.nn.Module):
    r"""SPEN for graph-level prediction (Mitton & Murray-Smith).

    Inputs (order-1 and order-2 channels, before the first layer):

    * node: embedded ``data.x`` (``node_vocab``/``node_in_channels``) or a
      constant 1; with ``multiplicity`` also :math:`\log(1 + \#\{r : u \in S_r\})`;
    * pair: the edge count of :math:`(u, v)` (adjacency), embedded
      ``data.edge_attr`` summed over the edges :math:`(u, v)`; with
      ``multiplicity`` also :math:`\log(1 + \#\{r : u, v \in S_r\})`.

    The multiplicities turn the mean of the sharing step back into a sum
    when the network needs it; SPEN's contraction bank in
    :mod:`graphequi.expressivity` models sums.

    Args:
        out_channels (int): graph-level outputs.
        hidden_channels (int): width of the node and pair features.
        num_layers (int): number of :class:`SPENConv` layers (depth).
        node_vocab, node_in_channels: categorical / real ``data.x`` (optional).
        edge_vocab, edge_in_channels: categorical / real ``data.edge_attr`` (optional).
        size_map (SizeMap, int or ``'shared'``): weight groups of subgraph
            sizes; an int ``K`` is :meth:`SizeMap.up_to` ``(K)``, ``'shared'``
            one set of weights for all sizes.
        norm (str): ``'batch'`` (batch norm of the shared node and pair
            features after each layer) or ``'none'``.
        multiplicity (bool): add the multiplicity input channels.
        layout (str): ``'ragged'`` (default): every ego-net's local nodes
            and pairs as flat rows (:class:`RaggedEgoNets`,
            :func:`spen_conv_ragged`), no padding and the same number of
            kernels per layer for any mix of sizes; ``'buckets'``: dense
            ``[B_m, C, m, m]`` tensors per size (:class:`EgoNetLayout`,
            :class:`SPENConv`). Both compute the same function.
        pad (bool or str): with ``layout='buckets'``: ``True``/``'pow2'``: bucket the ego-nets of one
            weight group by size rounded up to a power of two, zero-padded
            (:class:`EgoNetLayout`); ``'group'``: one bucket per weight group,
            padded to its largest ego-net. Same result, fewer and larger dense
            tensors. Worth it when many sizes share weights (e.g.
            ``size_map='shared'``) and the ego-nets are small.
        dropout (float): dropout in the head.

    Shapes:
        - input: a ``Data``/``Batch`` written by :class:`graphequi.transforms.EgoNetBags`
        - output: ``[B, out_channels]``

    Example:
        >>> from torch_geometric.data import Batch, Data
        >>> from graphequi.transforms import EgoNetBags
        >>> g = EgoNetBags()(Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=4))
        >>> SPEN(2, hidden_channels=8, num_layers=2).eval()(Batch.from_data_list([g, g])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int = 32,
        num_layers: int = 4,
        *,
        node_vocab: Optional[Vocab] = None,
        node_in_channels: Optional[int] = None,
        edge_vocab: Optional[Vocab] = None,
        edge_in_channels: Optional[int] = None,
        size_map: Union[SizeMap, int, str] = 8,
        norm: str = "batch",
        multiplicity: bool = True,
        layout: str = "ragged",
        pad: Union[bool, str] = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        if layout not in ("ragged", "buckets"):
            raise ValueError(f"layout must be 'ragged' or 'buckets', got {layout!r}")
        if pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
        if pad is not False and layout != "buckets":
            raise ValueError(f"pad={pad!r} pads dense buckets; it needs layout='buckets'")
        if isinstance(size_map, str):
            if size_map != "shared":
                raise ValueError(f"size_map must be a SizeMap, an int or 'shared', got {size_map!r}")
            size_map = SizeMap.shared()
        elif not isinstance(size_map, SizeMap):
            size_map = SizeMap.up_to(size_map)
        self.size_map = size_map
        self.out_channels, self.hidden_channels, self.num_layers = out_channels, hidden_channels, num_layers
        self.norm, self.multiplicity, self.pad, self.dropout = norm, bool(multiplicity), pad, dropout
        self.layout = layout
        h = hidden_channels
        self.node_encoder = (FeatureEncoder(h, vocab=node_vocab, in_channels=node_in_channels,
                                            name="node features (data.x)")
                             if node_vocab is not None or node_in_channels is not None else None)
        self.edge_encoder = (FeatureEncoder(h, vocab=edge_vocab, in_channels=edge_in_channels,
                                            name="edge features (data.edge_attr)")
                             if edge_vocab is not None or edge_in_channels is not None else None)
        c1 = (h if self.node_encoder is not None else 1) + self.multiplicity
        c2 = 1 + (h if self.edge_encoder is not None else 0) + self.multiplicity
        self.in_channels = (c1, c2)
        self.convs = torch.nn.ModuleList()
        self.node_norms = torch.nn.ModuleList()
        self.pair_norms = torch.nn.ModuleList()
        for i in range(num_layers):
            cin = (c1 + 1, c2) if i == 0 else (h + 1, h)  # + the centre mark
            self.convs.append(torch.nn.ModuleList(SPENConv(cin, (h, h)) for _ in range(size_map.num_groups)))
            if norm == "batch":
                self.node_norms.append(torch.nn.BatchNorm1d(h))
                self.pair_norms.append(torch.nn.BatchNorm1d(h))
        readout = 4 * h  # s_d, s_a, s_v, centre
        self.head = torch.nn.Sequential(
            torch.nn.Linear(readout, h), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(h, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def inputs(self, data, layout: Union[EgoNetLayout, RaggedEgoNets]) -> tuple[Tensor, Tensor]:
        """The shared input features ``[N, C_1]`` (nodes) and ``[P, C_2]`` (pairs)."""
        n, p = layout.num_nodes, layout.num_pairs
        dtype = self.head[0].weight.dtype
        device = data.ego_size.device
        edge_pair = data.ego_edge_pair
        num_edges = data.edge_index.size(1)
        if edge_pair.shape != (num_edges,):
            raise ValueError(f"data.ego_edge_pair has shape {list(edge_pair.shape)}, expected [{num_edges}]")
        warn_ignored_features(self, data, {"x": self.node_encoder, "edge_attr": self.edge_encoder})
        if self.node_encoder is not None:
            node = [_encoded(data, "x", self.node_encoder, n, "nodes").to(dtype)]
        else:
            node = [torch.ones(n, 1, dtype=dtype, device=device)]
        ones = torch.ones(num_edges, 1, dtype=dtype, device=device)
        pair = [scatter(ones, edge_pair, 0, p, "sum")]
        if self.edge_encoder is not None:
            e = _encoded(data, "edge_attr", self.edge_encoder, num_edges, "edges").to(dtype)
            pair.append(scatter(e, edge_pair, 0, p, "sum"))
        if self.multiplicity:
            node.append(torch.log1p(layout.node_count.to(dtype)).unsqueeze(-1))
            pair.append(torch.log1p(layout.pair_count.to(dtype)).unsqueeze(-1))
        return torch.cat(node, dim=-1), torch.cat(pair, dim=-1)

    def _readout(self, layout: EgoNetLayout, h1: Tensor, h2: Tensor) -> Tensor:
        """``[N, 4 C]`` per-subgraph invariants, in bucket order."""
        out = []
        for bucket, (x1, x2) in zip(layout.buckets, layout.gather(h1, h2)):
            m = bucket.size
            inv = (1.0 / bucket.sizes.to(x1.dtype).unsqueeze(-1) if bucket.sizes is not None
                   else x1.new_full((1, 1), 1.0 / m))
            diag = x2[:, :: m + 1].sum(1)  # local pairs (a, a); padding is zero
            out.append(torch.cat([diag * inv, x2.sum(1) * inv * inv, x1.sum(1) * inv, x1[:, 0]], dim=-1))
        return torch.cat(out)

    def _readout_ragged(self, ego: RaggedEgoNets, h1: Tensor, h2: Tensor) -> Tensor:
        """``[N, 4 C]`` per-subgraph invariants, in ragged order."""
        x1, x2 = ego.gather(h1, h2)
        diag = segment(x2.index_select(0, ego.diagonal), ego.node_ptr, "mean")
        return torch.cat([diag, segment(x2, ego.pair_ptr, "mean"), segment(x1, ego.node_ptr, "mean"),
                          x1.index_select(0, ego.node_ptr[:-1])], dim=-1)

    def _normalize(self, i: int, h1: Tensor, h2: Tensor) -> tuple[Tensor, Tensor]:
        if self.norm == "batch":
            h1, h2 = self.node_norms[i](h1), self.pair_norms[i](h2)
        return torch.relu(h1), torch.relu(h2)

    def forward(self, data) -> Tensor:
        if self.layout == "ragged":
            layout = RaggedEgoNets.from_data(data, self.size_map)
        else:
            layout = EgoNetLayout.from_data(data, self.size_map, self.pad)
        n = layout.num_nodes
        if n == 0:
            raise ValueError("SPEN got an empty graph (0 nodes); its readout is undefined")
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = data.ego_size.new_zeros(n)
        num_graphs = int(data.num_graphs) if hasattr(data, "num_graphs") else 1
        if bool((torch.bincount(batch, minlength=num_graphs) == 0).any()):
            raise ValueError("SPEN got an empty graph (0 nodes) in the batch; its readout is undefined")
        h1, h2 = self.inputs(data, layout)
        if self.layout == "ragged":
            center = layout.center.to(h1.dtype)
            for i, convs in enumerate(self.convs):
                x1, x2 = layout.gather(h1, h2)
                y1, y2 = spen_conv_ragged(convs, layout, torch.cat([x1, center], dim=-1), x2)
                h1, h2 = self._normalize(i, layout.share_nodes(y1), layout.share_pairs(y2))
            z = self._readout_ragged(layout, h1, h2)
            graph = batch[layout.subgraphs]
        else:
            for i, convs in enumerate(self.convs):
                # a loop over the distinct sizes of the batch (a handful), not over subgraphs
                outs = [_bucket_step(convs[b.group], x1, x2, b.sizes)
                        for b, (x1, x2) in zip(layout.buckets, layout.gather(h1, h2))]
                h1, h2 = self._normalize(i, layout.share_nodes([o[0] for o in outs]),
                                         layout.share_pairs([o[1] for o in outs]))
            z = self._readout(layout, h1, h2)
            graph = batch[layout.subgraph_order()]
        return self.head(scatter(z, graph, 0, num_graphs, "mean"))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_channels={self.in_channels}, "
                f"hidden_channels={self.hidden_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers}, size_groups={self.size_map.num_groups}, "
                f"norm={self.norm!r}, " + (f"pad={self.pad})" if self.layout == "buckets" else "layout='ragged')"))


def build_spen(task, **kwargs) -> SPEN:
    """A :class:`SPEN` for a trainer task (``num_outputs``, ``node_vocab``,
    ``node_in_channels``, ``edge_vocab``, ``edge_in_channels``); the task's
    graphs must carry :class:`graphequi.transforms.EgoNetBags`."""
    return SPEN(task.num_outputs, node_vocab=task.node_vocab, node_in_channels=task.node_in_channels,
                edge_vocab=task.edge_vocab, edge_in_channels=task.edge_in_channels, **kwargs)

r"""PPGN++: a dense, batched 2-FWL network with polynomial pair features.

Reference: O. Puny, D. Lim, B. T. Kiani, H. Maron, Y. Lipman, "Equivariant
Polynomials for Graph Neural Networks", ICML 2023 (PPGN++), building on
H. Maron, H. Ben-Hamu, H. Serviansky, Y. Lipman, "Provably Powerful Graph
Networks", NeurIPS 2019 (PPGN).

A batch of graphs with up to :math:`N` nodes is stored as a dense tensor
:math:`X \in \mathbb{R}^{B \times N \times N \times C}` (channels last) plus a
node mask :math:`m \in \{0, 1\}^{B \times N}`; entry :math:`(i, j)` of graph
:math:`b` is real iff :math:`m_{bi} m_{bj} = 1`. Every block sets padded entries
back to zero, so a graph gives the same output alone or inside a padded batch.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from graphequi import ops
from graphequi.nn._graph import graph_ptr, num_nodes_of
from graphequi.nn.encoders import FeatureEncoder, Vocab
from graphequi.ops._registry import accumulation_dtype
from graphequi.poly.keys import PAIR_INDEX_KEY, POLY_PAIR_KEY, row_major_pairs

__all__ = ["PPGNPlusPlus", "PPGNBlock", "dense_nodes", "dense_pairs", "dense_pair_features"]


def _mlp(in_channels: int, hidden: int, num_layers: int) -> torch.nn.Sequential:
    """Pointwise (1x1) MLP with a ReLU after every layer, as in PPGN."""
    layers, c = [], in_channels
    for _ in range(num_layers):
        layers += [torch.nn.Linear(c, hidden), torch.nn.ReLU()]
        c = hidden
    return torch.nn.Sequential(*layers)


def _reset(module: torch.nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def _pointwise(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, relu: bool = False) -> Tensor:
    r"""A 1x1 linear map on channel-major pairs, ``[C, P] -> [C_out, P]`` for the
    ``P = B N^2`` pairs of a batch (optionally followed by a ReLU).

    With channels outermost the map over every pair of the batch is a single
    GEMM :math:`W X` (bias folded in), and so is its weight gradient. Results
    stay 2-D: an in-place ReLU on a 4-D *view* would make autograd copy the
    whole gradient in the backward pass.
    """
    out = torch.mm(weight, x) if bias is None else torch.addmm(bias.view(-1, 1), weight, x)
    return torch.relu_(out) if relu else out


def _mlp_tail(x: Tensor, mlp: torch.nn.Sequential) -> Tensor:
    """The layers of a :func:`_mlp` after its first ReLU, on ``[C, P]`` pairs."""
    for layer in list(mlp)[2::2]:
        x = _pointwise(x, layer.weight, layer.bias, relu=True)
    return x


def _pair_keep(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[1, B, N, N]``: 1 on real pairs (both nodes real), 0 on padding."""
    return (mask.unsqueeze(2) & mask.unsqueeze(1)).unsqueeze(0).to(dtype)


class PairBatchNorm(torch.nn.Module):
    r"""Batch normalization over the *real* entries of a channel-major pair tensor.

    With :math:`m_{bij} = m_{bi} m_{bj}` and :math:`n = \sum_{bij} m_{bij}`,

    .. math::
        \mu_c = \tfrac{1}{n}\textstyle\sum_{bij} m_{bij} X_{cbij}, \qquad
        \sigma^2_c = \tfrac{1}{n}\textstyle\sum_{bij} m_{bij} (X_{cbij} - \mu_c)^2, \qquad
        Y_{cbij} = m_{bij}\Big(\gamma_c \frac{X_{cbij} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c\Big),

    i.e. :class:`torch.nn.BatchNorm1d` applied to the rows :math:`X_{\cdot bij}`
    with :math:`m_{bij} = 1` (same running statistics, momentum and state
    dict); padded entries neither enter the statistics nor receive a value.
    The statistics are masked sums (a matrix-vector product with the mask)
    instead of a gather and a scatter of the real rows.
    After :func:`torch.nn.SyncBatchNorm.convert_sync_batchnorm` (which swaps
    the inner ``bn``) the sums are all-reduced over its process group, with
    gradients, as ``SyncBatchNorm`` does. The inner ``bn`` holds the state, its
    mode included: ``train()``/``eval()`` set it, and so can a tool that walks
    ``modules()`` looking for batch norms (e.g. precise BN).

    Args:
        channels (int): :math:`C`.

    Shapes:
        - x: ``[C, B, N, N]``; mask: ``[B, N]`` (bool, real nodes)
        - output: ``[C, B, N, N]``
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(channels)

    def reset_parameters(self) -> None:
        self.bn.reset_parameters()

    def _all_reduce(self, value: Tensor) -> Tensor:
        if isinstance(self.bn, torch.nn.SyncBatchNorm) and torch.distributed.is_available() \
                and torch.distributed.is_initialized():
            import torch.distributed.nn.functional as dist_fn
            return dist_fn.all_reduce(value, group=self.bn.process_group or torch.distributed.group.WORLD)
        return value

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        bn = self.bn
        C = x.size(0)
        # Under autocast x may be bfloat16; the statistics are sums in at least float32
        # (as autocast runs torch's own batch norm), the output is in x's dtype.
        stat_dtype = accumulation_dtype(x.dtype)
        with torch.autocast(x.device.type, enabled=False):
            keep_flat = _pair_keep(mask, stat_dtype).reshape(-1)
            if bn.training or not bn.track_running_stats:  # the inner bn holds mode and statistics
                rows = x.reshape(C, -1).to(stat_dtype)
                stats = self._all_reduce(torch.cat([torch.mv(rows, keep_flat), keep_flat.sum().view(1)]))
                count = stats[-1].clamp(min=1)
                mean = stats[:-1] / count
                var = self._all_reduce(torch.mv((rows - mean.view(-1, 1)).square(), keep_flat)) / count
                if bn.training and bn.track_running_stats:
                    with torch.no_grad():
                        bn.num_batches_tracked.add_(1)
                        momentum = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                                    else bn.momentum)
                        bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), momentum)
                        bn.running_var.lerp_((var * (count / (count - 1).clamp(min=1))).to(bn.running_var.dtype),
                                             momentum)
            else:
                mean, var = bn.running_mean, bn.running_var
            scale = torch.rsqrt(var + bn.eps)
            if bn.affine:
                scale = scale * bn.weight
            shift = -mean * scale
            if bn.affine:
                shift = shift + bn.bias
            keep = keep_flat.to(x.dtype).view((1,) + x.shape[1:])
            return torch.addcmul(shift.to(x.dtype).view(-1, 1, 1, 1), x,
                                 scale.to(x.dtype).view(-1, 1, 1, 1)) * keep

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.bn.num_features})"


class PPGNBlock(torch.nn.Module):
    r"""One PPGN++ block on a channel-major dense pair tensor.

    .. math::
        \tilde X &= [X \,\|\, I] \\
        Y &= m_1([\tilde X \,\|\, \tilde X^\top]) \cdot m_2(\tilde X)
            \quad\text{(matrix product per channel: }
            Y_{ij}^{c} = \textstyle\sum_k m_1(\cdot)_{ik}^{c}\, m_2(\tilde X)_{kj}^{c}) \\
        X' &= W [\tilde X \,\|\, Y] + b

    where :math:`I` is the identity channel (on real nodes only), :math:`m_1`,
    :math:`m_2` are pointwise MLPs and :math:`W` a 1x1 linear layer, i.e. the
    skip connection :math:`W_1 \tilde X` added to :math:`W_2 Y`. Padded
    entries of :math:`m_2(\cdot)` are zeroed before the product (so no padded
    :math:`k` enters a real :math:`Y_{ij}`) and those of :math:`X'` after it.

    The layout is channel-major, ``[C, B, N, N]``: every 1x1 map is one GEMM
    over all pairs of the batch and the per-channel products are contiguous
    ``N x N`` matrices, so the block makes no transposed or permuted copies.

    Args:
        in_channels (int): :math:`C`.
        out_channels (int): channels of :math:`Y` and :math:`X'`.
        mlp_layers (int): depth of :math:`m_1`, :math:`m_2`.
        norm (bool): batch-normalize :math:`X'` over real entries.

    Shapes:
        - x: ``[C, B, N, N]`` (zero on padded entries); mask: ``[B, N]`` (bool, real nodes)
        - output: ``[out_channels, B, N, N]``
    """

    def __init__(self, in_channels: int, out_channels: int, mlp_layers: int = 2, norm: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        c = in_channels + 1  # + identity channel
        self.mlp1 = _mlp(2 * c, out_channels, mlp_layers)
        self.mlp2 = _mlp(c, out_channels, mlp_layers)
        self.skip = torch.nn.Linear(c + out_channels, out_channels)
        self.norm = PairBatchNorm(out_channels) if norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset(self)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        c, h = self.in_channels + 1, self.out_channels
        keep = _pair_keep(mask, x.dtype)
        x = torch.cat([x, torch.diag_embed(mask.to(x.dtype)).unsqueeze(0)])  # [X | I]
        shape = (h,) + x.shape[1:]
        flat = x.view(c, -1)
        # W [X | X^T] = W_x X + (W_t X)^T. Two GEMMs rather than one on stacked weights:
        # slicing the stacked output would cost a zero-fill and a copy in the backward pass.
        w, bias = self.mlp1[0].weight, self.mlp1[0].bias
        first = (_pointwise(flat, w[:, :c], bias).view(shape)
                 + _pointwise(flat, w[:, c:]).view(shape).transpose(2, 3))
        a = _mlp_tail(torch.relu_(first).view(h, -1), self.mlp1)
        w, bias = self.mlp2[0].weight, self.mlp2[0].bias
        b = _mlp_tail(_pointwise(flat, w, bias, relu=True), self.mlp2)
        y = torch.matmul(a.view(shape), b.view(shape) * keep)
        out = _pointwise(flat, self.skip.weight[:, :c], self.skip.bias)
        # out of place: autocast does not cast the arguments of in-place ops
        out = torch.addmm(out, self.skip.weight[:, c:], y.view(h, -1)).view(shape)
        if self.norm is not None:
            return self.norm(out, mask)
        return out * keep

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"norm={self.norm is not None})")


def _scatter_dense(values: Tensor, flat: Tensor, leading: tuple) -> Tensor:
    # Rows of ``values`` summed into the cells ``flat`` of a zero ``[*leading, ...]`` tensor.
    cells = 1
    for size in leading:
        cells = cells * size
    return ops.scatter(values, flat, 0, cells).view(tuple(leading) + tuple(values.shape[1:]))


def dense_nodes(x: Tensor, batch: Tensor, ptr: Tensor, max_num_nodes: int) -> Tensor:
    r"""Per-node values as ``[B, N, ...]`` with zeros on padded entries, like
    :func:`torch_geometric.utils.to_dense_batch` but on graphequi's
    ``scatter`` with the padded size given: no host synchronisation.

    Args:
        x: ``[num_nodes, ...]`` values.
        batch: ``[num_nodes]`` graph of each node (sorted, as in a ``Batch``).
        ptr: ``[B + 1]`` node offsets of the graphs.
        max_num_nodes: :math:`N`, at least the largest graph's size.
    """
    local = torch.arange(x.size(0), device=x.device) - ptr.index_select(0, batch)
    return _scatter_dense(x, batch * max_num_nodes + local, (ptr.size(0) - 1, max_num_nodes))


def dense_pairs(pair_index: Tensor, batch: Tensor, ptr: Tensor, max_num_nodes: int,
                values: Optional[Tensor] = None, dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""Values on node pairs (edges) as ``[B, N, N, ...]``, summing repeated
    pairs, like :func:`torch_geometric.utils.to_dense_adj` but on graphequi's
    ``scatter`` with the padded size given: no host synchronisation.

    Args:
        pair_index: ``[2, P]`` global node ids, both of the same graph.
        batch, ptr, max_num_nodes: as in :func:`dense_nodes`.
        values: ``[P, ...]``; ``None`` counts the pairs (an adjacency).
        dtype: dtype of the counts when ``values`` is ``None``.
    """
    first, second = pair_index[0], pair_index[1]
    graph = batch.index_select(0, first)
    start = ptr.index_select(0, graph)
    flat = ((graph * max_num_nodes + first - start) * max_num_nodes + second - start)
    if values is None:
        values = torch.ones(first.numel(), device=first.device, dtype=dtype or torch.get_default_dtype())
    return _scatter_dense(values, flat, (ptr.size(0) - 1, max_num_nodes, max_num_nodes))


def dense_pair_features(data, key: str, batch: Tensor, ptr: Tensor, max_num_nodes: int,
                        num_pairs: Optional[int] = None) -> Tensor:
    r"""Densify per-pair values written by
    :class:`graphequi.transforms.PolynomialFeatures` (``level='pair'``).

    The layout is :mod:`graphequi.poly.keys`'s: ``[sum_b n_b^2, k]`` rows and,
    when present, ``pair_index``; without it the rows are read in row-major
    pair order. ``num_pairs`` (:math:`\sum_b n_b^2`), when the caller already
    has it on the host, is checked against the row count; without it the rows
    are trusted to be the graphs' pairs (validated where the data entered),
    so nothing is read from the device. Returns ``[B, N, N, k]`` with zeros
    on padded entries.
    """
    values = data[key]
    if values.dim() == 1:
        values = values.unsqueeze(-1)
    if num_pairs is not None and values.size(0) != num_pairs:
        raise ValueError(f"`{key}` has {values.size(0)} rows but the graphs have "
                         f"{num_pairs} node pairs (sum of n^2); was it written by "
                         "PolynomialFeatures(level='pair')?")
    pair_index = getattr(data, PAIR_INDEX_KEY, None)
    if pair_index is not None:
        if pair_index.dim() != 2 or pair_index.size(0) != 2 or pair_index.size(1) != values.size(0):
            raise ValueError(f"`pair_index` has shape {list(pair_index.shape)}, expected [2, {values.size(0)}]")
        return dense_pairs(pair_index, batch, ptr, max_num_nodes, values)
    layout = row_major_pairs(ptr.diff(), values.size(0))
    flat = (layout.graph * max_num_nodes + layout.row) * max_num_nodes + layout.col
    return _scatter_dense(values, flat, (ptr.size(0) - 1, max_num_nodes, max_num_nodes))


class PPGNPlusPlus(torch.nn.Module):
    r"""PPGN++ (Puny et al., 2023) for graph-level prediction on PyG batches.

    **Input channels.** For graph :math:`b` with :math:`n_b` nodes the dense
    input :math:`X^{(0)} \in \mathbb{R}^{N \times N \times C_0}` stacks

    * the adjacency matrix (1 channel; multi-edges counted);
    * embedded node types/features on the diagonal (``embed_channels``);
    * embedded edge types/features on the edges (``embed_channels``);
    * the ``ppgn++`` polynomial pair channels written by
      ``PolynomialFeatures(level='pair')`` (``poly_channels``), batch-normalized
      over the real entries: they are means over the maps of the free nodes,
      of order :math:`10^{-3}` on sparse graphs next to a 0/1 adjacency.

    **Blocks.** ``num_layers`` :class:`PPGNBlock` s of width
    ``hidden_channels``, each masking padded entries.

    **Readout.** With :math:`X` the last block's output,

    .. math::
        h_b = \Big[\tfrac{1}{n_b}\sum_{i} X_{ii} \;\Big\|\;
              \tfrac{1}{n_b(n_b-1)}\sum_{i \ne j} X_{ij}\Big]
              \in \mathbb{R}^{2 \cdot \text{hidden}},

    followed by an MLP head. With ``readout='sum'`` the two terms are the sums
    :math:`\tfrac{1}{s}\sum_i X_{ii}` and :math:`\tfrac{1}{s^2}\sum_{i\ne j} X_{ij}`
    for a fixed ``readout_scale`` :math:`s` (e.g. the mean training graph
    size): still sums, so counts that grow with the graph stay linear in the
    readout, but of order one at initialization instead of order :math:`n^2`.
    The output is invariant to relabeling the nodes of each graph.

    The reference ZINC configuration (``num_layers=8``,
    ``hidden_channels=95``) has about 0.5M parameters.

    Args:
        out_channels (int): number of graph-level outputs.
        hidden_channels (int): block width.
        num_layers (int): number of blocks.
        node_vocab (int or sequence of int, optional): type counts of the
            integer node feature columns of ``data.x`` (e.g. ``28`` for ZINC).
        node_in_channels (int, optional): width of real-valued ``data.x``.
        edge_vocab, edge_in_channels: the same for ``data.edge_attr``.
        poly_channels (int): number of polynomial pair channels in
            ``data[pair_key]`` (0 to use none).
        embed_channels (int, optional): width of node/edge embeddings
            (default ``hidden_channels``).
        mlp_layers (int): depth of the MLPs inside each block.
        norm (bool): masked batch norm after each block.
        readout (str): ``'mean'`` or ``'sum'``.
        readout_scale (float): :math:`s` of the sum readout (default 1).
        dropout (float): dropout in the head.
        pair_key (str): attribute holding the polynomial pair values.
        max_num_nodes (int, optional): a fixed dense size :math:`N`, at least
            the largest graph's node count. Without it the forward pass reads
            the largest graph's size from the batch (one host
            synchronisation, which also validates the indices). With it, a
            compiled model (``torch.compile(model, fullgraph=True,
            dynamic=True)``) reads nothing from the device and compiles once
            for all batch sizes; validate its input where it enters (e.g.
            ``ValidateGraph(max_num_nodes=N)``). Eager mode still checks.
            The output does not depend on the padding.

    Shapes:
        - input: a :class:`~torch_geometric.data.Batch` (or ``Data``) with
          ``edge_index`` ``[2, E]``, optional ``x``, ``edge_attr``,
          ``data[pair_key]`` ``[sum n^2, k]`` and ``data.pair_index``
          ``[2, sum n^2]`` (as written by ``PolynomialFeatures(level='pair')``).
        - output: ``[B, out_channels]``.

    Example:
        >>> from torch_geometric.data import Data, Batch
        >>> g = Data(x=torch.tensor([[0], [1], [2]]), edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3)
        >>> model = PPGNPlusPlus(1, hidden_channels=8, num_layers=2, node_vocab=3).eval()
        >>> model(Batch.from_data_list([g, g])).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int = 95,
        num_layers: int = 8,
        *,
        node_vocab: Optional[Vocab] = None,
        node_in_channels: Optional[int] = None,
        edge_vocab: Optional[Vocab] = None,
        edge_in_channels: Optional[int] = None,
        poly_channels: int = 0,
        embed_channels: Optional[int] = None,
        mlp_layers: int = 2,
        norm: bool = True,
        readout: str = "mean",
        readout_scale: float = 1.0,
        dropout: float = 0.0,
        pair_key: str = POLY_PAIR_KEY,
        max_num_nodes: Optional[int] = None,
    ):
        super().__init__()
        if max_num_nodes is not None and max_num_nodes < 1:
            raise ValueError(f"max_num_nodes must be >= 1, got {max_num_nodes}")
        self.max_num_nodes = max_num_nodes
        if readout not in ("mean", "sum"):
            raise ValueError(f"readout must be 'mean' or 'sum', got {readout!r}")
        if not readout_scale > 0:
            raise ValueError(f"readout_scale must be > 0, got {readout_scale}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.poly_channels = int(poly_channels)
        self.readout = readout
        self.readout_scale = float(readout_scale)
        self.dropout = dropout
        self.pair_key = pair_key
        embed = hidden_channels if embed_channels is None else embed_channels
        self.node_encoder = (FeatureEncoder(embed, vocab=node_vocab, in_channels=node_in_channels,
                                            name="node features (data.x)")
                             if node_vocab is not None or node_in_channels is not None else None)
        self.edge_encoder = (FeatureEncoder(embed, vocab=edge_vocab, in_channels=edge_in_channels,
                                            name="edge features (data.edge_attr)")
                             if edge_vocab is not None or edge_in_channels is not None else None)
        in_channels = (1 + (embed if self.node_encoder is not None else 0)
                       + (embed if self.edge_encoder is not None else 0) + self.poly_channels)
        self.in_channels = in_channels
        self.poly_norm = PairBatchNorm(self.poly_channels) if self.poly_channels else None
        self.blocks = torch.nn.ModuleList()
        for i in range(num_layers):
            self.blocks.append(PPGNBlock(in_channels if i == 0 else hidden_channels,
                                         hidden_channels, mlp_layers, norm))
        self.head = torch.nn.Sequential(
            torch.nn.Linear(2 * hidden_channels, hidden_channels), torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_channels, hidden_channels // 2), torch.nn.ReLU(),
            torch.nn.Linear(hidden_channels // 2, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset(self)

    def to_dense(self, data) -> tuple[Tensor, Tensor]:
        """The input pair tensor ``[C_0, B, N, N]`` (channel-major, zero on
        padded entries) and the node mask ``[B, N]``."""
        edge_index = data.edge_index
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError("edge_index must have shape [2, E]")
        if edge_index.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"edge_index must be an int64 or int32 tensor, got {edge_index.dtype}")
        num_nodes = num_nodes_of(data)
        if not num_nodes:
            raise ValueError("PPGNPlusPlus got an empty graph (0 nodes); its readout is undefined")
        device = edge_index.device
        ptr = graph_ptr(data, num_nodes, device)
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = edge_index.new_zeros(num_nodes)
        counts = ptr.diff()
        max_n, num_pairs = self.max_num_nodes, None
        if max_n is None or not torch.compiler.is_compiling():
            max_n, num_pairs = self._check_sizes(edge_index, counts, num_nodes)
        dtype = self.blocks[0].skip.weight.dtype
        mask = torch.arange(max_n, device=device) < counts.unsqueeze(-1)
        channels = [dense_pairs(edge_index, batch, ptr, max_n, dtype=dtype).unsqueeze(0)]
        if self.node_encoder is not None:
            if getattr(data, "x", None) is None:
                raise ValueError("the model was built with node features but `data.x` is missing")
            h = dense_nodes(self.node_encoder(data.x), batch, ptr, max_n)
            channels.append(torch.diag_embed(h.permute(2, 0, 1)))
        if self.edge_encoder is not None:
            if getattr(data, "edge_attr", None) is None:
                raise ValueError("the model was built with edge features but `data.edge_attr` is missing")
            e = self.edge_encoder(data.edge_attr)
            channels.append(dense_pairs(edge_index, batch, ptr, max_n, e).permute(3, 0, 1, 2))
        if self.poly_channels:
            if getattr(data, self.pair_key, None) is None:
                raise ValueError(f"the model expects {self.poly_channels} polynomial pair channels in "
                                 f"`data.{self.pair_key}`; apply PolynomialFeatures(level='pair')")
            p = dense_pair_features(data, self.pair_key, batch, ptr, max_n, num_pairs).to(dtype)
            if p.size(-1) != self.poly_channels:
                raise ValueError(f"`data.{self.pair_key}` has {p.size(-1)} channels, expected "
                                 f"{self.poly_channels}")
            channels.append(self.poly_norm(p.permute(3, 0, 1, 2), mask))
        return torch.cat(channels), mask

    def _check_sizes(self, edge_index: Tensor, counts: Tensor, num_nodes: int) -> tuple[int, int]:
        # The eager path's one read of the data: the largest graph (the dense size when
        # none is fixed), empty graphs, the index range and the pair count, in one transfer.
        # A compiled model with a fixed max_num_nodes skips it and trusts its input.
        has_edges = edge_index.numel() > 0
        lo = edge_index.min() if has_edges else counts.new_zeros(())
        hi = edge_index.max() if has_edges else counts.new_zeros(())
        max_n, empty, lo, hi, num_pairs = torch.stack(
            [counts.max(), (counts == 0).sum(), lo.to(counts.dtype), hi.to(counts.dtype),
             (counts * counts).sum()]).tolist()
        if empty:
            raise ValueError("PPGNPlusPlus got an empty graph (0 nodes); its readout is undefined")
        if lo < 0:
            raise IndexError(f"edge_index contains a negative node id ({lo})")
        if hi >= num_nodes:
            raise IndexError(f"edge_index contains node {hi}, out of range for {num_nodes} nodes")
        if self.max_num_nodes is None:
            return max_n, num_pairs
        if max_n > self.max_num_nodes:
            raise ValueError(f"a graph has {max_n} nodes, more than max_num_nodes={self.max_num_nodes}")
        return self.max_num_nodes, num_pairs

    def forward(self, data) -> Tensor:
        x, mask = self.to_dense(data)
        for block in self.blocks:
            x = block(x, mask)
        # Under autocast the blocks run in bfloat16; the readout (sums of N^2 entries, then a
        # difference) and the small head that makes the prediction stay in float32.
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(accumulation_dtype(x.dtype))
            n = mask.sum(dim=1, keepdim=True).to(x.dtype)
            diag = x.diagonal(dim1=2, dim2=3).sum(dim=-1).t()  # [B, C]
            off = x.sum(dim=(2, 3)).t() - diag
            if self.readout == "mean":
                diag = diag / n
                off = off / (n * (n - 1)).clamp(min=1)
            else:
                diag = diag / self.readout_scale
                off = off / self.readout_scale ** 2
            return self.head(torch.cat([diag, off], dim=-1))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_channels={self.in_channels}, "
                f"hidden_channels={self.hidden_channels}, out_channels={self.out_channels}, "
                f"num_layers={self.num_layers}, poly_channels={self.poly_channels}, "
                f"readout={self.readout!r}"
                + (f", readout_scale={self.readout_scale:g}" if self.readout == "sum" else "")
                + (f", max_num_nodes={self.max_num_nodes}" if self.max_num_nodes is not None else "") + ")")

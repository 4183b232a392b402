r"""One SPEN layer on a bucket of equal-size subgraphs."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from graphequi.nn.spen_basis import NUM_BASIS
from graphequi.ops import segment, segment_linear

if TYPE_CHECKING:
    from graphequi.nn.spen_layout import RaggedEgoNets

__all__ = ["SPENConv", "spen_conv_ragged"]


class SPENConv(torch.nn.Module):
    r"""The full linear permutation equivariant map from (order-1, order-2)
    to (order-1, order-2) tensors of a subgraph (Maron et al., ICLR 2019),
    as used inside each ego-net by SPEN (Mitton & Murray-Smith).

    For a subgraph of size :math:`m` with pair features
    :math:`X \in \mathbb{R}^{C_2 \times m \times m}` and node features
    :math:`v \in \mathbb{R}^{C_1 \times m}`,

    .. math::
        Y^{(2)}_{d} &= \textstyle\sum_{c} \sum_{k=1}^{15} w^{22}_{dck}\, B^{22}_k(X_c)
            + \sum_{c} \sum_{k=1}^{5} w^{12}_{dck}\, B^{12}_k(v_c)
            + \beta_{d1} I + \beta_{d2} \mathbf{1}\mathbf{1}^\top, \\
        Y^{(1)}_{d} &= \textstyle\sum_{c} \sum_{k=1}^{5} w^{21}_{dck}\, B^{21}_k(X_c)
            + \sum_{c} \sum_{k=1}^{2} w^{11}_{dck}\, B^{11}_k(v_c) + \beta_d \mathbf{1},

    with the bases :math:`B` of :mod:`graphequi.nn.spen_basis` (sums
    normalised by :math:`m`). The result is equivariant to any permutation
    of the :math:`m` local nodes; the weights do not depend on :math:`m`, so
    one layer serves every size (SPEN ties weights per size by holding one
    layer per size group). The forward pass is fused: it computes the row,
    column, diagonal and total sums once and applies the 27 maps as three
    GEMMs (full pair tensor, per-node statistics, scalars), never stacking
    the basis.

    Args:
        in_channels (tuple of int): :math:`(C_1, C_2)`, node and pair input channels.
        out_channels (tuple of int): :math:`(D_1, D_2)`.
        bias (bool): add the three equivariant biases.

    Shapes:
        - x1: ``[B, C_1, m]``; x2: ``[B, C_2, m, m]`` (``B`` subgraphs of size ``m``)
        - output: ``([B, D_1, m], [B, D_2, m, m])``

    Example:
        >>> conv = SPENConv((2, 3), (4, 5))
        >>> y1, y2 = conv(torch.randn(7, 2, 6), torch.randn(7, 3, 6, 6))
        >>> tuple(y1.shape), tuple(y2.shape)
        ((7, 4, 6), (7, 5, 6, 6))
    """

    def __init__(self, in_channels: tuple[int, int], out_channels: tuple[int, int], bias: bool = True):
        super().__init__()
        c1, c2 = (int(c) for c in in_channels)
        d1, d2 = (int(c) for c in out_channels)
        if min(c1, c2, d1, d2) < 1:
            raise ValueError(f"channel counts must be positive, got in={in_channels}, out={out_channels}")
        self.in_channels, self.out_channels = (c1, c2), (d1, d2)
        # The 27 basis weights stored grouped by what they multiply (see basis_weights()):
        # the pair tensor (X and its transpose), the per-node statistics (d, r, c, v)
        # mapped to (rows, columns, diagonal, nodes), the scalars (s_d, s_a, s_v) mapped
        # to (diagonal, everything, nodes). Each group is one GEMM in forward().
        self.weight_pair = torch.nn.Parameter(torch.empty(2 * d2, c2))
        self.weight_stats = torch.nn.Parameter(torch.empty(3 * d2 + d1, 3 * c2 + c1))
        self.weight_scalars = torch.nn.Parameter(torch.empty(2 * d2 + d1, 2 * c2 + c1))
        self.bias = torch.nn.Parameter(torch.empty(2 * d2 + d1)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # He-uniform over the whole fan-in of each output order (all basis terms of all channels)
        c1, c2 = self.in_channels
        d1, d2 = self.out_channels
        bound2 = math.sqrt(6.0 / (NUM_BASIS[2, 2] * c2 + NUM_BASIS[1, 2] * c1))
        bound1 = math.sqrt(6.0 / (NUM_BASIS[2, 1] * c2 + NUM_BASIS[1, 1] * c1))
        with torch.no_grad():
            torch.nn.init.uniform_(self.weight_pair, -bound2, bound2)
            for w in (self.weight_stats, self.weight_scalars):
                rows = w.size(0) - d1
                torch.nn.init.uniform_(w[:rows], -bound2, bound2)
                torch.nn.init.uniform_(w[rows:], -bound1, bound1)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def basis_weights(self) -> dict[str, Tensor]:
        r"""The weights per basis element: ``w22`` ``[D_2, C_2, 15]``, ``w12``
        ``[D_2, C_1, 5]``, ``w21`` ``[D_1, C_2, 5]``, ``w11`` ``[D_1, C_1, 2]``
        (basis order of :mod:`graphequi.nn.spen_basis`), and the biases
        ``bias2`` ``[D_2, 2]`` (diagonal, everything) and ``bias1`` ``[D_1]``."""
        c1, c2 = self.in_channels
        d1, d2 = self.out_channels
        pair, stats, scal = self.weight_pair, self.weight_stats, self.weight_scalars
        rows = {"row": slice(0, d2), "col": slice(d2, 2 * d2), "diag": slice(2 * d2, 3 * d2),
                "node": slice(3 * d2, 3 * d2 + d1)}
        cols = {"d": slice(0, c2), "r": slice(c2, 2 * c2), "c": slice(2 * c2, 3 * c2),
                "v": slice(3 * c2, 3 * c2 + c1)}
        srows = {"diag": slice(0, d2), "all": slice(d2, 2 * d2), "node": slice(2 * d2, 2 * d2 + d1)}
        scols = {"sd": slice(0, c2), "sa": slice(c2, 2 * c2), "sv": slice(2 * c2, 2 * c2 + c1)}
        st = lambda a, b: stats[rows[a], cols[b]]  # noqa: E731
        sc = lambda a, b: scal[srows[a], scols[b]]  # noqa: E731
        w22 = [pair[:d2], pair[d2:], st("diag", "d"), st("diag", "r"), st("diag", "c"), sc("diag", "sd"),
               sc("diag", "sa"), st("row", "r"), st("col", "r"), st("row", "c"), st("col", "c"),
               st("row", "d"), st("col", "d"), sc("all", "sd"), sc("all", "sa")]
        w12 = [st("diag", "v"), st("row", "v"), st("col", "v"), sc("diag", "sv"), sc("all", "sv")]
        w21 = [st("node", "d"), st("node", "r"), st("node", "c"), sc("node", "sd"), sc("node", "sa")]
        w11 = [st("node", "v"), sc("node", "sv")]
        out = {k: torch.stack(v, dim=-1) for k, v in (("w22", w22), ("w12", w12), ("w21", w21), ("w11", w11))}
        bias = self.bias if self.bias is not None else pair.new_zeros(2 * d2 + d1)
        out["bias2"] = torch.stack([bias[:d2], bias[d2:2 * d2]], dim=-1)
        out["bias1"] = bias[2 * d2:]
        return out

    def _check(self, x1: Tensor, x2: Tensor) -> None:
        c1, c2 = self.in_channels
        if x2.dim() != 4 or x2.size(-1) != x2.size(-2) or x2.size(1) != c2:
            raise ValueError(f"x2 must be [B, {c2}, m, m], got {list(x2.shape)}")
        if x1.dim() != 3 or x1.size(1) != c1:
            raise ValueError(f"x1 must be [B, {c1}, m], got {list(x1.shape)}")
        if x1.size(0) != x2.size(0) or x1.size(-1) != x2.size(-1):
            raise ValueError(f"x1 {list(x1.shape)} and x2 {list(x2.shape)} disagree on the number "
                             "of subgraphs or their size")

    def forward(self, x1: Tensor, x2: Tensor, size: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Args:
            x1, x2: node and pair features of ``B`` subgraphs, dense size ``m``.
            size: ``[B]`` true sizes of zero-padded subgraphs (their real
                nodes first); sums are normalised by it. ``None``: all ``m``.
                Outputs on padded entries are not meaningful.
        """
        self._check(x1, x2)
        d1, d2 = self.out_channels
        # channels last inside: every channel mixing is one GEMM over the bucket, and an
        # input that is a channels-first view of channels-last storage costs no copy
        x = x2.permute(0, 2, 3, 1)  # [B, m, m, C2]
        v = x1.transpose(1, 2)  # [B, m, C1]
        w_full, w_vec, w_scal = self.weight_pair, self.weight_stats, self.weight_scalars
        d = x.diagonal(dim1=1, dim2=2).transpose(1, 2)  # [B, m, C2]
        if size is None:
            r, c = x.mean(dim=2), x.mean(dim=1)
            scal = torch.cat([d.mean(1), r.mean(1), v.mean(1)], dim=-1)  # [B, 2 C2 + C1]
        else:
            inv = 1.0 / size.to(x.dtype).view(-1, 1, 1)
            r, c = x.sum(dim=2) * inv, x.sum(dim=1) * inv
            scal = torch.cat([d.sum(1), r.sum(1), v.sum(1)], dim=-1) * inv.view(-1, 1)
        vec = torch.cat([d, r, c, v], dim=-1)  # [B, m, 3 C2 + C1]
        out_vec = torch.matmul(vec, w_vec.t())
        out_scal = torch.matmul(scal, w_scal.t())
        if self.bias is not None:
            out_scal = out_scal + self.bias
        row, col, diag, node = out_vec.split([d2, d2, d2, d1], dim=-1)
        diag_s, const, node_s = out_scal.split([d2, d2, d1], dim=-1)
        full = torch.matmul(x, w_full.t())  # [B, m, m, 2 D2]: W_0 X and W_1 X (transposed below)
        y2 = (full[..., :d2] + full[..., d2:].transpose(1, 2)
              + (row.unsqueeze(2) + col.unsqueeze(1) + const[:, None, None, :]))
        y2.diagonal(dim1=1, dim2=2).add_((diag + diag_s.unsqueeze(1)).transpose(1, 2))
        y1 = node + node_s.unsqueeze(1)
        return y1.transpose(1, 2), y2.permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in=(node={self.in_channels[0]}, pair={self.in_channels[1]}), "
                f"out=(node={self.out_channels[0]}, pair={self.out_channels[1]}), "
                f"bias={self.bias is not None})")


def spen_conv_ragged(convs: Sequence[SPENConv], ego: "RaggedEgoNets", x1: Tensor, x2: Tensor
                     ) -> tuple[Tensor, Tensor]:
    r""":class:`SPENConv` on every ego-net of a batch at once, on flat local rows.

    The same maps as :meth:`SPENConv.forward` per ego-net, with the
    per-ego-net statistics as reductions over the rows of
    :class:`~graphequi.nn.spen_layout.RaggedEgoNets`: the row means
    :math:`r`, column means :math:`c` and diagonal :math:`d` are one mean
    ``spmm`` (``ego.statistics``), the scalars a mean segment over the local
    nodes, and the 2->2 output one gather-reduce (``ego.assemble``) of the
    stacked pair, row, column and diagonal terms. The weights of group
    :math:`g` (``convs[g]``) multiply the contiguous rows of that group's
    ego-nets (:func:`~graphequi.ops.segment_linear`), so the kernel count per
    layer does not grow with the number of distinct sizes, and nothing is
    padded.

    Args:
        convs: one :class:`SPENConv` per weight group (indexed by the group ids
            of ``ego.groups``), all with the same channels.
        ego: the batch's ragged ego-nets.
        x1: ``[L1, C_1]`` local node rows (ragged order).
        x2: ``[L2, C_2]`` local pair rows (ragged order, row-major per ego-net).

    Returns:
        ``([L1, D_1], [L2, D_2])``: the outputs of every ego-net's map on its own rows.
    """
    conv = convs[ego.groups[0][0]] if ego.groups else convs[0]
    (c1, c2), (d1, d2) = conv.in_channels, conv.out_channels
    l1, l2 = ego.node_index.numel(), ego.pair_index.numel()
    if x1.shape != (l1, c1) or x2.shape != (l2, c2):
        raise ValueError(f"x1 must be [{l1}, {c1}] and x2 [{l2}, {c2}] (local rows of the ego-nets), "
                         f"got {list(x1.shape)} and {list(x2.shape)}")
    r, c, d = ego.statistics.spmm(x2, "mean", validate=False).split([l1, l1, l1])
    scal = segment(torch.cat([d, r, x1], dim=-1), ego.node_ptr, "mean")  # [S, 2 C2 + C1]
    vec = torch.cat([d, r, c, x1], dim=-1)  # [L1, 3 C2 + C1]
    if len(ego.groups) <= 1:
        full = F.linear(x2, conv.weight_pair)  # [W_0 X | W_1 X] per pair
        out_vec = F.linear(vec, conv.weight_stats)
        out_scal = F.linear(scal, conv.weight_scalars, conv.bias)
    else:
        # the weights of group g multiply its contiguous rows: one segment_linear
        # per weight kind, not one linear map per group and a concatenation
        group_convs = [convs[group] for group, _, _, _ in ego.groups]
        stack = lambda name: torch.stack([getattr(w, name) for w in group_convs])  # noqa: E731
        full = segment_linear(x2, [g[3] for g in ego.groups], stack("weight_pair"))
        out_vec = segment_linear(vec, [g[2] for g in ego.groups], stack("weight_stats"))
        out_scal = segment_linear(scal, [g[1] for g in ego.groups], stack("weight_scalars"),
                                  stack("bias") if conv.bias is not None else None)
    row, col, diag, node = out_vec.split([d2, d2, d2, d1], dim=-1)
    diag_s, const, node_s = out_scal.index_select(0, ego.node_subgraph).split([d2, d2, d1], dim=-1)
    # one gather-reduce adds W_0 X_ab + W_1 X_ba + the row, column and diagonal terms of every pair
    stacked = torch.cat([full.view(2 * l2, d2), row + const, col, diag + diag_s])
    return node + node_s, ego.assemble.spmm(stacked, validate=False)

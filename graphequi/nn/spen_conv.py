r"""One SPEN layer on a bucket of equal-size subgraphs."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from graphequi.nn.spen_basis import NUM_BASIS

__all__ = ["SPENConv"]


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
    column, diagonal and total sums once and applies the 27 maps as seven
    small channel mixings plus two full ones, never stacking the basis.

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
        self.w22 = torch.nn.Parameter(torch.empty(d2, c2, NUM_BASIS[2, 2]))
        self.w12 = torch.nn.Parameter(torch.empty(d2, c1, NUM_BASIS[1, 2]))
        self.w21 = torch.nn.Parameter(torch.empty(d1, c2, NUM_BASIS[2, 1]))
        self.w11 = torch.nn.Parameter(torch.empty(d1, c1, NUM_BASIS[1, 1]))
        if bias:
            self.bias2 = torch.nn.Parameter(torch.empty(d2, 2))
            self.bias1 = torch.nn.Parameter(torch.empty(d1))
        else:
            self.register_parameter("bias2", None)
            self.register_parameter("bias1", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # He-uniform over the whole fan-in of each output order (all basis terms of all channels)
        c1, c2 = self.in_channels
        for weights, fan_in in (((self.w22, self.w12), 15 * c2 + 5 * c1),
                                ((self.w21, self.w11), 5 * c2 + 2 * c1)):
            bound = math.sqrt(6.0 / fan_in)
            for w in weights:
                torch.nn.init.uniform_(w, -bound, bound)
        if self.bias2 is not None:
            torch.nn.init.zeros_(self.bias2)
            torch.nn.init.zeros_(self.bias1)

    def _check(self, x1: Tensor, x2: Tensor) -> None:
        c1, c2 = self.in_channels
        if x2.dim() != 4 or x2.size(-1) != x2.size(-2) or x2.size(1) != c2:
            raise ValueError(f"x2 must be [B, {c2}, m, m], got {list(x2.shape)}")
        if x1.dim() != 3 or x1.size(1) != c1:
            raise ValueError(f"x1 must be [B, {c1}, m], got {list(x1.shape)}")
        if x1.size(0) != x2.size(0) or x1.size(-1) != x2.size(-1):
            raise ValueError(f"x1 {list(x1.shape)} and x2 {list(x2.shape)} disagree on the number "
                             "of subgraphs or their size")

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x1, x2)
        m = x2.size(-1)
        w22, w12, w21, w11 = self.w22, self.w12, self.w21, self.w11
        d = x2.diagonal(dim1=-2, dim2=-1)
        r = x2.sum(dim=-1) / m
        c = x2.sum(dim=-2) / m
        vec = torch.cat([d, r, c, x1], dim=1)  # [B, 3 C2 + C1, m]
        scal = torch.cat([d.sum(-1) / m, r.sum(-1) / m, x1.mean(-1)], dim=1)  # [B, 2 C2 + C1]
        # columns of `vec` are (d, r, c, v), of `scal` (s_d, s_a, s_v): pick the matching basis weights
        w_row = torch.cat([w22[..., 11], w22[..., 7], w22[..., 9], w12[..., 1]], dim=1)
        w_col = torch.cat([w22[..., 12], w22[..., 8], w22[..., 10], w12[..., 2]], dim=1)
        w_diag = torch.cat([w22[..., 2], w22[..., 3], w22[..., 4], w12[..., 0]], dim=1)
        w_diag_s = torch.cat([w22[..., 5], w22[..., 6], w12[..., 3]], dim=1)
        w_const = torch.cat([w22[..., 13], w22[..., 14], w12[..., 4]], dim=1)
        w_node = torch.cat([w21[..., 0], w21[..., 1], w21[..., 2], w11[..., 0]], dim=1)
        w_node_s = torch.cat([w21[..., 3], w21[..., 4], w11[..., 1]], dim=1)

        diag_s = scal @ w_diag_s.t()
        const = scal @ w_const.t()
        node_s = scal @ w_node_s.t()
        if self.bias2 is not None:
            diag_s = diag_s + self.bias2[:, 0]
            const = const + self.bias2[:, 1]
            node_s = node_s + self.bias1
        y2 = (torch.einsum("dc,bcij->bdij", w22[..., 0], x2)
              + torch.einsum("dc,bcji->bdij", w22[..., 1], x2))
        row = torch.einsum("dk,bki->bdi", w_row, vec)
        col = torch.einsum("dk,bki->bdi", w_col, vec)
        diag = torch.einsum("dk,bki->bdi", w_diag, vec) + diag_s.unsqueeze(-1)
        y2 = y2 + (row.unsqueeze(-1) + col.unsqueeze(-2) + const[..., None, None]) + torch.diag_embed(diag)
        y1 = torch.einsum("dk,bki->bdi", w_node, vec) + node_s.unsqueeze(-1)
        return y1, y2

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in=(node={self.in_channels[0]}, pair={self.in_channels[1]}), "
                f"out=(node={self.out_channels[0]}, pair={self.out_channels[1]}), "
                f"bias={self.bias2 is not None})")

r"""A ConvNeXt-style residual block around :class:`PonitaConv`."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .conv import PonitaConv

__all__ = ["PonitaBlock"]


class PonitaBlock(nn.Module):
    r""":math:`x + \gamma \odot W_2\, \mathrm{GELU}(W_1\,
    \mathrm{LayerNorm}(\mathrm{conv}(x)))` (Liu et al., "A ConvNet for the
    2020s", 2022, with a depthwise separable group convolution).

    Args:
        channels: :math:`C`.
        basis_dim: kernel basis width.
        fiber: use the fiber kernel.
        widening: hidden width factor of the pointwise MLP.
        layer_scale: initial :math:`\gamma` (``None``: no scaling).
        aggr: ``"sum"`` or ``"mean"``.
    """

    def __init__(self, channels: int, basis_dim: int, fiber: bool = True, widening: int = 4,
                 layer_scale: Optional[float] = 1e-6, aggr: str = "sum"):
        super().__init__()
        self.conv = PonitaConv(channels, basis_dim, fiber=fiber, aggr=aggr)
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, widening * channels), nn.GELU(),
                                 nn.Linear(widening * channels, channels))
        self.initial_scale = layer_scale
        self.gamma = nn.Parameter(torch.empty(channels)) if layer_scale is not None else None
        self.reset_parameters()

    def reset_parameters(self):
        self.conv.reset_parameters()
        self.norm.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        if self.gamma is not None:
            nn.init.constant_(self.gamma, self.initial_scale)

    def forward(self, x: Tensor, edge_index: Tensor, spatial_basis: Tensor,
                fiber_basis: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None) -> Tensor:
        h = self.mlp(self.norm(self.conv(x, edge_index, spatial_basis, fiber_basis, edge_weight)))
        return x + (h if self.gamma is None else self.gamma * h)

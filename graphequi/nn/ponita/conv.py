r"""PONITA's separable group convolution on :math:`\mathbb R^3 \times S^2`
(Bekkers et al., ICLR 2024)."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from graphequi import ops
from graphequi.nn.aggr import MeanAggregation, SumAggregation

__all__ = ["PonitaConv", "csr_adjacency"]


class PonitaConv(nn.Module):
    r"""Separable convolution of features on :math:`O` orientations per node.

    .. math::
        y_{i,o,c} &= \sum_{j \in \mathcal N(i)} k_{ij,o,c}\, x_{j,o,c},
        \qquad k_{ij,o,\cdot} = W_s\, \phi_s(\mathrm{inv}(p_i, p_j, o)),\\
        z_{i,o,c} &= \frac1O \sum_{l} K_{ol,c}\, y_{i,l,c} + b_c,
        \qquad K_{ol,\cdot} = W_f\, \phi_f(o \cdot l),

    a depthwise spatial message aggregated over :math:`j` and then a
    depthwise fiber kernel that mixes orientations
    (:func:`graphequi.ops.depthwise_mix`). The bases
    :math:`\phi_s` ``[E, O, B]`` and :math:`\phi_f` ``[O, O, B]`` are computed
    once per forward by the model and passed in (shared by all layers);
    this layer owns only :math:`W_s`, :math:`W_f` and :math:`b`. Spatial
    invariance of :math:`\phi_s` makes the layer equivariant to rotations
    that map the grid onto itself, and exactly invariant whenever
    :math:`O = 1` (distances, or position-orientation point clouds).

    Args:
        channels: :math:`C`.
        basis_dim: :math:`B`.
        fiber: apply the fiber kernel (``False`` for :math:`O = 1`).
        aggr: ``"sum"`` or ``"mean"`` over neighbors (graphequi's kernels).

    The adjacency is an ``edge_index`` ``[2, E]`` (``[0]`` source, ``[1]``
    target: the messages are gathered, ``[E, O, C]``, and reduced by a
    :mod:`graphequi.nn.aggr` aggregation) or a target-major
    :class:`graphequi.ops.CSR` whose edges the per-edge inputs
    (``spatial_basis``, ``edge_weight``) follow in CSR order: then
    :func:`graphequi.ops.spmm` with the kernel as its per-edge-and-feature
    value reduces :math:`k_{ij} \odot x_j` on the spot, and neither the
    gathered :math:`x_j` nor the messages are ever materialised (forward or
    backward). :class:`Ponita` builds that CSR once per forward
    (:func:`csr_adjacency`). The CSR
    path trusts its indices (``validate=False``): check them where the CSR
    is made (:func:`graphequi.ops.to_csr` does by default).

    Shapes:
        ``x`` ``[N, O, C]``, ``edge_index`` ``[2, E]`` or a CSR with ``E``
        edges, ``spatial_basis`` ``[E, O, B]`` (or ``[E, 1, B]``
        broadcast), ``fiber_basis`` ``[O, O, B]``, ``edge_weight`` ``[E]``;
        output ``[N, O, C]``.
    """

    def __init__(self, channels: int, basis_dim: int, fiber: bool = True, aggr: str = "sum"):
        super().__init__()
        if aggr not in ("sum", "mean"):
            raise ValueError(f"aggr must be 'sum' or 'mean', got {aggr!r}")
        self.channels, self.basis_dim, self.fiber = channels, basis_dim, fiber
        self.spatial = nn.Linear(basis_dim, channels, bias=False)
        self.fiber_kernel = nn.Linear(basis_dim, channels, bias=False) if fiber else None
        self.bias = nn.Parameter(torch.zeros(channels))
        self.reduce = aggr
        self.aggr = SumAggregation() if aggr == "sum" else MeanAggregation()
        self.reset_parameters()

    def reset_parameters(self):
        self.spatial.reset_parameters()
        if self.fiber_kernel is not None:
            self.fiber_kernel.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Union[Tensor, ops.CSR], spatial_basis: Tensor,
                fiber_basis: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.channels:
            raise ValueError(f"{self}: x must have shape [N, O, {self.channels}], got {tuple(x.shape)}")
        csr = edge_index if isinstance(edge_index, ops.CSR) else None
        num_edges = csr.col.numel() if csr is not None else edge_index.size(1)
        if spatial_basis.dim() != 3 or spatial_basis.size(0) != num_edges:
            raise ValueError(f"{self}: spatial_basis must have shape [E={num_edges}, O, B], "
                             f"got {tuple(spatial_basis.shape)}")
        kernel = self.spatial(spatial_basis)                          # [E, O, C]
        if edge_weight is not None:
            kernel = kernel * edge_weight.view(-1, 1, 1)
        if csr is not None:
            if csr.ptr.numel() != x.size(0) + 1:
                raise ValueError(f"{self}: the CSR has {csr.ptr.numel() - 1} rows but x has {x.size(0)} nodes")
            kernel = kernel.expand(-1, x.size(1), -1)
            out = ops.spmm(csr.ptr, csr.col, x, kernel, self.reduce, csc=csr.csc, validate=False)
        else:
            messages = kernel * x.index_select(0, edge_index[0])      # [E, O, C]
            out = self.aggr(messages, edge_index[1], dim_size=x.size(0), dim=0)
        if self.fiber_kernel is not None:
            if fiber_basis is None:
                raise ValueError(f"{self}: fiber=True needs fiber_basis [O, O, B]")
            fiber = self.fiber_kernel(fiber_basis)                    # [O, O, C]
            out = ops.depthwise_mix(fiber / fiber.size(1), out)
        return out + self.bias

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, basis_dim={self.basis_dim}, "
                f"fiber={self.fiber})")


def csr_adjacency(edge_index: Tensor, num_nodes: int, *edge_inputs: Optional[Tensor],
                  validate: bool = True) -> tuple[ops.CSR, tuple[Optional[Tensor], ...]]:
    """The target-major CSR (with its transpose) that :class:`PonitaConv`'s
    fused path takes, and ``edge_inputs`` (per-edge tensors in ``edge_index``
    order, e.g. the spatial basis and the cutoff weights; ``None`` stays
    ``None``) put in its edge order.

    Args:
        edge_index: ``[2, E]``, ``[0]`` source, ``[1]`` target.
        num_nodes: number of nodes ``N``.
        edge_inputs: tensors with ``E`` rows.
        validate: check ``edge_index`` against ``num_nodes`` (a host sync;
            see :func:`graphequi.ops.to_csr`).

    Returns:
        ``(csr, reordered)``.
    """
    order = torch.arange(edge_index.size(1), device=edge_index.device)
    csr = ops.to_csr(edge_index, num_nodes, value=order, validate=validate)
    reordered = tuple(None if t is None else t.index_select(0, csr.value) for t in edge_inputs)
    return csr._replace(value=None), reordered

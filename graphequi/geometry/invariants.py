r"""Bi-invariant edge attributes of point clouds (Bekkers et al., "Fast,
Expressive SE(n) Equivariant Networks through Weight-Sharing in
Position-Orientation Space", ICLR 2024).

For an edge :math:`(j \to i)` with :math:`\mathbf r = p_j - p_i`:

* :math:`\mathbb R^3`: the distance :math:`\lVert \mathbf r \rVert`;
* position-orientation point clouds (:math:`\mathbb R^3 \times S^2`, one
  orientation per node): :math:`a = \mathbf r \cdot o_i`,
  :math:`b = \lVert \mathbf r - a\, o_i \rVert`, :math:`c = o_i \cdot o_j`;
* the fiber bundle over a grid :math:`\{o_k\}_{k<O}` shared by all nodes:
  spatial :math:`[E, O, 2] = (\mathbf r \cdot o_k,\ \lVert \mathbf r -
  (\mathbf r \cdot o_k) o_k \rVert)` and fiber :math:`[O, O, 1] = o_k
  \cdot o_l`;
* :math:`\mathbb R^2 \times S^1`: the perpendicular part is signed,
  :math:`b = \mathbf r \cdot o^\perp` with :math:`o^\perp = (-o_y, o_x)`,
  which is invariant to rotations but not reflections (SE(2)).

All of them are invariant to rotations and translations applied to
positions and orientations together; the norms are differentiable
everywhere (gradient 0 at a zero vector, see :func:`safe_norm`).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["safe_norm", "edge_vectors", "distance", "position_orientation_invariants",
           "bundle_spatial_invariants", "bundle_fiber_invariants", "bundle_spatial_invariants_2d",
           "unit"]


def safe_norm(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    r""":math:`\lVert x \rVert` along ``dim`` whose gradient is 0 (not NaN) at
    :math:`x = 0`, so forces stay finite for coincident points or an edge
    parallel to an orientation. NaN stays NaN."""
    sq = (x * x).sum(dim, keepdim=keepdim)
    # masked on == 0, not on > 0: a NaN sum must come out NaN, not as distance 0
    zero = sq == 0
    return torch.where(zero, torch.zeros_like(sq), torch.sqrt(torch.where(zero, torch.ones_like(sq), sq)))


def unit(x: Tensor, dim: int = -1) -> Tensor:
    """``x / |x|`` along ``dim`` (0 for a zero vector, with a finite gradient)."""
    n = safe_norm(x, dim, keepdim=True)
    return x / torch.where(n > 0, n, torch.ones_like(n))


def edge_vectors(pos: Tensor, edge_index: Tensor) -> Tensor:
    r""":math:`p_j - p_i` per edge (``edge_index[0] = j``, ``[1] = i``), shape ``[E, D]``."""
    return pos.index_select(0, edge_index[0]) - pos.index_select(0, edge_index[1])


def distance(pos: Tensor, edge_index: Tensor) -> Tensor:
    r""":math:`\lVert p_j - p_i \rVert`, shape ``[E, 1]``."""
    return safe_norm(edge_vectors(pos, edge_index), keepdim=True)


def position_orientation_invariants(pos: Tensor, ori: Tensor, edge_index: Tensor) -> Tensor:
    r"""The invariants :math:`(a, b, c)` of position-orientation point clouds.

    Args:
        pos: ``[N, 3]`` positions.
        ori: ``[N, 3]`` unit orientations.
        edge_index: ``[2, E]``, ``[0]`` source :math:`j`, ``[1]`` target :math:`i`.

    Returns:
        ``[E, 3]`` with columns :math:`a = \mathbf r \cdot o_i`,
        :math:`b = \lVert \mathbf r - a o_i \rVert`, :math:`c = o_i \cdot o_j`.
    """
    rel = edge_vectors(pos, edge_index)
    o_i = ori.index_select(0, edge_index[1])
    o_j = ori.index_select(0, edge_index[0])
    a = (rel * o_i).sum(-1, keepdim=True)
    b = safe_norm(rel - a * o_i, keepdim=True)
    c = (o_i * o_j).sum(-1, keepdim=True)
    return torch.cat([a, b, c], -1)


def bundle_spatial_invariants(rel: Tensor, grid: Tensor) -> Tensor:
    r"""Spatial invariants of :math:`\mathbb R^3 \times S^2` over a shared grid.

    Args:
        rel: edge vectors :math:`\mathbf r = p_j - p_i`, ``[E, 3]``.
        grid: orientations :math:`o_k`, ``[O, 3]``.

    Returns:
        ``[E, O, 2]``: :math:`(\mathbf r \cdot o_k,\ \lVert \mathbf r -
        (\mathbf r \cdot o_k) o_k \rVert)`.
    """
    a = rel @ grid.t()                                                # [E, O]
    perp = rel.unsqueeze(1) - a.unsqueeze(-1) * grid.unsqueeze(0)     # [E, O, 3]
    return torch.stack([a, safe_norm(perp)], -1)


def bundle_spatial_invariants_2d(rel: Tensor, grid: Tensor) -> Tensor:
    r"""Spatial invariants of :math:`\mathbb R^2 \times S^1` (SE(2)).

    Args:
        rel: ``[E, 2]``.
        grid: ``[O, 2]`` unit vectors.

    Returns:
        ``[E, O, 2]``: :math:`(\mathbf r \cdot o_k,\ \mathbf r \cdot o_k^\perp)`,
        :math:`o^\perp = (-o_y, o_x)`; the second is signed.
    """
    perp = torch.stack([-grid[:, 1], grid[:, 0]], -1)
    return torch.stack([rel @ grid.t(), rel @ perp.t()], -1)


def bundle_fiber_invariants(grid: Tensor) -> Tensor:
    r""":math:`o_k \cdot o_l` for a grid ``[O, D]``, shape ``[O, O, 1]``."""
    return (grid @ grid.t()).unsqueeze(-1)

r"""Deterministic orientation grids on :math:`S^2` and :math:`S^1`."""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["fibonacci_sphere", "circle_grid"]


def fibonacci_sphere(num: int, dtype: torch.dtype = torch.float32,
                     device=None) -> Tensor:
    r"""``num`` nearly uniform unit vectors on :math:`S^2` from the Fibonacci
    lattice: point :math:`k` has height :math:`z_k = 1 - (2k + 1)/n` and
    azimuth :math:`\varphi_k = k \cdot \pi (3 - \sqrt 5)` (the golden angle).

    The grid depends on ``num`` only (no random state), so two runs and two
    machines get the same orientations up to the rounding of ``cos``/``sin``.

    Args:
        num: number of orientations :math:`O \ge 1`.
        dtype, device: of the result (computed in float64, then cast).

    Returns:
        Tensor of shape ``[O, 3]`` with unit rows.

    Example:
        >>> grid = fibonacci_sphere(12)
        >>> grid.shape, bool(torch.allclose(grid.norm(dim=-1), torch.ones(12)))
        (torch.Size([12, 3]), True)
    """
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(f"fibonacci_sphere: num must be a positive int, got {num!r}")
    k = torch.arange(num, dtype=torch.float64)
    z = 1.0 - (2.0 * k + 1.0) / num
    rho = torch.sqrt((1.0 - z * z).clamp_min(0.0))
    phi = k * (math.pi * (3.0 - math.sqrt(5.0)))
    out = torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], dim=-1)
    return out.to(dtype=dtype, device=device)


def circle_grid(num: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    r"""``num`` equally spaced unit vectors on :math:`S^1`,
    :math:`(\cos 2\pi k/n, \sin 2\pi k/n)`.

    Returns:
        Tensor of shape ``[O, 2]``.
    """
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(f"circle_grid: num must be a positive int, got {num!r}")
    theta = torch.arange(num, dtype=torch.float64) * (2.0 * math.pi / num)
    return torch.stack([torch.cos(theta), torch.sin(theta)], -1).to(dtype=dtype, device=device)

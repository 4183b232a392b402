r"""Smooth cutoffs that take edge weights to 0 at the radius."""
from __future__ import annotations

from torch import Tensor

__all__ = ["polynomial_cutoff"]


def polynomial_cutoff(dist: Tensor, r: float, p: int = 6) -> Tensor:
    r"""The polynomial envelope

    .. math::
        u(x) = 1 - \tfrac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1}
               - \tfrac{p(p+1)}{2} x^{p+2}, \qquad x = d / r,

    for :math:`x < 1` and :math:`0` beyond. It is the unique polynomial of
    this form with :math:`u(0) = 1` and :math:`u(1) = u'(1) = u''(1) = 0`, so
    a kernel multiplied by it is twice continuously differentiable when an
    edge crosses the radius (edges appearing or disappearing do not jump
    the energy or the forces).

    Args:
        dist: distances, any shape.
        r: cutoff radius ``> 0``.
        p: the exponent, ``>= 1``.

    Returns:
        Tensor of the shape of ``dist`` with values in :math:`[0, 1]`.

    Example:
        >>> import torch
        >>> polynomial_cutoff(torch.tensor([0.0, 1.0, 2.0]), r=1.0).tolist()
        [1.0, 0.0, 0.0]
    """
    if r <= 0:
        raise ValueError(f"r must be positive, got {r}")
    if p < 1:
        raise ValueError(f"p must be at least 1, got {p}")
    x = (dist / r).clamp(min=0.0, max=1.0)
    xp = x ** p
    out = (1.0 - 0.5 * (p + 1) * (p + 2) * xp + p * (p + 2) * xp * x
           - 0.5 * p * (p + 1) * xp * x * x)
    return out * (dist < r)

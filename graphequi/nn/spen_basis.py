r"""Bases of the permutation equivariant linear maps between order-0, 1 and 2
tensors (Maron, Ben-Hamu, Shamir, Lipman, *Invariant and Equivariant Graph
Networks*, ICLR 2019), on batches of dense tensors of one size :math:`m`.

For :math:`X \in \mathbb{R}^{m \times m}` and :math:`v \in \mathbb{R}^m` let

.. math::
    d_i = X_{ii},\quad r_i = \tfrac{1}{m}\textstyle\sum_j X_{ij},\quad
    c_j = \tfrac{1}{m}\textstyle\sum_i X_{ij},\quad
    s_d = \tfrac{1}{m}\textstyle\sum_i X_{ii},\quad
    s_a = \tfrac{1}{m^2}\textstyle\sum_{ij} X_{ij},\quad
    s_v = \tfrac{1}{m}\textstyle\sum_i v_i

(sums normalised by the true size :math:`m`, which keeps the maps of
different sizes on one scale). The basis elements, in the order the
``[..., k, ...]`` axis of each function lists them:

* 2 -> 2 (15): :math:`X_{ij}, X_{ji}, \delta_{ij} d_i, \delta_{ij} r_i,
  \delta_{ij} c_i, \delta_{ij} s_d, \delta_{ij} s_a, r_i, r_j, c_i, c_j,
  d_i, d_j, s_d, s_a`;
* 2 -> 1 (5): :math:`d_i, r_i, c_i, s_d, s_a`;
* 1 -> 2 (5): :math:`\delta_{ij} v_i, v_i, v_j, \delta_{ij} s_v, s_v`;
* 1 -> 1 (2): :math:`v_i, s_v`;
* 2 -> 0 (2): :math:`s_d, s_a`; 1 -> 0 (1): :math:`s_v`.

The counts are the Bell numbers :math:`b(4) = 15`, :math:`b(3) = 5`,
:math:`b(2) = 2`, :math:`b(1) = 1` (for :math:`m \ge 4`, :math:`m \ge 3`,
... the elements are linearly independent). These stacked forms are the
definition; :class:`graphequi.nn.SPENConv` applies the same maps fused,
without materialising the stack.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["basis_2_to_2", "basis_2_to_1", "basis_1_to_2", "basis_1_to_1", "basis_2_to_0",
           "basis_1_to_0", "NUM_BASIS"]

#: number of basis elements per (input order, output order)
NUM_BASIS = {(2, 2): 15, (2, 1): 5, (1, 2): 5, (1, 1): 2, (2, 0): 2, (1, 0): 1}


def _stats2(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    m = x.size(-1)
    d = x.diagonal(dim1=-2, dim2=-1)
    r = x.sum(dim=-1) / m
    c = x.sum(dim=-2) / m
    return d, r, c, d.sum(dim=-1) / m, r.sum(dim=-1) / m


def basis_2_to_2(x: Tensor) -> Tensor:
    """``[B, C, m, m] -> [B, C, 15, m, m]``."""
    m = x.size(-1)
    d, r, c, sd, sa = _stats2(x)
    eye = torch.eye(m, dtype=x.dtype, device=x.device)
    full = lambda t: t.expand(x.shape)  # noqa: E731
    row = lambda t: full(t.unsqueeze(-1))  # noqa: E731  (depends on i)
    col = lambda t: full(t.unsqueeze(-2))  # noqa: E731  (depends on j)
    diag = lambda t: torch.diag_embed(t)  # noqa: E731
    const = lambda t: full(t[..., None, None])  # noqa: E731
    terms = [x, x.transpose(-1, -2), diag(d), diag(r), diag(c), const(sd) * eye, const(sa) * eye,
             row(r), col(r), row(c), col(c), row(d), col(d), const(sd), const(sa)]
    return torch.stack(terms, dim=2)


def basis_2_to_1(x: Tensor) -> Tensor:
    """``[B, C, m, m] -> [B, C, 5, m]``."""
    d, r, c, sd, sa = _stats2(x)
    return torch.stack([d, r, c, sd.unsqueeze(-1).expand_as(d), sa.unsqueeze(-1).expand_as(d)], dim=2)


def basis_1_to_2(v: Tensor) -> Tensor:
    """``[B, C, m] -> [B, C, 5, m, m]``."""
    m = v.size(-1)
    shape = v.shape + (m,)
    s = v.mean(dim=-1)
    eye = torch.eye(m, dtype=v.dtype, device=v.device)
    terms = [torch.diag_embed(v), v.unsqueeze(-1).expand(shape), v.unsqueeze(-2).expand(shape),
             s[..., None, None] * eye, s[..., None, None].expand(shape)]
    return torch.stack(terms, dim=2)


def basis_1_to_1(v: Tensor) -> Tensor:
    """``[B, C, m] -> [B, C, 2, m]``."""
    return torch.stack([v, v.mean(dim=-1, keepdim=True).expand_as(v)], dim=2)


def basis_2_to_0(x: Tensor) -> Tensor:
    """``[B, C, m, m] -> [B, C, 2]``."""
    _, _, _, sd, sa = _stats2(x)
    return torch.stack([sd, sa], dim=-1)


def basis_1_to_0(v: Tensor) -> Tensor:
    """``[B, C, m] -> [B, C, 1]``."""
    return v.mean(dim=-1, keepdim=True)

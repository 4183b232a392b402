r"""Kernel bases from invariants: a polynomial embedding followed by a small
MLP, evaluated once per forward and shared by every layer."""
from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

__all__ = ["PolynomialEmbedding", "KernelBasis"]


class PolynomialEmbedding(nn.Module):
    r"""All monomials of the ``in_dim`` invariants of total degree
    :math:`1 \dots d`: for :math:`(a, b)` and :math:`d = 2`,
    :math:`(a, b, a^2, ab, b^2)`.

    Args:
        in_dim: number of invariants :math:`k`.
        degree: the largest total degree :math:`d \ge 1`.

    Shapes:
        input ``[..., k]``, output ``[..., M]`` with :math:`M =
        \binom{k + d}{d} - 1`.
    """

    def __init__(self, in_dim: int, degree: int):
        super().__init__()
        if in_dim < 1 or degree < 1:
            raise ValueError(f"in_dim and degree must be >= 1, got {in_dim}, {degree}")
        self.in_dim, self.degree = in_dim, degree
        # Index in_dim stands for the constant 1, so that combinations with
        # replacement of length d enumerate every monomial of degree <= d once.
        combos = [c for c in itertools.combinations_with_replacement(range(in_dim + 1), degree)
                  if any(i < in_dim for i in c)]
        self.register_buffer("combos", torch.tensor(combos, dtype=torch.long), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.combos.size(0)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(-1) != self.in_dim:
            raise ValueError(f"{self}: expected {self.in_dim} invariants in the last dim, "
                             f"got shape {tuple(x.shape)}")
        x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1)
        return x1[..., self.combos].prod(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(in_dim={self.in_dim}, degree={self.degree})"


class KernelBasis(nn.Module):
    r""":math:`\phi(x) = \mathrm{GELU}(W_2\, \mathrm{GELU}(W_1\,
    \mathrm{poly}_d(x)))`: the basis from which every layer's kernel is a
    linear combination (one ``Linear(basis_dim, C)`` per layer).

    Args:
        in_dim: number of invariants.
        hidden: width of the MLP.
        basis_dim: output width.
        degree: polynomial degree.
    """

    def __init__(self, in_dim: int, hidden: int, basis_dim: int, degree: int = 3):
        super().__init__()
        self.poly = PolynomialEmbedding(in_dim, degree)
        self.mlp = nn.Sequential(nn.Linear(self.poly.out_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, basis_dim), nn.GELU())
        self.basis_dim = basis_dim

    def reset_parameters(self):
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.poly(x))

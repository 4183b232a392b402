r"""A smooth cutoff of edge weights at the radius."""
from __future__ import annotations

import copy

from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from graphequi.geometry import distance, polynomial_cutoff

__all__ = ["PolynomialCutoff"]


@functional_transform("polynomial_cutoff")
class PolynomialCutoff(BaseTransform):
    r"""``edge_weight`` :math:`= u(\lVert p_j - p_i \rVert / r)` with the
    :math:`C^2` envelope of :func:`graphequi.geometry.polynomial_cutoff`
    (1 at distance 0, 0 with vanishing first and second derivatives at
    :math:`r`).

    Args:
        r: cutoff radius ``> 0`` (normally the radius of the graph).
        p: the envelope's exponent.
    """

    def __init__(self, r: float, p: int = 6):
        if r <= 0:
            raise ValueError(f"r must be positive, got {r}")
        self.r, self.p = r, p

    def forward(self, data):
        out = copy.copy(data)
        out.edge_weight = polynomial_cutoff(distance(data.pos, data.edge_index)[:, 0], self.r, self.p)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(r={self.r}, p={self.p})"

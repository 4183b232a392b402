r"""Write PONITA's bi-invariant edge attributes into a graph."""
from __future__ import annotations

import copy

from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from graphequi.geometry import (bundle_fiber_invariants, bundle_spatial_invariants, distance,
                                edge_vectors, fibonacci_sphere, position_orientation_invariants)

__all__ = ["BundleEdgeAttributes"]


@functional_transform("bundle_edge_attributes")
class BundleEdgeAttributes(BaseTransform):
    r"""Edge invariants of :math:`\mathbb R^3`, of position-orientation point
    clouds, or of the fiber bundle :math:`\mathbb R^3 \times S^2` over a
    Fibonacci grid (Bekkers et al., ICLR 2024).

    * ``num_ori = 0``: ``edge_attr`` :math:`[E, 1]`, the distance.
    * ``num_ori = -1``: needs ``data.ori`` ``[N, 3]`` (e.g. from
      :class:`PositionOrientationGraph`); ``edge_attr`` :math:`[E, 3] = (a,
      b, c)`.
    * ``num_ori > 0``: ``edge_attr`` :math:`[E, O, 2]` (spatial) and
      ``fiber_attr`` :math:`[1, O, O, 1]` (a batch of :math:`B` graphs holds
      :math:`B` identical copies, ``[B, O, O, 1]``).

    Args:
        num_ori: ``0``, ``-1`` or the grid size :math:`O`.
    """

    def __init__(self, num_ori: int = 0):
        if not isinstance(num_ori, int) or num_ori < -1:
            raise ValueError(f"num_ori must be -1, 0 or positive, got {num_ori!r}")
        self.num_ori = num_ori

    def forward(self, data):
        out = copy.copy(data)
        if self.num_ori == 0:
            out.edge_attr = distance(data.pos, data.edge_index)
        elif self.num_ori == -1:
            if getattr(data, "ori", None) is None:
                raise ValueError("num_ori=-1 needs node orientations data.ori [N, 3]")
            out.edge_attr = position_orientation_invariants(data.pos, data.ori, data.edge_index)
        else:
            grid = fibonacci_sphere(self.num_ori, dtype=data.pos.dtype, device=data.pos.device)
            out.edge_attr = bundle_spatial_invariants(edge_vectors(data.pos, data.edge_index), grid)
            out.fiber_attr = bundle_fiber_invariants(grid).unsqueeze(0)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_ori={self.num_ori})"

r"""Geometry of point clouds: orientation grids, radius and fully connected
graphs, bi-invariant edge attributes, cutoffs and position-orientation
lifting (the key space :math:`\mathbb R^3 \times S^2` of PONITA, Bekkers et
al., ICLR 2024).

* :func:`fibonacci_sphere`, :func:`circle_grid` -- deterministic grids on
  :math:`S^2`, :math:`S^1`.
* :func:`radius_graph`, :func:`fully_connected_graph` -- ``torch_cluster``'s
  conventions, cell lists in pure PyTorch, :math:`O(N + E)` memory.
* :func:`distance`, :func:`position_orientation_invariants`,
  :func:`bundle_spatial_invariants`, :func:`bundle_fiber_invariants`,
  :func:`bundle_spatial_invariants_2d` -- the invariants.
* :func:`polynomial_cutoff` -- a :math:`C^2` envelope.
* :func:`lift_edges`, :func:`lifted_orientations` -- edges become
  position-orientation nodes.
"""
from .cutoff import polynomial_cutoff
from .invariants import (bundle_fiber_invariants, bundle_spatial_invariants,
                         bundle_spatial_invariants_2d, distance, edge_vectors,
                         position_orientation_invariants, safe_norm, unit)
from .lift import LiftedGraph, lift_edges, lifted_orientations
from .radius import fully_connected_graph, radius_graph
from .sphere import circle_grid, fibonacci_sphere

__all__ = ["fibonacci_sphere", "circle_grid", "radius_graph", "fully_connected_graph",
           "distance", "edge_vectors", "safe_norm", "unit", "position_orientation_invariants",
           "bundle_spatial_invariants", "bundle_fiber_invariants", "bundle_spatial_invariants_2d",
           "polynomial_cutoff", "LiftedGraph", "lift_edges", "lifted_orientations"]

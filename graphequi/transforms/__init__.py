"""PyG transforms of graphequi.

* :class:`PolynomialFeatures` -- equivariant polynomial features (node, edge
  or pair level) computed with the batched engine of :mod:`graphequi.poly`.
* :class:`ValidateGraph` -- the value checks (index ranges, empty graphs,
  NaN) that graphequi's layers leave out of ``forward``, run once where data
  enters.
* :class:`RadiusGraph`, :class:`FullyConnected` -- point-cloud graphs.
* :class:`PositionOrientationGraph` -- directed edges become
  position-orientation nodes.
* :class:`BundleEdgeAttributes` -- PONITA's bi-invariant edge attributes.
* :class:`PolynomialCutoff` -- a smooth ``edge_weight`` envelope.
* :class:`EgoNetBags` -- bags of k-hop ego-networks (nodes and pairs, flat
  with per-subgraph sizes) for :class:`graphequi.nn.SPEN`.
"""
from .ego_net_bags import EgoNetBags, EgoNetData
from .polynomial_features import PolynomialFeatures
from .bundle_attributes import BundleEdgeAttributes
from .cutoff import PolynomialCutoff
from .point_cloud_graph import FullyConnected, RadiusGraph
from .position_orientation import PositionOrientationData, PositionOrientationGraph
from .validate import ValidateGraph, validate_graph

__all__ = ["PolynomialFeatures", "ValidateGraph", "validate_graph", "RadiusGraph", "FullyConnected",
           "PositionOrientationGraph", "PositionOrientationData", "BundleEdgeAttributes",
           "PolynomialCutoff",
           "EgoNetBags", "EgoNetData"]

"""PyG transforms of graphequi.

* :class:`PolynomialFeatures` -- equivariant polynomial features (node, edge
  or pair level) computed with the batched engine of :mod:`graphequi.poly`.
* :class:`ValidateGraph` -- the value checks (index ranges, empty graphs,
  NaN) that graphequi's layers leave out of ``forward``, run once where data
  enters.
* :class:`EgoNetBags` -- bags of k-hop ego-networks (nodes and pairs, flat
  with per-subgraph sizes) for :class:`graphequi.nn.SPEN`.
"""
from .ego_net_bags import EgoNetBags, EgoNetData
from .polynomial_features import PolynomialFeatures
from .validate import ValidateGraph, validate_graph

__all__ = ["EgoNetBags", "EgoNetData", "PolynomialFeatures", "ValidateGraph", "validate_graph"]

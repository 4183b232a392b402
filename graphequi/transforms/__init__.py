"""PyG transforms of graphequi.

* :class:`PolynomialFeatures` -- equivariant polynomial features (node, edge
  or pair level) computed with the batched engine of :mod:`graphequi.poly`.
"""
from .polynomial_features import PolynomialFeatures

__all__ = ["PolynomialFeatures"]

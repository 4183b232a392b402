"""Expressivity analysis: exact WL oracles, hard graph pairs, loaders and the
BREC pair-separation protocol.

* :func:`wl_hash`, :func:`wl_equivalent`, :func:`wl_colors` -- colour
  refinement (``k=1``) and folklore 2-WL (``k=2``);
* generators: :func:`csl_graph`, :func:`cfi_pair`, :func:`rook_graph`,
  :func:`shrikhande_graph`, :func:`classic_pairs`, :func:`random_regular_pair`;
* :class:`GraphPair`, :func:`to_data`.
"""
from ._graphs import GraphPair, as_simple_graph, to_data, to_networkx
from .generators import (
    CSL_SKIPS,
    cfi_pair,
    classic_pairs,
    csl_graph,
    random_regular_pair,
    rook_graph,
    shrikhande_graph,
)
from .wl import wl_colors, wl_equivalent, wl_hash

__all__ = [
    "GraphPair",
    "as_simple_graph",
    "to_data",
    "to_networkx",
    "wl_hash",
    "wl_equivalent",
    "wl_colors",
    "CSL_SKIPS",
    "csl_graph",
    "cfi_pair",
    "rook_graph",
    "shrikhande_graph",
    "classic_pairs",
    "random_regular_pair",
]

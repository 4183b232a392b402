r"""Equivariant polynomials of graphs (Puny et al., ICML 2023).

* :class:`Multigraph` -- a multigraph with 0/1/2 marked nodes, compared up to
  isomorphism; it indexes the polynomial :math:`P_H(X)`.
* :func:`basis` -- all non-isomorphic multigraphs of a degree (a basis of the
  invariant / node- / pair-equivariant polynomials).
* :func:`plan` / :func:`evaluate` -- joint contraction plans run as batched
  matmuls.
* :func:`select` -- named polynomial sets such as ``'ppgn++'``.
"""
from .multigraph import Multigraph
from .basis import basis
from .plan import Plan, plan
from .evaluate import evaluate, evaluate_each
from .select import ppgn_computable, select

__all__ = ["Multigraph", "basis", "Plan", "plan", "evaluate", "evaluate_each", "select", "ppgn_computable"]

r"""Equivariant polynomials of graphs (Puny et al., ICML 2023).

* :class:`Multigraph` -- a multigraph with 0/1/2 marked nodes, compared up to
  isomorphism; it indexes the polynomial :math:`P_H(X)`.
* :func:`basis` -- all non-isomorphic multigraphs of a degree (a basis of the
  invariant / node- / pair-equivariant polynomials).
* :func:`plan` / :func:`evaluate` / :func:`evaluate_each` -- joint
  contraction plans run as batched matmuls (``evaluate_each`` takes a mix
  of invariant, node- and pair-level polynomials).
* :func:`triangle_count` -- :math:`\operatorname{tr}(A^3) / 6` of simple graphs;
* :func:`select` -- named polynomial sets such as ``'ppgn++'``, chosen by
  :func:`ppgn_computable` (the PPGN elimination rule).

Example:
    >>> import torch
    >>> from graphequi.poly import basis, evaluate
    >>> A = torch.ones(4, 4) - torch.eye(4)               # K4
    >>> polys = basis(2, 1, loops=False, connected=True)  # double edge, wedge at / from the mark
    >>> evaluate(polys, A)
    tensor([[3., 9., 9.],
            [3., 9., 9.],
            [3., 9., 9.],
            [3., 9., 9.]])
"""
from .multigraph import Multigraph
from .enumeration import basis
from .planning import Plan, plan
from .evaluation import TRIANGLE, evaluate, evaluate_each, triangle_count
from .selection import PPGN_ELIMINATIONS, ppgn_computable, ppgn_elimination, select

__all__ = ["Multigraph", "basis", "Plan", "plan", "evaluate", "evaluate_each", "select", "ppgn_computable",
           "ppgn_elimination", "PPGN_ELIMINATIONS", "triangle_count", "TRIANGLE"]

"""Symbolic expressivity, re-exported from where each part lives.

* :mod:`graphequi.expressivity.certificates` -- :class:`State`,
  :class:`Step`, :class:`Certificate`, :func:`verify`;
* :mod:`graphequi.expressivity.banks` -- rules, :class:`ContractionBank`,
  the built-in banks and the registry (:func:`get_bank`);
* :mod:`graphequi.expressivity.search` -- :func:`certify`,
  :func:`is_computable`;
* :mod:`graphequi.expressivity.analysis` -- :func:`analyze` and
  :class:`ExpressivityTable`;
* :mod:`graphequi.expressivity.separation` -- :func:`separating_polynomials`.

Example:
    >>> from graphequi.poly import Multigraph
    >>> certify(Multigraph(3, [(0, 1), (1, 2), (2, 0)]), "ppgn") is not None
    True
"""
from .analysis import ExpressivityRow, ExpressivityTable, analyse, analyze, polynomial_family
from .banks import (
    ContractionBank,
    EliminationRule,
    available_banks,
    elimination_rule,
    get_bank,
    register_bank,
)
from .certificates import Certificate, CertificateError, State, Step, verify
from .search import certify, is_computable
from .separation import separating_polynomials

__all__ = [
    "State",
    "Step",
    "Certificate",
    "CertificateError",
    "EliminationRule",
    "elimination_rule",
    "ContractionBank",
    "register_bank",
    "get_bank",
    "available_banks",
    "certify",
    "is_computable",
    "verify",
    "polynomial_family",
    "ExpressivityRow",
    "ExpressivityTable",
    "analyze",
    "analyse",
    "separating_polynomials",
]

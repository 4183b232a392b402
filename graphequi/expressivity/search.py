r"""The search for a certificate: is a polynomial computable in a bank?

:func:`certify` runs a depth-first search over the bank's moves
(:meth:`~graphequi.expressivity.ContractionBank.moves`) from the tensor
network of the polynomial, memoizing the states from which no accepting
state is reachable. The search is exhaustive: ``None`` means that no
sequence of the bank's eliminations (and features) reaches an output.

Example:
    >>> from graphequi.poly import Multigraph
    >>> square = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)])   # 4-cycles, invariant
    >>> certify(square, "mpnn") is None, certify(square, "ppgn") is not None
    (True, True)
    >>> cert = certify(Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]), "ppgn")
    >>> cert is None   # K4 needs a 3-way contraction
    True
"""
from __future__ import annotations

import functools
from typing import Optional, Union

from graphequi.poly import Multigraph

from .banks import ContractionBank, as_bank
from .certificates import Certificate, State

__all__ = ["certify", "is_computable"]


def certify(poly: Multigraph, bank: Union[str, ContractionBank]) -> Optional[Certificate]:
    """Search a contraction sequence of ``bank`` that computes ``P_poly``.

    Args:
        poly: the multigraph (0, 1 or 2 marks; edges read as undirected
            structure: all built-in rules are closed under transposition).
        bank: a bank or a registered name (``'mpnn'``, ``'ppgn'``,
            ``'ppgn++(6)'``, ``'subgraph'``, ``'spen'``).

    Returns:
        A :class:`~graphequi.expressivity.Certificate`, or ``None`` when no
        sequence exists. Its ``poly`` is the canonical representative of
        ``poly`` (step node ids refer to it). Results are cached per
        (isomorphism class, bank).
    """
    if not isinstance(poly, Multigraph):
        raise TypeError(f"poly must be a graphequi.poly.Multigraph, got {type(poly).__name__}")
    return _certify_cached(poly.canonical(), as_bank(bank))


def is_computable(poly: Multigraph, bank: Union[str, ContractionBank]) -> bool:
    """Whether :func:`certify` finds a certificate."""
    return certify(poly, bank) is not None


@functools.lru_cache(maxsize=100_000)
def _certify_cached(poly: Multigraph, bank: ContractionBank) -> Optional[Certificate]:
    failed: set = set()
    for prefix, state in bank.starts(poly):
        rest = _search(bank, state, failed)
        if rest is not None:
            return Certificate(poly, bank.name, tuple(prefix) + rest)
    return None


def _search(bank: ContractionBank, state: State, failed: set) -> Optional[tuple]:
    if bank.accepts(state):
        return ()
    key = state.key()
    if key in failed:
        return None
    for step, nxt in bank.moves(state):
        rest = _search(bank, nxt, failed)
        if rest is not None:
            return (step,) + rest
    failed.add(key)
    return None

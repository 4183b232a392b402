r"""Contraction sequences as certificates of computability.

A basis polynomial

.. math::

    P_H(X)_{i_1 i_2} = \sum_{j: V \to [n],\ j(a) = i_1,\ j(b) = i_2}
        \ \prod_{(r, s) \in E} X_{j(r), j(s)}

is computed by contracting the tensor network of ``H`` (one factor
:math:`X_{rs}` per edge) down to its marked nodes. While contracting, the
intermediate :class:`State` is again a tensor network: a set of remaining
nodes and of factors, each a tensor whose order is the number of distinct
nodes in its scope. One **elimination** of an unmarked node ``x`` multiplies
all factors that touch ``x`` and sums ``x`` out:

.. math::

    T_{N(x)} = \sum_{x} \prod_{F \ni x} F ,

which creates a factor on the distinct neighbors :math:`N(x)` of ``x``.
Products of factors on the same scope (Hadamard products of features, i.e.
products of polynomials) are free. A :class:`Certificate` is a sequence of
such :class:`Step` s; :func:`verify` replays it symbolically against a
contraction bank (:mod:`graphequi.expressivity.banks`) and
:meth:`Certificate.evaluate` numerically (one ``numpy.einsum`` per step).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from graphequi._deprecation import renamed_function
from graphequi.poly import Multigraph

__all__ = ["State", "Step", "Certificate", "CertificateError", "verify"]

Factor = tuple[tuple[int, ...], str]  # (scope, kind); kind 'X' = input edge/loop, 'T' = computed


@dataclass(frozen=True)
class State:
    """An intermediate tensor network: remaining nodes and factors.

    Attributes:
        nodes: remaining node ids.
        factors: sorted tuple of ``(scope, kind)``. ``kind`` is ``'X'`` for an
            input edge (scope ``(u, v)``; ``(u, u)`` is a loop, i.e. a
            diagonal entry), ``'T'`` for a computed tensor on the sorted
            distinct nodes ``scope``, and ``'F<i>'`` for an input polynomial
            feature on its (ordered) marks.
        marks: the marked nodes of the polynomial (never eliminated).
        root: the subgraph root of rooted banks (``None`` otherwise, or once
            the root has been pooled).
    """

    nodes: frozenset
    factors: tuple
    marks: tuple
    root: Optional[int] = None

    @staticmethod
    def of(poly: Multigraph) -> "State":
        """The tensor network of ``poly``: one ``'X'`` factor per edge."""
        factors = tuple(sorted(((tuple(e), "X") for e in poly.edges)))
        return State(frozenset(range(poly.num_nodes)), factors, tuple(poly.marked))

    # -- queries used by rules ------------------------------------------------
    def is_marked(self, x: int) -> bool:
        return x in self.marks

    def touching(self, x: int) -> list:
        """Factors whose scope contains ``x``."""
        return [f for f in self.factors if x in f[0]]

    def neighbors(self, x: int) -> frozenset:
        """Distinct nodes sharing a factor with ``x`` (``x`` excluded)."""
        out = set()
        for scope, _ in self.factors:
            if x in scope:
                out.update(scope)
        out.discard(x)
        return frozenset(out)

    neighbours = renamed_function("State.neighbours", "State.neighbors", neighbors)

    def between(self, x: int, y: int) -> list:
        """Factors whose distinct scope is exactly ``{x, y}``."""
        return [f for f in self.factors if set(f[0]) == {x, y}]

    def has_edge(self, x: int, y: int) -> bool:
        """Whether an input edge ``x -- y`` (either direction) is still present."""
        return any(kind == "X" for _, kind in self.between(x, y))

    # -- transitions ------------------------------------------------------------
    def eliminate(self, x: int) -> "State":
        """Sum ``x`` out: all factors touching ``x`` become one ``'T'`` factor
        on the sorted neighbors of ``x``."""
        scope = tuple(sorted(self.neighbors(x)))
        kept = [f for f in self.factors if x not in f[0]]
        kept.append((scope, "T"))
        root = None if self.root == x else self.root
        return State(self.nodes - {x}, merge_factors(kept), self.marks, root)

    def key(self) -> tuple:
        return (self.nodes, self.factors, self.root)


def merge_factors(factors: Iterable[Factor]) -> tuple:
    """Canonical factor tuple: computed factors on the same node set are one
    product (a Hadamard product is free), input edges and features stay."""
    out, seen_t = [], set()
    for scope, kind in factors:
        if kind == "T":
            if scope in seen_t:
                continue
            seen_t.add(scope)
        out.append((scope, kind))
    return tuple(sorted(out))


def oriented(u: int, v: int, directed: bool) -> tuple:
    """The edge ``u -- v`` as a key: sorted unless ``directed``."""
    return (u, v) if directed or u <= v else (v, u)


def drop_feature_edges(items: Sequence[tuple], feature: Multigraph, mapping: Sequence[int]) -> list:
    """``items`` without the input edges that the feature pattern, placed by
    ``mapping`` (``mapping[p]`` is the image of feature node ``p``), replaces.

    Args:
        items: tuples starting with ``(scope, kind)``; only ``kind == 'X'``
            (input edges) can be dropped, each at most once per pattern edge.
        feature: the feature's multigraph.
        mapping: images of the feature's nodes.
    """
    need = Counter(oriented(mapping[u], mapping[v], feature.directed) for u, v in feature.edges)
    kept = []
    for item in items:
        scope, kind = item[0], item[1]
        key = oriented(scope[0], scope[1], feature.directed) if kind == "X" else None
        if key is not None and need[key] > 0:
            need[key] -= 1
            continue
        kept.append(item)
    return kept


@dataclass(frozen=True)
class Step:
    """One step of a contraction sequence.

    Attributes:
        action: ``'root'`` (choose the subgraph root ``node``), ``'eliminate'``
            (sum ``node`` out) or ``'feature'`` (replace a pattern by an input
            feature).
        rule: name of the bank rule that allows the step.
        node: the node chosen / eliminated (``None`` for features).
        scope: scope of the factor the step creates (sorted neighbors for an
            elimination, the feature's image marks for a feature).
        detail: rule-specific witness, e.g. SPEN's ego-net root ``(r,)`` or
            ``(feature, mapping)`` where ``mapping[p]`` is the image of feature
            node ``p``.
    """

    action: str
    rule: str
    node: Optional[int] = None
    scope: tuple = ()
    detail: tuple = ()

    def __str__(self) -> str:
        if self.action == "root":
            return f"root: subgraphs marked at node {self.node}"
        if self.action == "feature":
            return f"{self.rule}: pattern -> factor on {self.scope}"
        extra = f" [{', '.join(map(str, self.detail))}]" if self.detail else ""
        return f"{self.rule}: sum over node {self.node} -> factor on {self.scope}{extra}"


class CertificateError(ValueError):
    """A certificate does not replay: a step is not allowed or does not match."""


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Certificate:
    """A contraction sequence that computes ``poly`` in bank ``bank``.

    ``str(cert)`` lists the steps; :func:`verify` replays them symbolically;
    :meth:`evaluate` executes them numerically.
    """

    poly: Multigraph
    bank: str
    steps: tuple

    def __str__(self) -> str:
        lines = [f"{self.poly!r} in {self.bank!r}:"]
        lines += [f"  {i + 1}. {s}" for i, s in enumerate(self.steps)]
        lines.append(f"  -> output on marks {self.poly.marked}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"poly": repr(self.poly), "bank": self.bank,
                "steps": [str(s) for s in self.steps]}

    def evaluate(self, X) -> np.ndarray:
        r"""Run the sequence numerically, one ``numpy.einsum`` per step.

        Args:
            X: matrix of shape ``(n, n)`` (array or tensor).

        Returns:
            :math:`P_H(X)` as float64 with shape ``()``, ``(n,)`` or
            ``(n, n)`` for 0, 1 or 2 marks.
        """
        X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != X.shape[1]:
            raise ValueError(f"X must have shape (n, n), got {X.shape}")
        n = X.shape[0]
        poly = self.poly
        if poly.num_nodes > len(_LETTERS):
            raise ValueError("evaluate supports at most 52 nodes")
        # (scope, kind, array), kinds as in State.factors; a loop (u, u) reads a diagonal
        tensors: list = [(tuple(e), "X", X) for e in poly.edges]

        def einsum(items, out_nodes):
            spec = ",".join("".join(_LETTERS[v] for v in item[0]) for item in items)
            spec += "->" + "".join(_LETTERS[v] for v in out_nodes)
            return np.einsum(spec, *[item[-1] for item in items]) if items else np.ones(())

        for step in self.steps:
            if step.action == "root":
                continue
            if step.action == "eliminate":
                x = step.node
                used = [t for t in tensors if x in t[0]]
                tensors = [t for t in tensors if x not in t[0]]
                if not used:
                    raise CertificateError(f"step {step}: node {x} has no factor")
                tensors.append((tuple(step.scope), "T", einsum(used, step.scope)))
            elif step.action == "feature":
                feature, mapping = step.detail
                value = einsum([(e, "X", X) for e in feature.edges], feature.marked)
                tensors = drop_feature_edges(tensors, feature, mapping)
                tensors.append((tuple(step.scope), step.rule, value))
            else:
                raise CertificateError(f"unknown step action {step.action!r}")
        marks = tuple(poly.marked)
        for m in marks:  # a mark without factors broadcasts
            tensors.append(((m,), "T", np.ones(n)))
        leftover = {v for item in tensors for v in item[0]} - set(marks)
        if leftover:
            raise CertificateError(f"nodes {sorted(leftover)} were never summed out")
        return einsum(tensors, marks)


def verify(certificate: Certificate, bank=None) -> None:
    """Replay a certificate symbolically with the bank's own moves.

    Args:
        certificate: the certificate to check.
        bank: a :class:`~graphequi.expressivity.ContractionBank` or a
            registered name (default: the certificate's bank).

    Raises:
        CertificateError: a step is not a move of ``bank`` in the state it
            is taken from, or the final state is not an output of ``bank``.
    """
    from .banks import as_bank  # banks build on this module's State and Step

    bank = as_bank(bank if bank is not None else certificate.bank)
    steps = tuple(certificate.steps)
    for prefix, state in bank.starts(certificate.poly):
        if steps[:len(prefix)] == tuple(prefix):
            break
    else:
        raise CertificateError(f"the certificate does not start like one of bank {bank.name!r} "
                               "(a rooted bank's certificate starts with a root step)")
    for step in steps[len(prefix):]:
        state = bank.replay(state, step)
    if not bank.accepts(state):
        raise CertificateError(f"final state {state} is not an output of bank {bank.name!r}")

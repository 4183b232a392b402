r"""Symbolic expressivity: which equivariant polynomials an architecture computes.

An architecture is described by its **contraction bank** (Puny, Lim, Kiani,
Maron, Lipman, *Equivariant Polynomials for Graph Neural Networks*, ICML 2023,
Sec. 4, "tensor contraction sequences"): the elementary contractions its layers
can perform on the tensors they hold. A basis polynomial

.. math::

    P_H(X)_{i_1 i_2} = \sum_{j: V \to [n],\ j(a) = i_1,\ j(b) = i_2}
        \ \prod_{(r, s) \in E} X_{j(r), j(s)}

is computed by contracting the tensor network of ``H`` (one factor
:math:`X_{rs}` per edge) down to its marked nodes. While contracting, the
intermediate state is again a multigraph-like *tensor network*: a set of
remaining nodes and of factors, each a tensor whose order is the number of
distinct nodes in its scope. One **elimination** of an unmarked node ``x``
multiplies all factors that touch ``x`` and sums ``x`` out:

.. math::

    T_{N(x)} = \sum_{x} \prod_{F \ni x} F ,

which creates a factor on the distinct neighbours :math:`N(x)` of ``x``.
Products of factors on the same scope (Hadamard products of features, i.e.
products of polynomials) are free in every bank: MLPs on features take them.
A bank names which eliminations its layers can perform; ``H`` is
*computable* when a sequence of them reaches the marked nodes. The returned
:class:`Certificate` is that sequence; it can be replayed symbolically
(:func:`verify`) and numerically (:meth:`Certificate.evaluate`, one
``numpy.einsum`` per step).

A found certificate proves computability. A failed search proves only that
no certificate exists in this bank (the paper's algorithm is the same kind
of search, and for ``'ppgn'`` it is the characterisation they use). Linear
combinations are not searched: a polynomial reachable only as a difference of
computable ones would be reported as not computable. The built-in banks do
not need them: each one's computable set matches a published
characterisation (tested: forests for ``'mpnn'``, elimination width 2 for
``'ppgn'``, forest-plus-one-node for ``'subgraph'`` invariants), and the
soundness tests against the WL oracles would catch a bank that claims too
much.

Built-in banks (see :func:`get_bank`):

* ``'mpnn'`` -- node-based message passing (Gilmer et al. 2017; edge features
  enter the message function). Order-1 intermediates; eliminates an unmarked
  node with one neighbour through input edges only (``ij,j->i``), plus the
  global readout (Puny et al. 2023, MPNN bank). Computes exactly the forest
  polynomials, matching the homomorphism expressivity of MPNNs (Zhang, Gai,
  Du, Ye, He, Wang, *Beyond Weisfeiler-Lehman*, ICLR 2024: forests).
* ``'ppgn'`` -- PPGN / 2-FWL (Maron et al. 2019). Order-2 intermediates and
  matrix products: eliminates an unmarked node with at most two distinct
  neighbours (``ij,jk->ik``; degree 1 is a row sum). This is the elimination
  rule of :func:`graphequi.poly.select` (Puny et al. 2023, PPGN bank);
  over simple graphs it accepts exactly the (marked) graphs of treewidth
  at most 2 (Dell, Grohe, Rattan 2018 for 2-FWL homomorphism counts).
* ``'ppgn++(k)'`` -- ``'ppgn'`` plus the polynomial features
  ``select('ppgn++', max_degree=k)`` given as input pair tensors (PPGN++,
  Puny et al. 2023, Sec. 6): a feature replaces a matching pattern (its
  unmarked nodes touch nothing else) by one factor on its marks.
* ``'subgraph'`` -- node-marking subgraph GNNs, DS-GNN style (Bevilacqua et
  al., ICLR 2022; Frasca et al., NeurIPS 2022): one root ``w`` is chosen
  (the marked node of a subgraph), an MPNN runs inside every subgraph, where
  edges to the root are node features, and subgraphs are pooled at the end
  (node-level: per node across subgraphs). Invariant case: ``H`` minus one
  node is a forest (Zhang et al. ICLR 2024, Subgraph GNN). A pair-level
  output ``h^{(a)}_b`` uses the root ``a``.
* ``'spen'`` -- SPEN (Mitton & Murray-Smith, *Subgraph Permutation
  Equivariant Networks*, 2021): bags of 1-hop ego-nets, order-2 permutation
  equivariant layers inside each ego-net (row sums, no matrix product), node
  and pair features shared across the ego-nets that contain them. A sum
  over ``x`` inside the ego-net of ``r`` is restricted to ``x ~ r``, so on a
  0/1 adjacency it contracts the edge :math:`X_{rx}`. Modelled rule: an
  unmarked ``x`` with at most two neighbours is eliminated when some
  ``r`` in :math:`\{x\} \cup N(x)` still has an *input edge* to every other
  node of :math:`\{x\} \cup N(x)` (all of them lie in the ego-net of ``r``);
  ``r = x`` is the sharing of pair features across ego-nets. Assumes the root
  of an ego-net is identifiable (as with ego-net+ marking) and a 0/1
  adjacency (the ego-net membership indicator is the edge itself).

Users build their own banks from :func:`elimination_rule` predicates (see
:class:`ContractionBank` and :func:`register_bank`).

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
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from graphequi.poly import Multigraph, basis

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
    "analyse",
    "separating_polynomials",
]

Factor = tuple[tuple[int, ...], str]  # (scope, kind); kind 'X' = input edge/loop, 'T' = computed


# ---------------------------------------------------------------------------
# Intermediate tensor networks
# ---------------------------------------------------------------------------
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

    def neighbours(self, x: int) -> frozenset:
        """Distinct nodes sharing a factor with ``x`` (``x`` excluded)."""
        out = set()
        for scope, _ in self.factors:
            if x in scope:
                out.update(scope)
        out.discard(x)
        return frozenset(out)

    def between(self, x: int, y: int) -> list:
        """Factors whose distinct scope is exactly ``{x, y}``."""
        return [f for f in self.factors if set(f[0]) == {x, y}]

    def has_edge(self, x: int, y: int) -> bool:
        """Whether an input edge ``x -- y`` (either direction) is still present."""
        return any(kind == "X" for _, kind in self.between(x, y))

    # -- transitions ------------------------------------------------------------
    def eliminate(self, x: int) -> "State":
        """Sum ``x`` out: all factors touching ``x`` become one ``'T'`` factor
        on the sorted neighbours of ``x``."""
        scope = tuple(sorted(self.neighbours(x)))
        kept = [f for f in self.factors if x not in f[0]]
        kept.append((scope, "T"))
        root = None if self.root == x else self.root
        return State(self.nodes - {x}, _merge(kept), self.marks, root)

    def key(self) -> tuple:
        return (self.nodes, self.factors, self.root)


def _merge(factors: Iterable[Factor]) -> tuple:
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


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One step of a contraction sequence.

    Attributes:
        action: ``'root'`` (choose the subgraph root ``node``), ``'eliminate'``
            (sum ``node`` out) or ``'feature'`` (replace a pattern by an input
            feature).
        rule: name of the bank rule that allows the step.
        node: the node chosen / eliminated (``None`` for features).
        scope: scope of the factor the step creates (sorted neighbours for an
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
        r"""Run the sequence on a matrix ``X`` (shape ``(n, n)``): one
        ``numpy.einsum`` per step. Returns :math:`P_H(X)` with shape
        ``()``, ``(n,)`` or ``(n, n)`` (float64)."""
        X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != X.shape[1]:
            raise ValueError(f"X must have shape (n, n), got {X.shape}")
        n = X.shape[0]
        poly = self.poly
        if poly.num_nodes > len(_LETTERS):
            raise ValueError("evaluate supports at most 52 nodes")
        # numeric factors: (index tuple, array); loops are (u, u) read as a diagonal
        tensors: list = [(tuple(e), X) for e in poly.edges]

        def einsum(items, out_nodes):
            spec = ",".join("".join(_LETTERS[v] for v in idx) for idx, _ in items)
            spec += "->" + "".join(_LETTERS[v] for v in out_nodes)
            return np.einsum(spec, *[a for _, a in items]) if items else np.ones(())

        for step in self.steps:
            if step.action == "root":
                continue
            if step.action == "eliminate":
                x = step.node
                used = [t for t in tensors if x in t[0]]
                tensors = [t for t in tensors if x not in t[0]]
                if not used:
                    raise CertificateError(f"step {step}: node {x} has no factor")
                tensors.append((tuple(step.scope), einsum(used, step.scope)))
            elif step.action == "feature":
                feature, mapping = step.detail
                value = einsum([(e, X) for e in feature.edges], feature.marked)
                tensors = _consume_feature_edges(tensors, feature, mapping)
                tensors.append((tuple(step.scope), value))
            else:
                raise CertificateError(f"unknown step action {step.action!r}")
        marks = tuple(poly.marked)
        for m in marks:  # a mark without factors broadcasts
            tensors.append(((m,), np.ones(n)))
        leftover = {v for idx, _ in tensors for v in idx} - set(marks)
        if leftover:
            raise CertificateError(f"nodes {sorted(leftover)} were never summed out")
        return einsum(tensors, marks)


def _consume_feature_edges(tensors, feature: Multigraph, mapping) -> list:
    """Remove the input-edge tensors that a feature pattern replaces."""
    need = Counter(_oriented(mapping[u], mapping[v], feature.directed) for u, v in feature.edges)
    out = []
    for idx, arr in tensors:
        key = _oriented(idx[0], idx[1], feature.directed) if len(idx) == 2 else None
        if key is not None and need[key] > 0 and arr.ndim == 2:
            need[key] -= 1
            continue
        out.append((idx, arr))
    return out


def _oriented(u: int, v: int, directed: bool) -> tuple:
    return (u, v) if directed or u <= v else (v, u)


# ---------------------------------------------------------------------------
# Rules and banks
# ---------------------------------------------------------------------------
Predicate = Callable[[State, int], Optional[tuple]]


@dataclass(frozen=True)
class EliminationRule:
    """A named elimination: ``allows(state, x)`` returns ``None`` if the bank
    cannot sum out node ``x`` now, else a (possibly empty) witness tuple that
    goes into the certificate.

    The search only asks about unmarked nodes; it asks about the subgraph
    root only when ``on_root`` is true (and about the other nodes only when
    it is false).
    """

    name: str
    allows: Predicate = field(compare=False)
    description: str = ""
    on_root: bool = False


def elimination_rule(name: str, description: str = "", *, on_root: bool = False):
    """Decorator turning a predicate ``f(state, x) -> Optional[tuple]`` into an
    :class:`EliminationRule`.

    Example:
        >>> @elimination_rule("leaf", "sum out a node with one neighbour")
        ... def leaf(state, x):
        ...     return () if len(state.neighbours(x)) <= 1 else None
        >>> bank = ContractionBank("my-mpnn", (leaf,), max_order=1)
        >>> from graphequi.poly import Multigraph
        >>> certify(Multigraph(3, [(0, 1), (1, 2)], marked=(0,)), bank) is not None
        True
    """
    def wrap(fn: Predicate) -> EliminationRule:
        return EliminationRule(name, fn, description or (fn.__doc__ or "").strip(), on_root)
    return wrap


def _all_marked(state: State) -> bool:
    return all(v in state.marks for v in state.nodes)


def _no_computed_pairs(state: State) -> bool:
    """Every factor on two distinct nodes is an input edge (order-1 models
    output pairs only as f(h_a, h_b, X_ab))."""
    return all(kind == "X" for scope, kind in state.factors if len(set(scope)) == 2)


@dataclass(frozen=True, eq=False)
class ContractionBank:
    """The contraction bank of an architecture.

    Args:
        name: display name.
        rules: the :class:`EliminationRule` s, tried in order.
        max_order: largest order of an intermediate tensor (not counting a
            subgraph root's index); eliminations that would create a larger
            one are never taken, whatever the rules say.
        features: input polynomial features (:class:`~graphequi.poly.Multigraph`)
            the architecture receives, usable as one factor on their marks.
        rooted: choose a subgraph root first (node-marking subgraph GNNs).
        output: predicate on a state whose unmarked nodes are gone (the
            root may remain): can the model emit it? Defaults to "every
            remaining node is marked".
        description, source: documentation (shown by the CLI).
    """

    name: str
    rules: tuple
    max_order: int = 2
    features: tuple = ()
    rooted: bool = False
    output: Callable[[State], bool] = field(default=_all_marked, compare=False)
    description: str = ""
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a bank needs a non-empty string name, got {self.name!r}")
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "features", tuple(self.features))
        for r in self.rules:
            if not isinstance(r, EliminationRule):
                raise TypeError(f"bank {self.name!r}: rules must be EliminationRule objects (use "
                                f"@elimination_rule), got {type(r).__name__}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"bank {self.name!r}: rule names must be unique, got {names}")
        for f in self.features:
            if not isinstance(f, Multigraph):
                raise TypeError(f"bank {self.name!r}: features must be Multigraph objects, got {type(f).__name__}")
        if isinstance(self.max_order, bool) or not isinstance(self.max_order, int) or self.max_order < 0:
            raise ValueError(f"bank {self.name!r}: max_order must be a non-negative int, got {self.max_order!r}")

    def fits(self, state: State, scope: Iterable[int]) -> bool:
        """Whether a tensor on ``scope`` is within :attr:`max_order`."""
        return len(set(scope) - {state.root}) <= self.max_order

    def with_features(self, features: Sequence[Multigraph], name: Optional[str] = None) -> "ContractionBank":
        """This bank plus input polynomial features."""
        return ContractionBank(name or f"{self.name}+features", self.rules, self.max_order,
                               tuple(self.features) + tuple(features), self.rooted, self.output,
                               self.description, self.source)

    def rule(self, name: str) -> EliminationRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"bank {self.name!r} has no rule {name!r}")

    # -- search -----------------------------------------------------------------
    def starts(self, poly: Multigraph) -> Iterator[tuple[tuple, State]]:
        state = State.of(poly)
        if not self.rooted:
            yield (), state
            return
        for w in range(poly.num_nodes):
            yield (Step("root", "root", w),), State(state.nodes, state.factors, state.marks, w)

    def accepts(self, state: State) -> bool:
        return all(v in state.marks or v == state.root for v in state.nodes) and self.output(state)

    def moves(self, state: State) -> Iterator[tuple[Step, State]]:
        done = set()
        for rule in self.rules:
            for x in sorted(state.nodes):
                if x in done or x in state.marks or (x == state.root) != rule.on_root:
                    continue
                if not self.fits(state, state.neighbours(x)):
                    continue
                witness = rule.allows(state, x)
                if witness is None:
                    continue
                done.add(x)
                nxt = state.eliminate(x)
                yield Step("eliminate", rule.name, x, tuple(sorted(state.neighbours(x))), tuple(witness)), nxt
        for i, feature in enumerate(self.features):
            for mapping in _feature_matches(state, feature):
                yield _apply_feature(state, feature, i, mapping)


def _feature_matches(state: State, feature: Multigraph) -> Iterator[tuple]:
    """Injective maps of the feature's nodes into ``state`` such that every
    input edge of the feature is an input edge of the state and the feature's
    unmarked nodes land on free nodes whose factors are exactly those edges."""
    fm = set(feature.marked)
    f_inc: dict[int, Counter] = {p: Counter() for p in range(feature.num_nodes)}
    for u, v in feature.edges:
        f_inc[u][(u, v)] += 1
        if v != u:
            f_inc[v][(u, v)] += 1
    order = list(feature.marked) + [p for p in range(feature.num_nodes) if p not in fm]
    free = [x for x in sorted(state.nodes) if x not in state.marks and x != state.root]
    s_edges = Counter(_oriented(s[0], s[1], feature.directed) for s, k in state.factors if k == "X")
    candidates = {}
    for p in range(feature.num_nodes):
        if p in fm:
            candidates[p] = sorted(state.nodes)
        else:
            deg = sum(f_inc[p].values())
            candidates[p] = [x for x in free
                             if all(k == "X" for _, k in state.touching(x)) and len(state.touching(x)) == deg]

    def extend(i: int, mapping: dict) -> Iterator[tuple]:
        if i == len(order):
            image = Counter(_oriented(mapping[u], mapping[v], feature.directed) for u, v in feature.edges)
            if any(s_edges[e] < c for e, c in image.items()):
                return
            for p in range(feature.num_nodes):
                if p in fm:
                    continue
                x = mapping[p]
                mine = Counter(_oriented(s[0], s[1], feature.directed) for s, _ in state.touching(x))
                theirs = Counter(_oriented(mapping[u], mapping[v], feature.directed)
                                 for u, v in feature.edges if p in (u, v))
                if mine != theirs:
                    return
            yield tuple(mapping[p] for p in range(feature.num_nodes))
            return
        p = order[i]
        used = set(mapping.values())
        for x in candidates[p]:
            if x not in used:
                mapping[p] = x
                yield from extend(i + 1, mapping)
                del mapping[p]

    yield from extend(0, {})


def _apply_feature(state: State, feature: Multigraph, index: int, mapping: tuple) -> tuple[Step, State]:
    need = Counter(_oriented(mapping[u], mapping[v], feature.directed) for u, v in feature.edges)
    kept = []
    for scope, kind in state.factors:
        key = _oriented(scope[0], scope[1], feature.directed) if kind == "X" else None
        if key is not None and need[key] > 0:
            need[key] -= 1
            continue
        kept.append((scope, kind))
    scope = tuple(mapping[m] for m in feature.marked)
    kept.append((scope, f"F{index}"))
    removed = {mapping[p] for p in range(feature.num_nodes) if p not in feature.marked}
    nxt = State(state.nodes - removed, _merge(kept), state.marks, state.root)
    return Step("feature", f"feature[{index}]", None, scope, (feature, mapping)), nxt


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


# ---------------------------------------------------------------------------
# Built-in banks
# ---------------------------------------------------------------------------
@elimination_rule("readout", "sum an isolated node out (global sum pooling)")
def _readout(state: State, x: int):
    return () if not state.neighbours(x) else None


@elimination_rule("message", "h_u <- sum_x m(X_ux) h_x: a node with one neighbour, joined by input edges only")
def _message(state: State, x: int):
    nbrs = state.neighbours(x)
    if len(nbrs) != 1:
        return None
    (u,) = nbrs
    return () if all(kind == "X" for _, kind in state.between(x, u)) else None


@elimination_rule("row_sum", "T_u = sum_x T_ux: a node with one neighbour (ij->i)")
def _row_sum(state: State, x: int):
    return () if len(state.neighbours(x)) == 1 else None


@elimination_rule("matmul", "T_uw = sum_x A_ux B_xw: a node with two neighbours (ij,jk->ik)")
def _matmul(state: State, x: int):
    return () if len(state.neighbours(x)) == 2 else None


@elimination_rule("subgraph_message",
                  "inside the subgraph of root w: a node with one neighbour besides w (edges to w are node features)")
def _subgraph_message(state: State, x: int):
    others = state.neighbours(x) - {state.root}
    if len(others) > 1:
        return None
    if others:
        (u,) = others
        if not all(kind == "X" for _, kind in state.between(x, u)):
            return None
    return ()


@elimination_rule("subgraph_pool", "pool the subgraphs: sum over the root w (at most one neighbour left)",
                  on_root=True)
def _subgraph_pool(state: State, x: int):
    if any(v not in state.marks for v in state.nodes if v != x):
        return None
    return () if len(state.neighbours(x)) <= 1 else None


def _subgraph_output(state: State) -> bool:
    if state.root is not None and state.root in state.marks:
        return True  # pair output h^{(a)}_b, node output h^{(a)}_a
    return state.root is None and _no_computed_pairs(state)


@elimination_rule("ego_sum",
                  "sum over x inside the 1-hop ego-net of r in {x} + N(x): r has an input edge to every other node")
def _ego_sum(state: State, x: int):
    nbrs = state.neighbours(x)
    if len(nbrs) > 2:
        return None
    members = {x} | nbrs
    for r in sorted(members):
        if all(state.has_edge(r, y) for y in members - {r}):
            return (f"ego-net of {r}",)
    return None


def _mpnn() -> ContractionBank:
    return ContractionBank(
        "mpnn", (_readout, _message), max_order=1, output=_no_computed_pairs,
        description="node-based message passing (order-1 intermediates, edge features in messages)",
        source="Gilmer et al. 2017; Puny et al. ICML 2023 (MPNN bank); Zhang et al. ICLR 2024 (forests)")


def _ppgn() -> ContractionBank:
    return ContractionBank(
        "ppgn", (_readout, _row_sum, _matmul), max_order=2,
        description="PPGN / 2-FWL (order-2 intermediates, matrix products)",
        source="Maron et al. NeurIPS 2019; Puny et al. ICML 2023 (PPGN elimination rule)")


def _subgraph() -> ContractionBank:
    return ContractionBank(
        "subgraph", (_readout, _subgraph_message, _subgraph_pool), max_order=1, rooted=True,
        output=_subgraph_output,
        description="node-marking subgraph GNN, DS-GNN style (MPNN per marked subgraph, then pooling)",
        source="Bevilacqua et al. ICLR 2022; Frasca et al. NeurIPS 2022; Zhang et al. ICLR 2024")


def _spen() -> ContractionBank:
    return ContractionBank(
        "spen", (_readout, _ego_sum), max_order=2,
        description="SPEN: 1-hop ego-net bags, order-2 equivariant layers inside, shared node/pair features",
        source="Mitton & Murray-Smith, Subgraph Permutation Equivariant Networks, 2021")


_REGISTRY: dict[str, Callable[[], ContractionBank]] = {
    "mpnn": _mpnn, "ppgn": _ppgn, "subgraph": _subgraph, "spen": _spen,
}


def register_bank(name: str):
    """Decorator registering a factory ``() -> ContractionBank`` under ``name``
    so that :func:`get_bank` (and the CLI's ``--archs``) find it."""
    def wrap(factory: Callable[[], ContractionBank]):
        _REGISTRY[name] = factory
        get_bank.cache_clear()
        return factory
    return wrap


def available_banks() -> list[str]:
    """Registered bank names (plus the ``'ppgn++(k)'`` family)."""
    return sorted(_REGISTRY) + ["ppgn++(k)"]


@functools.lru_cache(maxsize=None)
def get_bank(name: str) -> ContractionBank:
    """The bank registered under ``name``; ``'ppgn++(k)'`` is ``'ppgn'`` plus
    ``graphequi.poly.select('ppgn++', max_degree=k)`` (``'ppgn++'`` means
    ``k = 6``)."""
    if not isinstance(name, str):
        raise TypeError(f"bank name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    match = re.fullmatch(r"ppgn\+\+(?:\((\d+)\))?", key)
    if match:
        from graphequi.poly import select

        k = int(match.group(1) or 6)
        feats = tuple(select("ppgn++", max_degree=k))
        bank = _ppgn().with_features(feats, name=f"ppgn++({k})")
        return ContractionBank(bank.name, bank.rules, 2, bank.features, False, bank.output,
                               f"PPGN plus the {len(feats)} polynomial features of degree <= {k} "
                               "that the PPGN rule cannot compute",
                               "Puny et al. ICML 2023 (PPGN++)")
    if key not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(available_banks())}")
    return _REGISTRY[key]()


def _as_bank(bank: Union[str, ContractionBank]) -> ContractionBank:
    if isinstance(bank, ContractionBank):
        return bank
    return get_bank(bank)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def certify(poly: Multigraph, bank: Union[str, ContractionBank]) -> Optional[Certificate]:
    """Search a contraction sequence of ``bank`` that computes ``P_poly``.

    Args:
        poly: the multigraph (0, 1 or 2 marks; edges read as undirected
            structure: all built-in rules are closed under transposition).
        bank: a bank or a registered name (``'mpnn'``, ``'ppgn'``,
            ``'ppgn++(6)'``, ``'subgraph'``, ``'spen'``).

    Returns:
        A :class:`Certificate`, or ``None`` when no sequence exists. Its
        ``poly`` is the canonical representative of ``poly`` (step node ids
        refer to it). Results are cached per (isomorphism class, bank).
    """
    if not isinstance(poly, Multigraph):
        raise TypeError(f"poly must be a graphequi.poly.Multigraph, got {type(poly).__name__}")
    bank = _as_bank(bank)
    return _computable_cached(poly.canonical(), bank)


def is_computable(poly: Multigraph, bank: Union[str, ContractionBank]) -> bool:
    """Whether :func:`certify` finds a certificate."""
    return certify(poly, bank) is not None


@functools.lru_cache(maxsize=100_000)
def _computable_cached(poly: Multigraph, bank: ContractionBank) -> Optional[Certificate]:
    return _computable(poly, bank)


def _computable(poly: Multigraph, bank: ContractionBank) -> Optional[Certificate]:
    failed: set = set()
    for prefix, state in bank.starts(poly):
        rest = _search(bank, state, failed)
        if rest is not None:
            return Certificate(poly, bank.name, tuple(prefix) + rest)
    return None


def verify(certificate: Certificate, bank: Union[str, ContractionBank, None] = None) -> None:
    """Replay a certificate symbolically: every step must be allowed by its
    rule in ``bank`` (default: the certificate's bank) and the final state
    must be an output of the bank. Raises :class:`CertificateError`."""
    bank = _as_bank(bank if bank is not None else certificate.bank)
    state = State.of(certificate.poly)
    steps = list(certificate.steps)
    if bank.rooted:
        if not steps or steps[0].action != "root" or steps[0].node not in state.nodes:
            raise CertificateError("a rooted bank's certificate starts with a root step")
        state = State(state.nodes, state.factors, state.marks, steps.pop(0).node)
    for step in steps:
        if step.action == "eliminate":
            x = step.node
            if x not in state.nodes or x in state.marks:
                raise CertificateError(f"{step}: node {x} is not a remaining unmarked node")
            try:
                rule = bank.rule(step.rule)
            except KeyError as err:
                raise CertificateError(f"{step}: {err.args[0]}") from None
            if (x == state.root) != rule.on_root:
                raise CertificateError(f"{step}: rule {rule.name!r} does not apply to this node")
            if not bank.fits(state, state.neighbours(x)):
                raise CertificateError(f"{step}: creates a tensor above order {bank.max_order}")
            witness = rule.allows(state, x)
            if witness is None:
                raise CertificateError(f"{step}: not allowed by rule {rule.name!r}")
            if tuple(sorted(state.neighbours(x))) != tuple(step.scope):
                raise CertificateError(f"{step}: the neighbours of {x} are {sorted(state.neighbours(x))}")
            state = state.eliminate(x)
        elif step.action == "feature":
            feature, mapping = step.detail
            if feature not in bank.features:
                raise CertificateError(f"{step}: {feature!r} is not a feature of bank {bank.name!r}")
            if tuple(mapping) not in set(_feature_matches(state, feature)):
                raise CertificateError(f"{step}: the pattern does not match")
            _, state = _apply_feature(state, feature, bank.features.index(feature), tuple(mapping))
        else:
            raise CertificateError(f"unexpected step {step}")
    if not bank.accepts(state):
        raise CertificateError(f"final state {state} is not an output of bank {bank.name!r}")


def polynomial_family(degree: int, marks: int, *, simple: bool = True, connected: bool = True,
                      directed: bool = False) -> tuple[Multigraph, ...]:
    """The basis polynomials analysed per (degree, marks) cell.

    ``simple=True`` keeps multigraphs without loops or parallel edges: on a
    0/1 adjacency with an empty diagonal every other basis element equals one
    of these (``X_uv^2 = X_uv``, ``X_uu = 0``).
    """
    polys = basis(degree, marks, directed=directed, loops=not simple, connected=connected)
    return tuple(p for p in polys if not simple or p.is_simple())


@dataclass(frozen=True)
class ExpressivityRow:
    """One cell: architecture ``arch`` computes ``computable`` of the
    ``total`` basis polynomials of ``degree`` with ``marks`` marks."""

    arch: str
    degree: int
    marks: int
    computable: int
    total: int
    missing: tuple = ()


@dataclass(frozen=True)
class ExpressivityTable:
    """Result of :func:`analyse`: rows per (architecture, degree, marks)."""

    rows: tuple
    simple: bool = True
    connected: bool = True

    @property
    def archs(self) -> list[str]:
        return list(dict.fromkeys(r.arch for r in self.rows))

    @property
    def degrees(self) -> list[int]:
        return sorted({r.degree for r in self.rows})

    @property
    def marks(self) -> list[int]:
        return sorted({r.marks for r in self.rows})

    def row(self, arch: str, degree: int, marks: int) -> ExpressivityRow:
        for r in self.rows:
            if (r.arch, r.degree, r.marks) == (arch, degree, marks):
                return r
        raise KeyError((arch, degree, marks))

    def missing(self, arch: str, degree: Optional[int] = None) -> list[Multigraph]:
        """Non-computable polynomials of ``arch`` (at ``degree``, or all)."""
        return [p for r in self.rows if r.arch == arch and (degree is None or r.degree == degree)
                for p in r.missing]

    def format(self) -> str:
        """Plain-text table: one line per (degree, marks), one column per arch."""
        archs = self.archs
        width = max(9, *(len(a) for a in archs))
        head = f"{'degree':>6} {'marks':>5} " + " ".join(f"{a:>{width}}" for a in archs)
        lines = [head, "-" * len(head)]
        for d in self.degrees:
            for m in self.marks:
                cells = []
                for a in archs:
                    r = self.row(a, d, m)
                    cells.append(f"{f'{r.computable}/{r.total}':>{width}}")
                lines.append(f"{d:>6} {m:>5} " + " ".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "simple": self.simple, "connected": self.connected,
            "rows": [{"arch": r.arch, "degree": r.degree, "marks": r.marks,
                      "computable": r.computable, "total": r.total,
                      "missing": [repr(p) for p in r.missing]} for r in self.rows],
        }

    def to_json(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)

    def plot(self, path=None):
        """Heatmap of the computable fraction (rows: degree/marks, columns:
        architectures), annotated with ``computable/total``. Saves to
        ``path`` when given; returns the figure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        archs, cells = self.archs, [(d, m) for d in self.degrees for m in self.marks]
        frac = np.zeros((len(cells), len(archs)))
        fig, ax = plt.subplots(figsize=(1.3 + 1.25 * len(archs), 0.9 + 0.32 * len(cells)))
        for i, (d, m) in enumerate(cells):
            for j, a in enumerate(archs):
                r = self.row(a, d, m)
                frac[i, j] = r.computable / r.total if r.total else 1.0
                ax.text(j, i, f"{r.computable}/{r.total}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] < 0.5 else "black")
        im = ax.imshow(frac, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(archs)), archs, rotation=30, ha="right")
        ax.set_yticks(range(len(cells)), [f"d={d}, {m} mark{'s' if m != 1 else ''}" for d, m in cells],
                      fontsize=7)
        kind = ("simple " if self.simple else "") + ("connected " if self.connected else "")
        ax.set_title(f"computable {kind}basis polynomials", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction computable")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=130)
            plt.close(fig)
        return fig


def analyse(archs: Sequence[Union[str, ContractionBank]], max_degree: int, *,
            marks: Sequence[int] = (0, 1, 2), min_degree: int = 1, simple: bool = True,
            connected: bool = True, progress: bool = False) -> ExpressivityTable:
    """Count, per architecture, degree and number of marks, how many basis
    polynomials (:func:`polynomial_family`) the bank computes.

    Example:
        >>> t = analyse(["mpnn", "ppgn"], max_degree=3, marks=(0,))
        >>> [(r.arch, r.degree, r.computable, r.total) for r in t.rows if r.degree == 3]
        [('mpnn', 3, 2, 3), ('ppgn', 3, 3, 3)]
    """
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 1:
        raise ValueError(f"max_degree must be a positive int, got {max_degree!r}")
    if not archs:
        raise ValueError("analyse needs at least one architecture")
    banks = [_as_bank(a) for a in archs]
    cells = [(d, m) for d in range(min_degree, max_degree + 1) for m in marks]
    iterator = cells
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(cells, desc="expressivity", unit="cell")
    rows = []
    for d, m in iterator:
        polys = polynomial_family(d, m, simple=simple, connected=connected)
        for bank in banks:
            missing = tuple(p for p in polys if certify(p, bank) is None)
            rows.append(ExpressivityRow(bank.name, d, m, len(polys) - len(missing), len(polys), missing))
    order = {b.name: i for i, b in enumerate(banks)}
    rows.sort(key=lambda r: (order[r.arch], r.degree, r.marks))
    return ExpressivityTable(tuple(rows), simple, connected)


def separating_polynomials(pairs, polys: Sequence[Multigraph], *, chunk: int = 4) -> dict:
    """Which polynomials tell the graphs of each pair apart.

    A polynomial separates ``(G, H)`` when its values on the 0/1 adjacency
    matrices differ as multisets: the scalar for invariants, the multiset over
    nodes (one mark) or over ordered node pairs (two marks). Arithmetic is
    float64 on integer counts, so it is exact for counts below ``2**53``.

    Args:
        pairs: :class:`~graphequi.expressivity.GraphPair` objects (keyed by
            ``name``) or ``(G, H)`` tuples of networkx graphs (keyed by index).
        polys: multigraphs with any number of marks (evaluated per mark count).
        chunk: graphs per evaluation batch; all graphs are padded to one size
            so that one contraction plan per mark count serves every chunk.

    Returns:
        ``{pair key: set of separating polynomials}``.

    Example:
        >>> import networkx as nx
        >>> pair = (nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)), nx.cycle_graph(6))
        >>> tri, edge = Multigraph(3, [(0, 1), (1, 2), (2, 0)]), Multigraph(2, [(0, 1)])
        >>> separating_polynomials([pair], [tri, edge]) == {0: {tri}}
        True
    """
    import networkx as nx
    import torch

    from graphequi.poly import evaluate

    keys, graphs = [], []
    for i, pair in enumerate(pairs):
        first, second = tuple(pair)
        keys.append(getattr(pair, "name", None) or i)
        graphs += [first, second]
    if not graphs:
        raise ValueError("no pairs given")
    n = max(g.number_of_nodes() for g in graphs)
    X = torch.zeros(len(graphs), n, n, dtype=torch.float64)
    mask = torch.zeros(len(graphs), n, dtype=torch.bool)
    sizes = []
    for i, g in enumerate(graphs):
        m = g.number_of_nodes()
        X[i, :m, :m] = torch.from_numpy(nx.to_numpy_array(g, nodelist=list(g.nodes()), weight=None))
        mask[i, :m] = True
        sizes.append(m)
    out = {k: set() for k in keys}
    by_marks: dict[int, list[Multigraph]] = {}
    for p in polys:
        by_marks.setdefault(p.num_marks, []).append(p)
    for marks, group in by_marks.items():
        multisets = []
        for start in range(0, len(graphs), chunk):
            values = evaluate(group, X[start:start + chunk], mask=mask[start:start + chunk]).numpy()
            for j, v in enumerate(values):
                m = sizes[start + j]
                v = v if marks == 0 else v[:m] if marks == 1 else v[:m, :m].reshape(m * m, -1)
                multisets.append(np.sort(v.reshape(-1, len(group)), axis=0))
        for i, key in enumerate(keys):
            a, b = multisets[2 * i], multisets[2 * i + 1]
            if a.shape != b.shape:  # different sizes: node/pair multisets differ in size
                out[key] |= set(group)
                continue
            differ = ~np.isclose(a, b, rtol=1e-12, atol=0.5).all(axis=0)
            out[key] |= {group[k] for k in np.flatnonzero(differ)}
    return out

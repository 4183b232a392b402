r"""Contraction banks: which eliminations an architecture's layers perform.

An architecture is described by its **contraction bank** (Puny, Lim, Kiani,
Maron, Lipman, *Equivariant Polynomials for Graph Neural Networks*, ICML 2023,
Sec. 4, "tensor contraction sequences"): the elementary contractions its layers
can perform on the tensors they hold, as eliminations of the tensor network
of a polynomial (:mod:`graphequi.expressivity.certificates`). Products of
factors on the same scope are free in every bank: MLPs on features take them.
A bank names which eliminations its layers can perform; ``H`` is
*computable* when a sequence of them reaches the marked nodes. The returned
:class:`Certificate` is that sequence; it can be replayed symbolically
(:func:`verify`) and numerically (:meth:`Certificate.evaluate`, one
``numpy.einsum`` per step).

A found certificate proves computability. A failed search proves only that
no certificate exists in this bank (the paper's algorithm is the same kind
of search, and for ``'ppgn'`` it is the characterization they use). Linear
combinations are not searched: a polynomial reachable only as a difference of
computable ones would be reported as not computable. The built-in banks do
not need them: each one's computable set matches a published
characterization (tested: forests for ``'mpnn'``, elimination width 2 for
``'ppgn'``, forest-plus-one-node for ``'subgraph'`` invariants), and the
soundness tests against the WL oracles would catch a bank that claims too
much.

Built-in banks (see :func:`get_bank`):

* ``'mpnn'`` -- node-based message passing (Gilmer et al. 2017; edge features
  enter the message function). Order-1 intermediates; eliminates an unmarked
  node with one neighbor through input edges only (``ij,j->i``), plus the
  global readout (Puny et al. 2023, MPNN bank). Computes exactly the forest
  polynomials, matching the homomorphism expressivity of MPNNs (Zhang, Gai,
  Du, Ye, He, Wang, *Beyond Weisfeiler-Lehman*, ICLR 2024: forests).
* ``'ppgn'`` -- PPGN / 2-FWL (Maron et al. 2019). Order-2 intermediates and
  matrix products: eliminates an unmarked node with at most two distinct
  neighbors (``ij,jk->ik``; degree 1 is a row sum). This is the elimination
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
  0/1 adjacency it contracts the edge :math:`X_{rx}`. Modeled rule: an
  unmarked ``x`` with at most two neighbors is eliminated when some
  ``r`` in :math:`\{x\} \cup N(x)` still has an *input edge* to every other
  node of :math:`\{x\} \cup N(x)` (all of them lie in the ego-net of ``r``);
  ``r = x`` is the sharing of pair features across ego-nets. Assumes the root
  of an ego-net is identifiable (as with ego-net+ marking) and a 0/1
  adjacency (the ego-net membership indicator is the edge itself), and
  models sums. :class:`graphequi.nn.SPEN` meets these: it marks the centre
  (local node 0) in every layer, and its sharing means become sums through
  its multiplicity input channels (the number of ego-nets holding a node or
  pair); its graph readout is a mean, a constant factor between graphs of
  equal size.

Users build their own banks from :func:`elimination_rule` predicates (see
:class:`ContractionBank` and :func:`register_bank`).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

from graphequi.poly import Multigraph
from graphequi.poly.selection import PPGN_ELIMINATIONS, ppgn_elimination

from .certificates import CertificateError, State, Step, drop_feature_edges, merge_factors, oriented

__all__ = [
    "EliminationRule",
    "elimination_rule",
    "ContractionBank",
    "register_bank",
    "get_bank",
    "available_banks",
    "as_bank",
]

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
        >>> @elimination_rule("leaf", "sum out a node with one neighbor")
        ... def leaf(state, x):
        ...     return () if len(state.neighbors(x)) <= 1 else None
        >>> bank = ContractionBank("my-mpnn", (leaf,), max_order=1)
        >>> from graphequi.expressivity import certify
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
        return dataclasses.replace(self, name=name or f"{self.name}+features",
                                   features=tuple(self.features) + tuple(features))

    def rule(self, name: str) -> EliminationRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"bank {self.name!r} has no rule {name!r}")

    # -- moves ------------------------------------------------------------------
    def starts(self, poly: Multigraph) -> Iterator[tuple[tuple, State]]:
        state = State.of(poly)
        if not self.rooted:
            yield (), state
            return
        for w in range(poly.num_nodes):
            yield (Step("root", "root", w),), State(state.nodes, state.factors, state.marks, w)

    def accepts(self, state: State) -> bool:
        return all(v in state.marks or v == state.root for v in state.nodes) and self.output(state)

    def eliminate(self, state: State, rule: EliminationRule, x: int) -> Optional[tuple[Step, State]]:
        """The step summing ``x`` out by ``rule`` and the state after it, or
        ``None`` when this bank cannot take it (``x`` marked or gone, the
        wrong kind of node for the rule, a tensor above :attr:`max_order`,
        or the rule's predicate refuses)."""
        if x not in state.nodes or x in state.marks or (x == state.root) != rule.on_root:
            return None
        scope = tuple(sorted(state.neighbors(x)))
        if not self.fits(state, scope):
            return None
        witness = rule.allows(state, x)
        if witness is None:
            return None
        return Step("eliminate", rule.name, x, scope, tuple(witness)), state.eliminate(x)

    def feature_moves(self, state: State, index: int) -> Iterator[tuple[Step, State]]:
        """Every placement of feature ``index`` in ``state``, as (step, next state)."""
        feature = self.features[index]
        for mapping in _feature_matches(state, feature):
            yield _apply_feature(state, feature, index, mapping)

    def moves(self, state: State) -> Iterator[tuple[Step, State]]:
        """All moves from ``state``; a node is offered by its first rule only
        (eliminating it leads to the same state whichever rule allows it)."""
        done = set()
        for rule in self.rules:
            for x in sorted(state.nodes):
                move = None if x in done else self.eliminate(state, rule, x)
                if move is not None:
                    done.add(x)
                    yield move
        for i in range(len(self.features)):
            yield from self.feature_moves(state, i)

    def replay(self, state: State, step: Step) -> State:
        """The state after ``step``; raises :class:`CertificateError` unless
        ``step`` is one of this bank's moves from ``state``."""
        if step.action == "eliminate":
            try:
                rule = self.rule(step.rule)
            except KeyError as err:
                raise CertificateError(f"{step}: {err.args[0]}") from None
            move = self.eliminate(state, rule, step.node)
            if move is None:
                raise CertificateError(f"{step}: rule {rule.name!r} of bank {self.name!r} cannot sum "
                                       f"out node {step.node} here")
            taken, nxt = move
            if taken.scope != tuple(step.scope):
                raise CertificateError(f"{step}: the neighbors of {step.node} are {list(taken.scope)}")
            return nxt
        if step.action == "feature":
            feature, mapping = step.detail
            if feature not in self.features:
                raise CertificateError(f"{step}: {feature!r} is not a feature of bank {self.name!r}")
            for taken, nxt in self.feature_moves(state, self.features.index(feature)):
                if taken.detail[1] == tuple(mapping):
                    return nxt
            raise CertificateError(f"{step}: the pattern does not match")
        raise CertificateError(f"unexpected step {step}")


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
    s_edges = Counter(oriented(s[0], s[1], feature.directed) for s, k in state.factors if k == "X")
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
            image = Counter(oriented(mapping[u], mapping[v], feature.directed) for u, v in feature.edges)
            if any(s_edges[e] < c for e, c in image.items()):
                return
            for p in range(feature.num_nodes):
                if p in fm:
                    continue
                x = mapping[p]
                mine = Counter(oriented(s[0], s[1], feature.directed) for s, _ in state.touching(x))
                theirs = Counter(oriented(mapping[u], mapping[v], feature.directed)
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
    kept = drop_feature_edges(state.factors, feature, mapping)
    scope = tuple(mapping[m] for m in feature.marked)
    kept.append((scope, f"F{index}"))
    removed = {mapping[p] for p in range(feature.num_nodes) if p not in feature.marked}
    nxt = State(state.nodes - removed, merge_factors(kept), state.marks, state.root)
    return Step("feature", f"feature[{index}]", None, scope, (feature, mapping)), nxt


# ---------------------------------------------------------------------------
# Built-in banks
# ---------------------------------------------------------------------------
@elimination_rule("readout", "sum an isolated node out (global sum pooling)")
def _readout(state: State, x: int):
    return () if not state.neighbors(x) else None


@elimination_rule("message", "h_u <- sum_x m(X_ux) h_x: a node with one neighbor, joined by input edges only")
def _message(state: State, x: int):
    nbrs = state.neighbors(x)
    if len(nbrs) != 1:
        return None
    (u,) = nbrs
    return () if all(kind == "X" for _, kind in state.between(x, u)) else None


def _ppgn_rule(name: str, description: str) -> EliminationRule:
    """The contraction ``name`` of the PPGN elimination rule of
    :func:`graphequi.poly.selection.ppgn_elimination`, which also selects the
    PPGN++ features: the bank and the selection cannot drift apart."""
    def allows(state: State, x: int):
        return () if ppgn_elimination(len(state.neighbors(x))) == name else None
    return EliminationRule(name, allows, description)


_PPGN_RULES = tuple(_ppgn_rule(name, description) for name, description in zip(PPGN_ELIMINATIONS, (
    "sum an isolated node out (global sum pooling)",
    "T_u = sum_x T_ux: a node with one neighbor (ij->i)",
    "T_uw = sum_x A_ux B_xw: a node with two neighbors (ij,jk->ik)",
)))


@elimination_rule("subgraph_message",
                  "inside the subgraph of root w: a node with one neighbor besides w (edges to w are node features)")
def _subgraph_message(state: State, x: int):
    others = state.neighbors(x) - {state.root}
    if len(others) > 1:
        return None
    if others:
        (u,) = others
        if not all(kind == "X" for _, kind in state.between(x, u)):
            return None
    return ()


@elimination_rule("subgraph_pool", "pool the subgraphs: sum over the root w (at most one neighbor left)",
                  on_root=True)
def _subgraph_pool(state: State, x: int):
    if any(v not in state.marks for v in state.nodes if v != x):
        return None
    return () if len(state.neighbors(x)) <= 1 else None


def _subgraph_output(state: State) -> bool:
    if state.root is not None and state.root in state.marks:
        return True  # pair output h^{(a)}_b, node output h^{(a)}_a
    return state.root is None and _no_computed_pairs(state)


@elimination_rule("ego_sum",
                  "sum over x inside the 1-hop ego-net of r in {x} + N(x): r has an input edge to every other node")
def _ego_sum(state: State, x: int):
    nbrs = state.neighbors(x)
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
        "ppgn", _PPGN_RULES, max_order=2,
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


def _bank_key(name: str) -> str:
    """Bank names are case- and whitespace-insensitive."""
    if not isinstance(name, str):
        raise TypeError(f"bank name must be a string, got {type(name).__name__}")
    return name.strip().lower()


def register_bank(name: str):
    """Decorator registering a factory ``() -> ContractionBank`` under ``name``
    (case-insensitive) so that :func:`get_bank` (and the CLI's ``--banks``)
    find it.

    Args:
        name: the name to look the bank up by; ``'MyBank'`` and ``'mybank'``
            are the same name.
    """
    key = _bank_key(name)
    if not key:
        raise ValueError("a bank needs a non-empty name")

    def wrap(factory: Callable[[], ContractionBank]):
        _REGISTRY[key] = factory
        _registered.cache_clear()
        return factory
    return wrap


def available_banks() -> list[str]:
    """Registered bank names (plus the ``'ppgn++(k)'`` family)."""
    return sorted(_REGISTRY) + ["ppgn++(k)"]


def get_bank(name: str) -> ContractionBank:
    """The bank registered under ``name`` (case-insensitive).

    ``'ppgn++(k)'`` is ``'ppgn'`` plus ``graphequi.poly.select('ppgn++',
    max_degree=k)`` as input features (``'ppgn++'`` means ``k = 6``). Every
    spelling of a name gives the same object, so certificates cached for a
    bank are found again.

    Raises:
        ValueError: no bank has this name.
    """
    key = _bank_key(name)
    match = re.fullmatch(r"ppgn\+\+(?:\((\d+)\))?", key)
    if match:
        return _ppgn_plus_plus(int(match.group(1) or 6))
    if key not in _REGISTRY:
        raise ValueError(f"unknown bank {name!r}; available: {', '.join(available_banks())}")
    return _registered(key)


@functools.lru_cache(maxsize=None)
def _registered(key: str) -> ContractionBank:
    return _REGISTRY[key]()


@functools.lru_cache(maxsize=None)
def _ppgn_plus_plus(k: int) -> ContractionBank:
    from graphequi.poly import select

    feats = tuple(select("ppgn++", max_degree=k))
    return dataclasses.replace(
        _ppgn().with_features(feats, name=f"ppgn++({k})"),
        description=f"PPGN plus the {len(feats)} polynomial features of degree <= {k} "
                    "that the PPGN rule cannot compute",
        source="Puny et al. ICML 2023 (PPGN++)")


def as_bank(bank: Union[str, ContractionBank]) -> ContractionBank:
    """``bank`` itself, or the registered bank of that name."""
    if isinstance(bank, ContractionBank):
        return bank
    return get_bank(bank)

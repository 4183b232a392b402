r"""Contraction plans: evaluate many multigraph polynomials as batched matmuls.

A polynomial :math:`P_H` is a tensor network: one copy of :math:`X` per edge
of :math:`H`, one index per node, the marks are the open indices. A *plan*
contracts it pairwise. Every pairwise step runs as one ``torch.bmm`` (or,
when nothing is summed, one broadcast product) whose batch dimension holds
the graphs of the batch and the indices both operands keep, so the work runs
at matmul speed rather than through ``einsum``'s generic kernels.

Planning
--------
Two planners share one cost model and one executor:

* ``strategy="independent"``: each polynomial gets its own FLOP-optimal path
  from ``opt_einsum.contract_path`` (``opt_einsum.DynamicProgramming``,
  outer products allowed) with a memory limit of :math:`n^3` elements per
  graph. The default limit (``'max_input'``, :math:`n^2`) forbids the
  :math:`n^3` intermediates these contractions need, and
  ``optimize='optimal'`` under a limit falls back to one giant einsum step
  when no pair fits (up to 60x more FLOPs on the PPGN++ set).
* ``strategy="joint"`` (default): an exact dynamic programme over the edge
  subsets of each polynomial (same memory limit) in which any intermediate
  already computed for an earlier polynomial costs nothing. An intermediate
  is identified by a canonical form: the sub-multigraph of contracted edges
  with its *open* nodes (marked, or touched by a not-yet-contracted edge)
  colored, so isomorphic intermediates of different polynomials, under
  any labeling, are computed once and read back with their legs
  relabeled. Polynomials are planned by increasing degree so that small
  ones seed the table that larger ones reuse. The programme minimizes
  estimated time: steps that sum nothing are memory bound and weighted by
  ``ELEMENTWISE_WEIGHT``.

Memory layout
-------------
Each step picks the order of its batch, row, inner and column indices (and
which operand goes left) so that both operands are read as views, row-major
when possible. Free alternatives come from symmetries of the intermediate (an
automorphism of its sub-multigraph permuting open legs, e.g. ``X = X^T`` for
undirected ``H``). When a copy is unavoidable it becomes an explicit step
whose result is kept for later readers. Plans are built twice: the first
build records the layout each intermediate's readers want, the second
produces it in that layout directly.

Execution
---------
Plans are immutable and run their steps themselves
(:mod:`graphequi.poly.execution`); intermediates live in per-thread
workspace buffers reused between calls. :func:`graphequi.poly.evaluate`
splits large batches into chunks whose intermediates stay cache-sized.

FLOPs are counted per graph under opt_einsum's convention
(``helpers.flop_count``: ``2 n^k`` for a step over ``k`` indices that sums
one, ``n^k`` for a broadcast product).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import opt_einsum

from .execution import Plan, _BmmStep, _CopyStep, _ElementwiseStep, _FusedMatvecStep, _LeafStep, _Output
from .multigraph import Multigraph, canonical_labeling

__all__ = ["Plan", "plan", "size_bucket"]

# Largest intermediate allowed, as a number of open indices (n^3 per graph).
MAX_OPEN_INDICES = 3

# The joint planner minimizes estimated *time*, not FLOPs: a step that sums
# nothing (a broadcast/Hadamard product) is memory bound and runs ~20-50x
# below matmul speed per FLOP on CPUs, so it is weighted accordingly.
ELEMENTWISE_WEIGHT = 16


def size_bucket(n: int) -> int:
    """Plans are cached per size bucket: the next power of two (at least 8)."""
    return max(8, 1 << max(0, int(n) - 1).bit_length())


@dataclass(frozen=True)
class _Poly:
    """A polynomial reduced to its edges: isolated nodes are handled at the end."""

    graph: Multigraph
    edges: tuple[tuple[int, int], ...]
    marked: tuple[int, ...]
    isolated_marks: tuple[int, ...]      # positions (0/1) of marks without edges
    isolated_unmarked: int               # each multiplies by the number of real nodes

    @staticmethod
    def of(graph: Multigraph) -> "_Poly":
        iso = set(graph.isolated_nodes())
        return _Poly(graph, graph.edges, graph.marked,
                     tuple(i for i, m in enumerate(graph.marked) if m in iso),
                     sum(1 for v in iso if v not in graph.marked))

    def nodes(self, subset: int) -> list[int]:
        out: set[int] = set()
        for i, e in enumerate(self.edges):
            if subset >> i & 1:
                out.update(e)
        return sorted(out)

    def open_nodes(self, subset: int) -> list[int]:
        outside: set[int] = set(m for m in self.marked)
        for i, e in enumerate(self.edges):
            if not subset >> i & 1:
                outside.update(e)
        return [v for v in self.nodes(subset) if v in outside]

    def sub_multigraph(self, subset: int) -> tuple[list[int], dict[int, int], tuple]:
        """The edges in ``subset`` as a multigraph on local ids 0..k-1:
        ``(poly nodes, poly node -> local id, normalized sorted edges)``."""
        nodes = self.nodes(subset)
        local = {v: i for i, v in enumerate(nodes)}
        edges = []
        for i, (u, v) in enumerate(self.edges):
            if subset >> i & 1:
                a, b = local[u], local[v]
                if not self.graph.directed and a > b:
                    a, b = b, a
                edges.append((a, b))
        return nodes, local, tuple(sorted(edges))

    def leg_symmetries(self, subset: int, legs: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Permutations ``p`` of the open legs (given in stored order) such that
        the tensor equals itself read with legs ``[legs[p[0]], legs[p[1]], ...]``,
        i.e. some automorphism of the sub-multigraph maps ``legs[i]`` to
        ``legs[p[i]]`` (e.g. ``X`` itself when undirected: ``X = X^T``)."""
        if len(legs) < 2:
            return []
        nodes, local, edges = self.sub_multigraph(subset)
        return _leg_symmetries_impl(len(nodes), edges, self.graph.directed,
                                    tuple(local[v] for v in legs))

    def subset_key(self, subset: int) -> tuple[tuple, dict[int, int]]:
        """Canonical key of the intermediate for ``subset`` and the map
        poly node -> canonical label (for its open nodes)."""
        nodes, local, edges = self.sub_multigraph(subset)
        open_ = set(self.open_nodes(subset))
        colors = tuple(0 if v in open_ else 1 for v in nodes)
        cert, labels = canonical_labeling(len(nodes), edges, colors, self.graph.directed)
        return (self.graph.directed, cert), {v: labels[local[v]] for v in open_}


def _leg_symmetries_impl(num_nodes, edges, directed, legs) -> list[tuple[int, ...]]:
    out = []
    base = None
    for perm in itertools.permutations(range(len(legs))):
        colors = [len(legs)] * num_nodes
        for i, p in enumerate(perm):
            colors[legs[p]] = i
        cert = canonical_labeling(num_nodes, edges, tuple(colors), directed)[0]
        if base is None:
            base = cert  # the identity comes first
        elif cert == base:
            out.append(perm)
    return out


def _step_flops(num_indices: int, inner: bool, n: int) -> int:
    symbols = [opt_einsum.get_symbol(i) for i in range(num_indices)]
    return opt_einsum.helpers.flop_count(symbols, inner, 2, dict.fromkeys(symbols, n))


# Relative cost, per element, of reading a bmm operand column-major (BLAS
# takes it, but ~2x slower for the large n^3 operands) or re-laying it out.
COLUMN_MAJOR_COST = 0.75
COPY_COST = 1.0


def _layout_cost(stored: Sequence[int], batch: Sequence[int], rows: Sequence[int],
                 cols: Sequence[int], size: int) -> Optional[float]:
    """Cost of reading a contiguous tensor with legs ``stored`` as a bmm
    operand (batch, rows, cols) without a copy: 0 row-major, a penalty
    column-major, None when a copy is needed."""
    stored, batch, rows, cols = list(stored), list(batch), list(rows), list(cols)
    if stored == batch + rows + cols:
        return 0.0
    if stored == batch + cols + rows:
        return COLUMN_MAJOR_COST * size
    return None


def _fuse_matvecs(steps: list) -> list:
    """Merge bmm steps with the same left operand and a single output column
    into one :class:`_FusedMatvecStep`, placed at the last of them; a step
    joins only if nothing reads its output before that position."""
    groups: dict[tuple, list[int]] = {}
    readers: dict[int, list[int]] = {}
    for pos, st in enumerate(steps):
        for slot in st.reads:
            readers.setdefault(slot, []).append(pos)
        if isinstance(st, _BmmStep) and st.num_cols == 0:
            key = (st.left, st.perm_left, st.num_batch, st.num_rows, st.num_inner)
            groups.setdefault(key, []).append(pos)
    replaced: dict[int, _FusedMatvecStep] = {}
    removed: set[int] = set()
    for positions in groups.values():
        last = positions[-1]
        members = [p for p in positions
                   if p == last or all(r > last for r in readers.get(steps[p].out, ()))]
        if len(members) < 2:
            continue
        head = steps[last]
        replaced[last] = _FusedMatvecStep(
            tuple(steps[p].out for p in members), head.left, tuple(steps[p].right for p in members),
            head.perm_left, tuple(steps[p].perm_right for p in members), head.num_batch,
            head.num_rows, head.num_inner)
        removed.update(p for p in members if p != last)
    return [replaced.get(pos, st) for pos, st in enumerate(steps) if pos not in removed]


class _Builder:
    """Builds a :class:`Plan`. ``hints`` maps an intermediate's key to the leg
    order (canonical labels) its consumers want row-major; a first build
    records them (``wanted``), a second one produces intermediates in that
    order where it costs nothing else."""

    def __init__(self, polys: tuple[Multigraph, ...], n: int, strategy: str,
                 hints: Optional[dict] = None):
        self.polys = [_Poly.of(p) for p in polys]
        self.n = n
        self.strategy = strategy
        self.graphs = tuple(polys)
        self.steps: list = []
        self.flop_terms: list[tuple[int, int]] = []  # (factor, exponent): factor * n**exponent
        self.slot_legs: list[int] = [2]  # slot 0 is X with legs (row, col)
        # table: key -> (slot, legs as canonical labels in dim order)
        self.table: dict = {}
        # slot -> {permutation of its legs: slot holding that contiguous layout}
        self.layouts: dict[int, dict[tuple[int, ...], int]] = {}
        self.hints = hints or {}
        self.wanted: dict = {}  # key -> Counter of wanted canonical leg orders
        self.slot_entry: dict[int, tuple] = {}  # slot -> (key, canonical legs in dim order)

    # -- bookkeeping ----------------------------------------------------------
    def _new_slot(self, legs: int) -> int:
        self.slot_legs.append(legs)
        return len(self.slot_legs) - 1

    def _add(self, step, flops: tuple[int, int] = (0, 0)) -> None:
        self.steps.append(step)
        if flops[0]:
            self.flop_terms.append(flops)

    def _key(self, pi: int, subset: int):
        poly = self.polys[pi]
        if self.strategy == "joint":
            return poly.subset_key(subset)
        open_ = poly.open_nodes(subset)
        return ("independent", pi, subset), {v: v for v in open_}

    # -- materialization ------------------------------------------------------
    def materialize(self, pi: int, subset: int, split: dict) -> list[int]:
        """Make sure the intermediate for ``subset`` exists; return its legs
        as poly nodes in stored dim order."""
        poly = self.polys[pi]
        key, labels = self._key(pi, subset)
        inverse = {c: v for v, c in labels.items()}
        if key in self.table:
            slot, legs_canon = self.table[key]
            return [inverse[c] for c in legs_canon], slot
        if subset & (subset - 1) == 0:
            legs, slot = self._leaf(poly, subset.bit_length() - 1)
        else:
            a, b = split[subset]
            legs_a, slot_a = self.materialize(pi, a, split)
            legs_b, slot_b = self.materialize(pi, b, split)
            hint = self.hints.get(key)
            out_hint = [inverse[c] for c in hint] if hint is not None else None
            legs, slot = self._bmm(legs_a, slot_a, legs_b, slot_b, set(poly.open_nodes(subset)),
                                   out_hint)
        self.table[key] = (slot, [labels[v] for v in legs])
        if slot not in self.slot_entry:
            self.slot_entry[slot] = (key, [labels[v] for v in legs])
        for perm in poly.leg_symmetries(subset, tuple(legs)):
            self.layouts.setdefault(slot, {}).setdefault(perm, slot)
        return legs, slot

    def _leaf(self, poly: _Poly, edge_index: int) -> tuple[list[int], int]:
        r, s = poly.edges[edge_index]
        open_ = set(poly.open_nodes(1 << edge_index))
        n2 = self.n * self.n
        if r == s:
            kind, legs = ("diag", [r]) if r in open_ else ("trace", [])
        elif r in open_ and s in open_:
            return [r, s], 0
        elif r in open_:
            kind, legs = "rowsum", [r]
        elif s in open_:
            kind, legs = "colsum", [s]
        else:
            kind, legs = "total", []
        slot = self._new_slot(len(legs))
        self._add(_LeafStep(slot, kind), (0 if kind == "diag" else 1, 2))
        return legs, slot

    def _operand(self, legs: list[int], slot: int, batch, first, second):
        """Cheapest way to read ``slot`` as a (batch, first, second) bmm
        operand: ``(cost, layout legs, source slot, copy perm or None)``."""
        size = self.n ** len(legs)
        best = None
        options = [(tuple(range(len(legs))), slot)] + list(self.layouts.get(slot, {}).items())
        for perm, src in options:
            stored = [legs[i] for i in perm]
            cost = _layout_cost(stored, batch, first, second, size)
            if cost is not None and (best is None or cost < best[0]):
                best = (cost, stored, src, None)
        if best is not None and best[0] == 0:
            return best
        wanted = list(batch) + list(first) + list(second)
        copy = (COPY_COST * size, wanted, slot, tuple(legs.index(v) for v in wanted))
        return best if best is not None and best[0] <= copy[0] else copy

    def _bmm(self, la: list[int], sa: int, lb: list[int], sb: int, out_open: set[int],
             out_hint: Optional[list[int]] = None):
        common = [v for v in la if v in lb]
        batch = [v for v in common if v in out_open]
        inner = [v for v in common if v not in out_open]
        only_a = [v for v in la if v not in lb]
        only_b = [v for v in lb if v not in la]
        if not inner or (not only_a and not only_b):
            return self._elementwise(la, sa, lb, sb, batch, inner, only_a, only_b, out_hint)
        out_size = self.n ** (len(batch) + len(only_a) + len(only_b))
        best = None
        for (lx, sx, rows), (ly, sy, cols) in (((la, sa, only_a), (lb, sb, only_b)),
                                                ((lb, sb, only_b), (la, sa, only_a))):
            for pb in itertools.permutations(batch):
                for pk in itertools.permutations(inner):
                    for pr in itertools.permutations(rows):
                        for pc in itertools.permutations(cols):
                            x = self._operand(lx, sx, pb, pr, pk)
                            y = self._operand(ly, sy, pb, pk, pc)
                            cost = x[0] + y[0]
                            if out_hint is not None and list(pb + pr + pc) != out_hint:
                                cost += COPY_COST * out_size
                            if best is None or cost < best[0]:
                                best = (cost, lx, sx, x, ly, sy, y, pb, pk, pr, pc)
        _, lx, sx, x, ly, sy, y, pb, pk, pr, pc = best
        sources = []
        for legs, slot, (cost, stored, src, perm), order in ((lx, sx, x, pb + pr + pk),
                                                             (ly, sy, y, pb + pk + pc)):
            if cost and slot in self.slot_entry:  # remember what this consumer wanted
                key, canon = self.slot_entry[slot]
                wanted = tuple(canon[legs.index(v)] for v in order)
                self.wanted.setdefault(key, Counter())[wanted] += 1
            if perm is not None:  # materialize a re-laid-out copy, reusable later
                src = self._new_slot(len(legs))
                self._add(_CopyStep(src, slot, (0,) + tuple(1 + i for i in perm)))
                self.layouts.setdefault(slot, {})[perm] = src
            sources.append((stored, src))
        (stored_x, src_x), (stored_y, src_y) = sources
        perm_x = (0,) + tuple(1 + stored_x.index(v) for v in pb + pr + pk)
        perm_y = (0,) + tuple(1 + stored_y.index(v) for v in pb + pk + pc)
        legs = list(pb + pr + pc)
        slot = self._new_slot(len(legs))
        n_indices = len(set(la) | set(lb))
        self._add(_BmmStep(slot, src_x, src_y, perm_x, perm_y, len(pb), len(pr), len(pk), len(pc)),
                  (2, n_indices))
        return legs, slot

    def _elementwise(self, la, sa, lb, sb, batch, inner, only_a, only_b, out_hint):
        natural = batch + only_a + only_b
        stored = list(out_hint) if out_hint is not None else natural
        perm_x = (0,) + tuple(1 + la.index(v) for v in batch + only_a + inner)
        perm_y = (0,) + tuple(1 + lb.index(v) for v in batch + only_b + inner)
        perm_out = (0,) + tuple(1 + stored.index(v) for v in natural)
        perm_store = (0,) + tuple(1 + natural.index(v) for v in stored)
        slot = self._new_slot(len(stored))
        mode = "dot" if inner else "outer"
        self._add(_ElementwiseStep(slot, sa, sb, perm_x, perm_y, perm_out, perm_store, len(batch),
                                   len(only_a), len(inner), len(only_b), mode),
                  (2 if inner else 1, len(set(la) | set(lb))))
        return stored, slot

    # -- path search ----------------------------------------------------------
    def subset_cost(self, poly: _Poly, a: int, b: int) -> Optional[int]:
        """Estimated cost of contracting the intermediates of ``a`` and ``b``
        (None when the result exceeds the memory limit)."""
        la, lb = set(poly.open_nodes(a)), set(poly.open_nodes(b))
        out = set(poly.open_nodes(a | b))
        if len(out) > MAX_OPEN_INDICES:
            return None
        inner = bool((la & lb) - out)
        flops = _step_flops(len(la | lb), inner, self.n)
        return flops if inner else ELEMENTWISE_WEIGHT * flops

    def joint_split(self, pi: int) -> dict:
        """Exact DP over edge subsets; intermediates already in the table are free."""
        poly = self.polys[pi]
        m = len(poly.edges)
        full = (1 << m) - 1
        cost: dict[int, float] = {}
        split: dict[int, tuple[int, int]] = {}
        for subset in sorted(range(1, full + 1), key=lambda s: bin(s).count("1")):
            if self._key(pi, subset)[0] in self.table:
                cost[subset] = 0
                continue
            if subset & (subset - 1) == 0:
                cost[subset] = self.n ** 2  # an upper bound on the leaf's reduction
                continue
            best = math.inf
            low = subset & -subset
            sub = (subset - 1) & subset
            while sub:
                if sub & low:  # each unordered split once
                    other = subset ^ sub
                    if other and cost[sub] < math.inf and cost[other] < math.inf:
                        f = self.subset_cost(poly, sub, other)
                        if f is not None and cost[sub] + cost[other] + f < best:
                            best = cost[sub] + cost[other] + f
                            split[subset] = (sub, other)
                sub = (sub - 1) & subset
            cost[subset] = best
        if cost.get(full, 0) == math.inf:
            raise RuntimeError(f"no contraction path within n^{MAX_OPEN_INDICES} memory for {poly.graph}")
        return split

    def opt_einsum_split(self, pi: int) -> dict:
        """The poly's own opt_einsum path, as a subset split tree."""
        poly = self.polys[pi]
        m = len(poly.edges)
        if m < 2:
            return {}
        symbols = {v: opt_einsum.get_symbol(v) for e in poly.edges for v in e}
        eq = ",".join(symbols[u] + symbols[v] for u, v in poly.edges) + "->" + "".join(
            symbols[v] for v in poly.marked if v in symbols)
        shapes = [(self.n, self.n)] * m
        # 'dp' honors the memory limit properly; 'optimal' falls back to one
        # giant einsum step when no pair fits, up to 60x more FLOPs here.
        optimizer = opt_einsum.DynamicProgramming(minimize="flops", search_outer=True)
        path, _ = opt_einsum.contract_path(eq, *shapes, shapes=True, optimize=optimizer,
                                           memory_limit=self.n ** MAX_OPEN_INDICES)
        operands = [1 << i for i in range(m)]
        split = {}
        for step in path:
            # A single-operand step (a reduction, done by our leaves) still
            # moves that operand to the end of opt_einsum's list.
            picked = [operands[i] for i in step]
            for i in sorted(step, reverse=True):
                operands.pop(i)
            acc = picked[0]
            for other in picked[1:]:
                split[acc | other] = (acc, other)
                acc |= other
            operands.append(acc)
        return split

    def build(self) -> Plan:
        order = sorted(range(len(self.polys)), key=lambda i: (len(self.polys[i].edges), i))
        outputs: dict[int, _Output] = {}
        for pi in order:
            poly = self.polys[pi]
            if not poly.edges:
                outputs[pi] = _Output(-1, (), poly.isolated_marks, poly.isolated_unmarked,
                                      len(poly.marked))
                continue
            split = self.joint_split(pi) if self.strategy == "joint" else self.opt_einsum_split(pi)
            legs, slot = self.materialize(pi, (1 << len(poly.edges)) - 1, split)
            live_marks = [m for m in poly.marked if m in legs]
            outputs[pi] = _Output(slot, tuple(legs.index(m) for m in live_marks),
                                  poly.isolated_marks, poly.isolated_unmarked, len(poly.marked))
        steps = tuple(_fuse_matvecs(self.steps))
        # Free every slot right after its last reader.
        last_read: dict[int, int] = {}
        for pos, st in enumerate(steps):
            for slot in st.reads:
                last_read[slot] = pos
        free_after: dict[int, list[int]] = {}
        for slot, pos in last_read.items():
            if slot != 0:
                free_after.setdefault(pos, []).append(slot)
        flops = sum(factor * self.n ** exponent for factor, exponent in self.flop_terms)
        return Plan(self.graphs, self.n, self.strategy, flops=flops, steps=steps,
                    flop_terms=tuple(self.flop_terms),
                    outputs=tuple(outputs[i] for i in range(len(self.polys))),
                    slot_legs=tuple(self.slot_legs),
                    free_after={pos: tuple(slots) for pos, slots in free_after.items()})


@functools.lru_cache(maxsize=256)
def _build(polys: tuple[Multigraph, ...], n: int, strategy: str) -> Plan:
    # Two passes: the first records which layout each intermediate's readers
    # want, the second produces intermediates in that layout directly.
    first = _Builder(polys, n, strategy)
    first.build()
    hints = {key: orders.most_common(1)[0][0] for key, orders in first.wanted.items()}
    built = _Builder(polys, n, strategy, hints).build()
    independent = built.flops if strategy == "independent" else _build(polys, n, "independent").flops
    return dataclasses.replace(built, flops_independent=independent)


def plan(polys: Sequence[Multigraph], n: int, *, strategy: str = "joint") -> Plan:
    """The cached contraction plan for ``polys`` at graph size ``n``.

    Plans are cached per (polynomial tuple, :func:`size_bucket` of ``n``,
    strategy); any ``n`` in the same bucket reuses the plan.

    Args:
        polys: multigraphs (any mix of 0, 1 or 2 marks).
        n: number of nodes of the (padded) graphs.
        strategy: ``"joint"`` (shared intermediates) or ``"independent"``
            (one ``opt_einsum`` path per polynomial).

    Example:
        >>> from graphequi.poly import basis
        >>> p = plan(basis(2, 1, loops=False), 38)
        >>> p.flops <= p.flops_independent
        True
    """
    if isinstance(polys, Multigraph):
        polys = (polys,)
    polys = tuple(polys)
    if not polys:
        raise ValueError("plan needs at least one polynomial")
    if strategy not in ("joint", "independent"):
        raise ValueError(f"strategy must be 'joint' or 'independent', got {strategy!r}")
    return _build(polys, size_bucket(n), strategy)

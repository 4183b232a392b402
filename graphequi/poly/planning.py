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
  coloured, so isomorphic intermediates of different polynomials, under
  any labelling, are computed once and read back with their legs
  relabelled. Polynomials are planned by increasing degree so that small
  ones seed the table that larger ones reuse. The programme minimises
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
Intermediates live in workspace buffers kept by the plan between calls: on
CPU, the page faults of a fresh multi-megabyte allocation cost more than the
arithmetic done in it. :func:`graphequi.poly.evaluate` splits large batches
into chunks whose intermediates stay cache-sized.

FLOPs are counted per graph under opt_einsum's convention
(``helpers.flop_count``: ``2 n^k`` for a step over ``k`` indices that sums
one, ``n^k`` for a broadcast product).
"""
from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import opt_einsum
import torch
from torch import Tensor

from .multigraph import Multigraph, canonical_labelling

__all__ = ["Plan", "plan", "size_bucket"]

# Largest intermediate allowed, as a number of open indices (n^3 per graph).
MAX_OPEN_INDICES = 3

# The joint planner minimises estimated *time*, not FLOPs: a step that sums
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
        ``(poly nodes, poly node -> local id, normalised sorted edges)``."""
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
        colours = tuple(0 if v in open_ else 1 for v in nodes)
        cert, labels = canonical_labelling(len(nodes), edges, colours, self.graph.directed)
        return (self.graph.directed, cert), {v: labels[local[v]] for v in open_}


def _leg_symmetries_impl(num_nodes, edges, directed, legs) -> list[tuple[int, ...]]:
    out = []
    base = None
    for perm in itertools.permutations(range(len(legs))):
        colours = [len(legs)] * num_nodes
        for i, p in enumerate(perm):
            colours[legs[p]] = i
        cert = canonical_labelling(num_nodes, edges, tuple(colours), directed)[0]
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


@dataclass
class _BmmStep:
    """One pairwise contraction as a batched matmul: left (batch, rows,
    inner) x right (batch, inner, cols) -> (batch, rows, cols), the graph
    dimension and the batch legs merged into the bmm batch."""

    out: int
    left: int
    right: int
    perm_left: tuple[int, ...]
    perm_right: tuple[int, ...]
    num_batch: int
    num_rows: int
    num_inner: int
    num_cols: int


@dataclass
class _ElementwiseStep:
    """A pairwise step that sums nothing (``outer``: a broadcast product) or
    has no free legs besides shared ones (``dot``: multiply and sum the inner
    legs). Elementwise kernels read and write any strides, so inputs are
    only permuted views and the result is written straight into the layout
    its readers want (``perm_out`` views the stored layout in the natural
    (batch, rows, cols) order; ``perm_store`` does the reverse)."""

    out: int
    left: int
    right: int
    perm_left: tuple[int, ...]   # -> (B, batch, rows[, inner])
    perm_right: tuple[int, ...]  # -> (B, batch, cols[, inner])
    perm_out: tuple[int, ...]
    perm_store: tuple[int, ...]
    num_batch: int
    num_rows: int
    num_inner: int
    num_cols: int
    mode: str


@dataclass
class _FusedMatvecStep:
    """Several matrix-vector steps that read the same (large) left operand,
    run as one bmm against their right-hand vectors side by side: the left
    operand is read once instead of once per vector."""

    outs: tuple[int, ...]
    left: int
    rights: tuple[int, ...]
    perm_left: tuple[int, ...]
    perms_right: tuple[tuple[int, ...], ...]
    num_batch: int
    num_rows: int
    num_inner: int


@dataclass
class _CopyStep:
    """Re-lay a slot out in memory (when no consumer can read it as a view)."""

    out: int
    src: int
    perm: tuple[int, ...]


@dataclass
class _LeafStep:
    out: int
    kind: str  # "diag", "rowsum", "colsum", "trace", "total"


def _reads(step) -> tuple[int, ...]:
    if isinstance(step, (_BmmStep, _ElementwiseStep)):
        return (step.left, step.right)
    if isinstance(step, _FusedMatvecStep):
        return (step.left,) + step.rights
    if isinstance(step, _CopyStep):
        return (step.src,)
    return (0,)  # a leaf reads X


def _writes(step) -> tuple[int, ...]:
    return step.outs if isinstance(step, _FusedMatvecStep) else (step.out,)


def _fuse_matvecs(steps: list) -> list:
    """Merge bmm steps with the same left operand and a single output column
    into one :class:`_FusedMatvecStep`, placed at the last of them; a step
    joins only if nothing reads its output before that position."""
    groups: dict[tuple, list[int]] = {}
    readers: dict[int, list[int]] = {}
    for pos, st in enumerate(steps):
        for slot in _reads(st):
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


@dataclass
class _Output:
    slot: int                      # -1 for the constant 1 (no edges)
    perm: tuple[int, ...]          # slot legs -> order of the non-isolated marks
    isolated_marks: tuple[int, ...]
    isolated_unmarked: int
    num_marks: int


@dataclass
class Plan:
    """A compiled contraction plan for a fixed tuple of polynomials.

    Call it with ``X`` of shape ``(B, n, n)`` (contiguous, padded nodes
    already zeroed) and the node ``mask`` ``(B, n)`` to get one tensor per
    polynomial, ``(B,)``, ``(B, n)`` or ``(B, n, n)`` by its number of marks
    (mixed mark counts are fine here). Use :func:`graphequi.poly.evaluate` or
    :func:`graphequi.poly.evaluate_each` for validation and masking.

    Attributes:
        polys: the polynomials, in output order.
        n: the size the plan was optimised for (a size bucket).
        strategy: ``"joint"`` or ``"independent"``.
        flops: FLOPs per graph of this plan at size ``n``.
        flops_independent: FLOPs per graph when every polynomial is contracted
            on its own along its ``opt_einsum`` path (no sharing).
        num_steps: number of pairwise contraction steps (batched matmuls and
            elementwise products; a fused matrix-vector step counts once per
            vector).
        num_copies: number of explicit re-layout steps.

    :meth:`count_flops` gives the FLOPs at any other ``n``;
    :meth:`clear_workspace` releases the buffers kept between calls.
    """

    polys: tuple[Multigraph, ...]
    n: int
    strategy: str
    flops: int = 0
    flops_independent: int = 0
    steps: list = field(default_factory=list)  # _LeafStep/_BmmStep/_ElementwiseStep/_FusedMatvecStep/_CopyStep
    flop_terms: list = field(default_factory=list)  # (factor, exponent): factor * n**exponent
    outputs: list = field(default_factory=list)
    slot_legs: list = field(default_factory=list)  # number of legs of each slot
    free_after: dict = field(default_factory=dict)  # op position -> slots to drop
    _workspace: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_steps(self) -> int:
        """Number of pairwise contraction steps (batched matmuls and
        elementwise products)."""
        return sum(len(st.outs) if isinstance(st, _FusedMatvecStep) else 1
                   for st in self.steps if isinstance(st, (_BmmStep, _ElementwiseStep, _FusedMatvecStep)))

    @property
    def num_copies(self) -> int:
        return sum(isinstance(st, _CopyStep) for st in self.steps)

    def count_flops(self, n: int) -> int:
        """FLOPs per graph of this plan's steps at size ``n``."""
        return sum(factor * n ** exponent for factor, exponent in self.flop_terms)

    def peak_elements(self, n: int) -> int:
        """Largest number of live elements per graph during execution."""
        live: dict[int, int] = {0: n * n}
        peak = n * n
        outputs = {o.slot for o in self.outputs}
        for pos, step in enumerate(self.steps):
            for out in _writes(step):
                live[out] = n ** self.slot_legs[out]
            peak = max(peak, sum(live.values()))
            for s in self.free_after.get(pos, ()):
                if s not in outputs:
                    live.pop(s, None)
        return peak

    def __repr__(self) -> str:
        return (f"Plan(num_polys={len(self.polys)}, n={self.n}, strategy={self.strategy!r}, "
                f"steps={self.num_steps}, flops={self.flops:.3g}, "
                f"flops_independent={self.flops_independent:.3g})")

    def clear_workspace(self) -> None:
        """Drop the buffers kept between calls (see :meth:`__call__`)."""
        self._workspace.clear()

    def __call__(self, X: Tensor, mask: Optional[Tensor] = None) -> list[Tensor]:
        """Run the plan. Intermediates are written into buffers that the plan
        keeps between calls: a fresh multi-megabyte allocation costs more in
        page faults than the arithmetic done in it. Outputs are never
        workspace buffers. With autograd on, plain (allocating) ops are used."""
        B, n, _ = X.shape
        slots: list[Optional[Tensor]] = [None] * len(self.slot_legs)
        slots[0] = X
        keep = {o.slot for o in self.outputs}
        pooled = not (torch.is_grad_enabled() and X.requires_grad)
        pool = self._workspace.setdefault((X.dtype, X.device), {}) if pooled else {}
        owned: dict[int, Tensor] = {}  # slot -> workspace buffer it lives in

        def buffer(slot: int, numel: int) -> Optional[Tensor]:
            if not pooled or slot in keep:
                return None
            free = pool.get(numel)
            buf = free.pop() if free else torch.empty(numel, dtype=X.dtype, device=X.device)
            owned[slot] = buf
            return buf

        def scratch(numel: int) -> Tensor:
            free = pool.get(numel)
            return free.pop() if free else torch.empty(numel, dtype=X.dtype, device=X.device)

        for pos, st in enumerate(self.steps):
            if isinstance(st, _BmmStep):
                nb, rows, inner, cols = B * n ** st.num_batch, n ** st.num_rows, n ** st.num_inner, n ** st.num_cols
                left = slots[st.left].permute(st.perm_left)
                right = slots[st.right].permute(st.perm_right)
                buf = buffer(st.out, nb * rows * cols)
                a, b = left.reshape(nb, rows, inner), right.reshape(nb, inner, cols)
                val = torch.bmm(a, b) if buf is None else torch.bmm(a, b, out=buf.view(nb, rows, cols))
                slots[st.out] = val.view((B,) + (n,) * (st.num_batch + st.num_rows + st.num_cols))
            elif isinstance(st, _ElementwiseStep):
                a = slots[st.left].permute(st.perm_left)
                b = slots[st.right].permute(st.perm_right)
                legs = st.num_batch + st.num_rows + st.num_cols
                shape = (B,) + (n,) * legs
                buf = buffer(st.out, B * n ** legs)
                if st.mode == "outer":
                    a = a.reshape(a.shape + (1,) * st.num_cols)
                    b = b.reshape(b.shape[:1 + st.num_batch] + (1,) * st.num_rows + b.shape[1 + st.num_batch:])
                    if buf is None:
                        slots[st.out] = (a * b).permute(st.perm_store).contiguous()
                    else:
                        torch.mul(a, b, out=buf.view(shape).permute(st.perm_out))
                        slots[st.out] = buf.view(shape)
                else:
                    dims = tuple(range(1 + st.num_batch, 1 + st.num_batch + st.num_inner))
                    if not pooled:
                        slots[st.out] = (a * b).sum(dims).permute(st.perm_store).contiguous()
                    else:
                        tmp = scratch(a.numel())
                        prod = torch.mul(a, b, out=tmp.view(a.shape))
                        if buf is None:
                            slots[st.out] = prod.sum(dims).permute(st.perm_store).contiguous()
                        else:
                            torch.sum(prod, dims, out=buf.view(shape).permute(st.perm_out))
                            slots[st.out] = buf.view(shape)
                        pool.setdefault(tmp.numel(), []).append(tmp)
            elif isinstance(st, _FusedMatvecStep):
                nb, rows, inner = B * n ** st.num_batch, n ** st.num_rows, n ** st.num_inner
                m = len(st.outs)
                left = slots[st.left].permute(st.perm_left).reshape(nb, rows, inner)
                rights = [slots[r].permute(p).reshape(nb, inner) for r, p in zip(st.rights, st.perms_right)]
                if pooled:
                    vectors, prod = scratch(nb * inner * m), scratch(nb * rows * m)
                    torch.stack(rights, dim=2, out=vectors.view(nb, inner, m))
                    torch.bmm(left, vectors.view(nb, inner, m), out=prod.view(nb, rows, m))
                    columns = prod.view(nb, rows, m)
                else:
                    columns = torch.bmm(left, torch.stack(rights, dim=2))
                shape = (B,) + (n,) * (st.num_batch + st.num_rows)
                for j, out in enumerate(st.outs):
                    buf = buffer(out, nb * rows)
                    col = columns[:, :, j]
                    slots[out] = (col.contiguous() if buf is None else buf.view(nb, rows).copy_(col)).view(shape)
                if pooled:
                    pool.setdefault(vectors.numel(), []).append(vectors)
                    pool.setdefault(prod.numel(), []).append(prod)
            elif isinstance(st, _CopyStep):
                src = slots[st.src].permute(st.perm)
                buf = buffer(st.out, src.numel())
                slots[st.out] = src.contiguous() if buf is None else buf.view(src.shape).copy_(src)
            else:
                if st.kind == "diag":
                    val = torch.diagonal(X, dim1=1, dim2=2).contiguous()
                elif st.kind == "rowsum":
                    val = X.sum(2)
                elif st.kind == "colsum":
                    val = X.sum(1)
                elif st.kind == "trace":
                    val = torch.diagonal(X, dim1=1, dim2=2).sum(1)
                else:
                    val = X.sum((1, 2))
                slots[st.out] = val
            for s in self.free_after.get(pos, ()):
                if s not in keep:
                    slots[s] = None
                    buf = owned.pop(s, None)
                    if buf is not None:
                        pool.setdefault(buf.numel(), []).append(buf)
        for buf in owned.values():
            pool.setdefault(buf.numel(), []).append(buf)
        if mask is None:
            mask = X.new_ones(B, n)
        else:
            mask = mask.to(X.dtype)
        count = mask.sum(1)
        results = []
        for o in self.outputs:
            if o.slot < 0:
                val = X.new_ones(B)
            else:
                val = slots[o.slot].permute((0,) + tuple(1 + p for p in o.perm))
            if o.isolated_unmarked:
                val = val * count.view((B,) + (1,) * (val.dim() - 1)) ** o.isolated_unmarked
            # An isolated mark is a broadcast axis that reads the node mask.
            for position in sorted(o.isolated_marks):
                val = val.unsqueeze(1 + position)
            for position in o.isolated_marks:
                val = val * _mask_view(mask, position, o.num_marks)
            results.append(val.expand((B,) + (n,) * o.num_marks))
        return results


def _mask_view(mask: Tensor, position: int, num_marks: int) -> Tensor:
    shape = [mask.shape[0]] + [1] * num_marks
    shape[1 + position] = mask.shape[1]
    return mask.view(shape)


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
        self.result = Plan(tuple(polys), n, strategy)
        self.result.slot_legs.append(2)  # slot 0 is X with legs (row, col)
        # table: key -> (slot, legs as canonical labels in dim order)
        self.table: dict = {}
        # slot -> {permutation of its legs: slot holding that contiguous layout}
        self.layouts: dict[int, dict[tuple[int, ...], int]] = {}
        self.hints = hints or {}
        self.wanted: dict = {}  # key -> Counter of wanted canonical leg orders
        self.slot_entry: dict[int, tuple] = {}  # slot -> (key, canonical legs in dim order)

    # -- bookkeeping ----------------------------------------------------------
    def _new_slot(self, legs: int) -> int:
        self.result.slot_legs.append(legs)
        return len(self.result.slot_legs) - 1

    def _add(self, step, flops: tuple[int, int] = (0, 0)) -> None:
        self.result.steps.append(step)
        if flops[0]:
            self.result.flop_terms.append(flops)

    def _key(self, pi: int, subset: int):
        poly = self.polys[pi]
        if self.strategy == "joint":
            return poly.subset_key(subset)
        open_ = poly.open_nodes(subset)
        return ("independent", pi, subset), {v: v for v in open_}

    # -- materialisation ------------------------------------------------------
    def materialise(self, pi: int, subset: int, split: dict) -> list[int]:
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
            legs_a, slot_a = self.materialise(pi, a, split)
            legs_b, slot_b = self.materialise(pi, b, split)
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
            if perm is not None:  # materialise a re-laid-out copy, reusable later
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
        # 'dp' honours the memory limit properly; 'optimal' falls back to one
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
            legs, slot = self.materialise(pi, (1 << len(poly.edges)) - 1, split)
            live_marks = [m for m in poly.marked if m in legs]
            outputs[pi] = _Output(slot, tuple(legs.index(m) for m in live_marks),
                                  poly.isolated_marks, poly.isolated_unmarked, len(poly.marked))
        self.result.outputs = [outputs[i] for i in range(len(self.polys))]
        self.result.steps = _fuse_matvecs(self.result.steps)
        # Free every slot right after its last reader.
        last_read: dict[int, int] = {}
        for pos, st in enumerate(self.result.steps):
            for slot in _reads(st):
                last_read[slot] = pos
        for slot, pos in last_read.items():
            if slot != 0:
                self.result.free_after.setdefault(pos, []).append(slot)
        self.result.flops = self.result.count_flops(self.n)
        return self.result


def _independent_flops(polys: tuple[Multigraph, ...], n: int) -> int:
    return _build(polys, n, "independent").flops


@functools.lru_cache(maxsize=256)
def _build(polys: tuple[Multigraph, ...], n: int, strategy: str) -> Plan:
    # Two passes: the first records which layout each intermediate's readers
    # want, the second produces intermediates in that layout directly.
    first = _Builder(polys, n, strategy)
    first.build()
    hints = {key: orders.most_common(1)[0][0] for key, orders in first.wanted.items()}
    return _Builder(polys, n, strategy, hints).build()


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
    bucket = size_bucket(n)
    result = _build(polys, bucket, strategy)
    if not result.flops_independent:
        result.flops_independent = _independent_flops(polys, bucket)
    return result

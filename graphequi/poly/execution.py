r"""Compiled contraction plans and the steps they run.

A :class:`Plan` (built by :func:`graphequi.poly.plan`) is an immutable list
of steps over numbered *slots*: slot 0 holds the input ``X`` of shape
``(B, n, n)``, every step writes one or more new slots from earlier ones.
Each step type runs itself (``run``); the plan only walks the list, frees a
slot after its last reader and assembles the outputs.

Intermediates are written into workspace buffers reused between calls: on
CPU, the page faults of a fresh multi-megabyte allocation cost more than the
arithmetic done in it. The buffers belong to the calling thread
(``threading.local``), so one cached plan can be called from several threads
at once.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from .multigraph import Multigraph

__all__ = ["Plan"]


class _Run:
    """One call of a plan: the slot values and the buffers it borrowed.

    Args:
        X: input of shape ``(B, n, n)`` (slot 0).
        num_slots: number of slots of the plan.
        pool: the calling thread's free buffers by number of elements, or
            ``None`` to allocate plainly (when autograd records the call).
        keep: slots that are outputs: never written into a reused buffer.
    """

    def __init__(self, X: Tensor, num_slots: int, pool: Optional[dict], keep: frozenset):
        self.X = X
        self.B, self.n = X.shape[0], X.shape[1]
        self.slots: list[Optional[Tensor]] = [None] * num_slots
        self.slots[0] = X
        self.pool = pool
        self.keep = keep
        self.owned: dict[int, Tensor] = {}  # slot -> workspace buffer it lives in

    @property
    def pooled(self) -> bool:
        return self.pool is not None

    def scratch(self, numel: int) -> Tensor:
        """A flat buffer of ``numel`` elements (give it back with :meth:`recycle`)."""
        free = self.pool.get(numel)
        return free.pop() if free else torch.empty(numel, dtype=self.X.dtype, device=self.X.device)

    def recycle(self, buf: Tensor) -> None:
        self.pool.setdefault(buf.numel(), []).append(buf)

    def buffer(self, slot: int, numel: int) -> Optional[Tensor]:
        """A reused buffer for ``slot``, or ``None`` where the step must allocate."""
        if not self.pooled or slot in self.keep:
            return None
        buf = self.scratch(numel)
        self.owned[slot] = buf
        return buf

    def free(self, slot: int) -> None:
        if slot in self.keep:
            return
        self.slots[slot] = None
        buf = self.owned.pop(slot, None)
        if buf is not None:
            self.recycle(buf)

    def finish(self) -> None:
        for buf in self.owned.values():
            self.recycle(buf)
        self.owned.clear()


@dataclass(frozen=True)
class _PairStep:
    """A step combining slots ``left`` and ``right`` (read through the
    permutations ``perm_left`` / ``perm_right``) into slot ``out``."""

    out: int
    left: int
    right: int
    perm_left: tuple[int, ...]
    perm_right: tuple[int, ...]

    contractions = 1

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.left, self.right)

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.out,)


@dataclass(frozen=True)
class _BmmStep(_PairStep):
    """One pairwise contraction as a batched matmul: left (batch, rows,
    inner) x right (batch, inner, cols) -> (batch, rows, cols), the graph
    dimension and the batch legs merged into the bmm batch."""

    num_batch: int
    num_rows: int
    num_inner: int
    num_cols: int

    def run(self, r: _Run) -> None:
        B, n = r.B, r.n
        nb, rows, inner, cols = B * n ** self.num_batch, n ** self.num_rows, n ** self.num_inner, n ** self.num_cols
        a = r.slots[self.left].permute(self.perm_left).reshape(nb, rows, inner)
        b = r.slots[self.right].permute(self.perm_right).reshape(nb, inner, cols)
        buf = r.buffer(self.out, nb * rows * cols)
        val = torch.bmm(a, b) if buf is None else torch.bmm(a, b, out=buf.view(nb, rows, cols))
        r.slots[self.out] = val.view((B,) + (n,) * (self.num_batch + self.num_rows + self.num_cols))


@dataclass(frozen=True)
class _ElementwiseStep(_PairStep):
    """A pairwise step that sums nothing (``outer``: a broadcast product) or
    has no free legs besides shared ones (``dot``: multiply and sum the inner
    legs). Elementwise kernels read and write any strides, so inputs are
    only permuted views and the result is written straight into the layout
    its readers want (``perm_out`` views the stored layout in the natural
    (batch, rows, cols) order; ``perm_store`` does the reverse). The left
    operand is read as (B, batch, rows[, inner]), the right one as
    (B, batch, cols[, inner])."""

    perm_out: tuple[int, ...]
    perm_store: tuple[int, ...]
    num_batch: int
    num_rows: int
    num_inner: int
    num_cols: int
    mode: str

    def run(self, r: _Run) -> None:
        a = r.slots[self.left].permute(self.perm_left)
        b = r.slots[self.right].permute(self.perm_right)
        legs = self.num_batch + self.num_rows + self.num_cols
        shape = (r.B,) + (r.n,) * legs
        buf = r.buffer(self.out, r.B * r.n ** legs)
        if self.mode == "outer":
            a = a.reshape(a.shape + (1,) * self.num_cols)
            b = b.reshape(b.shape[:1 + self.num_batch] + (1,) * self.num_rows + b.shape[1 + self.num_batch:])
            if buf is None:
                r.slots[self.out] = (a * b).permute(self.perm_store).contiguous()
            else:
                torch.mul(a, b, out=buf.view(shape).permute(self.perm_out))
                r.slots[self.out] = buf.view(shape)
            return
        dims = tuple(range(1 + self.num_batch, 1 + self.num_batch + self.num_inner))
        if not r.pooled:
            r.slots[self.out] = (a * b).sum(dims).permute(self.perm_store).contiguous()
            return
        tmp = r.scratch(a.numel())
        prod = torch.mul(a, b, out=tmp.view(a.shape))
        if buf is None:
            r.slots[self.out] = prod.sum(dims).permute(self.perm_store).contiguous()
        else:
            torch.sum(prod, dims, out=buf.view(shape).permute(self.perm_out))
            r.slots[self.out] = buf.view(shape)
        r.recycle(tmp)


@dataclass(frozen=True)
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

    @property
    def contractions(self) -> int:
        return len(self.outs)

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.left,) + self.rights

    @property
    def writes(self) -> tuple[int, ...]:
        return self.outs

    def run(self, r: _Run) -> None:
        nb, rows, inner = r.B * r.n ** self.num_batch, r.n ** self.num_rows, r.n ** self.num_inner
        m = len(self.outs)
        left = r.slots[self.left].permute(self.perm_left).reshape(nb, rows, inner)
        rights = [r.slots[s].permute(p).reshape(nb, inner) for s, p in zip(self.rights, self.perms_right)]
        if r.pooled:
            vectors, prod = r.scratch(nb * inner * m), r.scratch(nb * rows * m)
            torch.stack(rights, dim=2, out=vectors.view(nb, inner, m))
            torch.bmm(left, vectors.view(nb, inner, m), out=prod.view(nb, rows, m))
            columns = prod.view(nb, rows, m)
        else:
            columns = torch.bmm(left, torch.stack(rights, dim=2))
        shape = (r.B,) + (r.n,) * (self.num_batch + self.num_rows)
        for j, out in enumerate(self.outs):
            buf = r.buffer(out, nb * rows)
            col = columns[:, :, j]
            r.slots[out] = (col.contiguous() if buf is None else buf.view(nb, rows).copy_(col)).view(shape)
        if r.pooled:
            r.recycle(vectors)
            r.recycle(prod)


@dataclass(frozen=True)
class _CopyStep:
    """Re-lay a slot out in memory (when no consumer can read it as a view)."""

    out: int
    src: int
    perm: tuple[int, ...]

    contractions = 0

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.src,)

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.out,)

    def run(self, r: _Run) -> None:
        src = r.slots[self.src].permute(self.perm)
        buf = r.buffer(self.out, src.numel())
        r.slots[self.out] = src.contiguous() if buf is None else buf.view(src.shape).copy_(src)


_LEAVES = {
    "diag": lambda X: torch.diagonal(X, dim1=1, dim2=2).contiguous(),
    "rowsum": lambda X: X.sum(2),
    "colsum": lambda X: X.sum(1),
    "trace": lambda X: torch.diagonal(X, dim1=1, dim2=2).sum(1),
    "total": lambda X: X.sum((1, 2)),
}


@dataclass(frozen=True)
class _LeafStep:
    """One edge read from ``X``, with the legs it does not keep summed out."""

    out: int
    kind: str  # a key of _LEAVES

    contractions = 0
    reads = (0,)

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.out,)

    def run(self, r: _Run) -> None:
        r.slots[self.out] = _LEAVES[self.kind](r.X)


@dataclass(frozen=True)
class _Output:
    slot: int                      # -1 for the constant 1 (no edges)
    perm: tuple[int, ...]          # slot legs -> order of the non-isolated marks
    isolated_marks: tuple[int, ...]
    isolated_unmarked: int
    num_marks: int


@dataclass(frozen=True)
class Plan:
    """A compiled contraction plan for a fixed tuple of polynomials.

    Call it with ``X`` of shape ``(B, n, n)`` (contiguous, padded nodes
    already zeroed) and the node ``mask`` ``(B, n)`` to get one tensor per
    polynomial, ``(B,)``, ``(B, n)`` or ``(B, n, n)`` by its number of marks
    (mixed mark counts are fine here). Use :func:`graphequi.poly.evaluate` or
    :func:`graphequi.poly.evaluate_each` for validation and masking. A plan
    never changes after it is built; calls from several threads at once are
    safe (each thread has its own workspace).

    Attributes:
        polys: the polynomials, in output order.
        n: the size the plan was optimized for (a size bucket).
        strategy: ``"joint"`` or ``"independent"``.
        flops: FLOPs per graph of this plan at size ``n``.
        flops_independent: FLOPs per graph when every polynomial is contracted
            on its own along its ``opt_einsum`` path (no sharing).
        steps: the steps, in execution order.
        flop_terms: ``(factor, exponent)`` per counted step: it costs
            ``factor * n ** exponent`` FLOPs.
        outputs: where each polynomial's value is read from.
        slot_legs: number of legs (``n``-sized dimensions besides the
            batch) of each slot.
        free_after: step position -> slots whose last reader it is.

    :meth:`count_flops` gives the FLOPs at any other ``n``;
    :meth:`clear_workspace` releases the calling thread's buffers.
    """

    polys: tuple[Multigraph, ...]
    n: int
    strategy: str
    flops: int = 0
    flops_independent: int = 0
    steps: tuple = ()
    flop_terms: tuple = ()
    outputs: tuple = ()
    slot_legs: tuple = ()
    free_after: dict = field(default_factory=dict)
    _workspace: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @property
    def num_steps(self) -> int:
        """Number of pairwise contraction steps (batched matmuls and
        elementwise products; a fused matrix-vector step counts once per
        vector)."""
        return sum(st.contractions for st in self.steps)

    @property
    def num_copies(self) -> int:
        """Number of explicit re-layout steps."""
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
            for out in step.writes:
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

    def _pools(self) -> dict:
        """The calling thread's free buffers: ``(dtype, device) -> {numel: [buffers]}``."""
        pools = getattr(self._workspace, "pools", None)
        if pools is None:
            pools = self._workspace.pools = {}
        return pools

    def clear_workspace(self) -> None:
        """Drop the buffers the calling thread keeps between calls (see
        :meth:`__call__`); other threads' buffers go with their threads."""
        self._pools().clear()

    def __call__(self, X: Tensor, mask: Optional[Tensor] = None) -> list[Tensor]:
        """Run the plan.

        Args:
            X: ``(B, n, n)`` input, contiguous, padded nodes zeroed.
            mask: ``(B, n)`` node mask (default: all nodes real); it is read
                by polynomials with isolated nodes.

        Returns:
            One tensor per polynomial, ``(B,)``, ``(B, n)`` or ``(B, n, n)``.
            Outputs are never workspace buffers. With autograd recording,
            plain (allocating) ops are used.
        """
        B, n, _ = X.shape
        keep = frozenset(o.slot for o in self.outputs)
        pooled = not (torch.is_grad_enabled() and X.requires_grad)
        pool = self._pools().setdefault((X.dtype, X.device), {}) if pooled else None
        run = _Run(X, len(self.slot_legs), pool, keep)
        for pos, step in enumerate(self.steps):
            step.run(run)
            for s in self.free_after.get(pos, ()):
                run.free(s)
        run.finish()
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
                val = run.slots[o.slot].permute((0,) + tuple(1 + p for p in o.perm))
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

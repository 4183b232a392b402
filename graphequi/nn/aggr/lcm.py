r"""Learnable commutative monoid (LCM) aggregation.

Ong and Veličković, "Learnable Commutative Monoids for Graph Neural Networks"
(LoG 2022): instead of running a recurrent cell over a neighbour sequence
(depth :math:`O(|\mathcal{N}(v)|)`), reduce the neighbourhood with a learned
*commutative* binary operator :math:`\oplus` over a balanced binary tree of
depth :math:`\lceil \log_2 |\mathcal{N}(v)| \rceil`.

How this implementation differs from
:class:`torch_geometric.nn.aggr.LCMAggregation`:

* no dense ``[N, max_degree, F]`` batch: the tree is reduced level by level
  over all groups at once with index arithmetic on CSR offsets, so memory is
  :math:`O(E \cdot F)` however skewed the degrees are;
* an odd element at a level is paired with a (learned) identity :math:`e`
  instead of zeros, and every group's tree depends only on its own size, so a
  group's output does not depend on the other groups of the batch; an empty
  group returns :math:`e`;
* the elements of each group are put in a canonical order before pairing, so
  the output does not depend on the order of the neighbours;
* :meth:`LCMAggregation.associativity_loss` measures (and regularises) how far
  :math:`\oplus` is from associative, the property that makes the tree
  reduction independent of the tree's shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from graphequi import ops
from graphequi.nn.aggr.base import KernelAggregation

__all__ = ["LCMAggregation", "SquareLCM", "SymmetricGRUCell", "OrderedGRUCell", "SymmetricMLPCell", "row_linear",
           "precedes"]

Cell = Union[str, torch.nn.Module, Callable[[Tensor, Tensor], Tensor]]


def row_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, batch_invariant: bool = False) -> Tensor:
    r""":math:`x W^\top + b` for ``x`` of shape ``[M, K]``.

    With ``batch_invariant=True`` every row is its own ``[1, K] x [K, N]``
    product (a batched matmul over the rows), so a row's result does not
    depend on ``M`` or on the other rows. A plain GEMM (the default) may pick
    a different kernel, and so round differently, for different ``M``.
    """
    if not batch_invariant:
        return torch.nn.functional.linear(x, weight, bias)
    out = torch.bmm(x.unsqueeze(1), weight.t().unsqueeze(0).expand(x.size(0), -1, -1)).squeeze(1)
    return out if bias is None else out + bias


def _gru_update(inp: Tensor, hid: Tensor, h: Tensor) -> Tensor:
    """One GRU step from the projected input ``[P, 3D]``, the projected hidden
    state ``[P, 3D]`` (gate order r, z, n as in ``torch.nn.GRUCell``) and the
    hidden state ``h``."""
    ir, iz, in_ = inp.chunk(3, dim=-1)
    hr, hz, hn = hid.chunk(3, dim=-1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


class _GRUPairCell(torch.nn.Module):
    """The GRU weights of a pair cell: ``weight`` ``[6D, D]`` and ``bias`` ``[6D]``
    stack :math:`[W_{ih}; W_{hh}]` (``torch.nn.GRUCell``'s gate order r, z, n)."""

    def __init__(self, channels: int, batch_invariant: bool = False):
        super().__init__()
        self.channels, self.batch_invariant = channels, batch_invariant
        self.weight = torch.nn.Parameter(torch.empty(6 * channels, channels))
        self.bias = torch.nn.Parameter(torch.empty(6 * channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.channels)  # torch.nn.GRUCell's initialisation
        torch.nn.init.uniform_(self.weight, -bound, bound)
        torch.nn.init.uniform_(self.bias, -bound, bound)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels})"


class SymmetricGRUCell(_GRUPairCell):
    r"""A GRU cell symmetrised into a commutative operator:
    :math:`a \oplus b = \tfrac12\big(\mathrm{GRU}(a, b) + \mathrm{GRU}(b, a)\big)`
    (input first, hidden state second).

    ``a`` and ``b`` are projected by separate matrix products of the same
    shape, so swapping them swaps two identical computations and
    :math:`a \oplus b` equals :math:`b \oplus a` bitwise.

    Args:
        channels (int): width :math:`D` of ``a``, ``b`` and the result.
        batch_invariant (bool): see :func:`row_linear`.

    Shapes:
        ``a``, ``b``: ``[P, D]``; output ``[P, D]``.
    """

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        pa = row_linear(a, self.weight, self.bias, self.batch_invariant)
        pb = row_linear(b, self.weight, self.bias, self.batch_invariant)
        d3 = 3 * self.channels
        return 0.5 * (_gru_update(pa[:, :d3], pb[:, d3:], b) + _gru_update(pb[:, :d3], pa[:, d3:], a))


def pair_order_keys(channels: int) -> Tensor:
    """``[2, channels]`` fixed random directions (float64, seeded, so every
    instance and run agrees) whose projections order rows canonically."""
    return torch.randn(2, channels, generator=torch.Generator().manual_seed(0x1CA), dtype=torch.float64)


_KEY_CHUNK_ROWS = 2048


def order_projections(x: Tensor, keys: Tensor) -> Tensor:
    """``[P, 2]``: the rows of ``x`` projected on the two ``keys``, in float64
    as a product and sum per row (no BLAS), so a row's key depends on the
    row only."""
    x = x.detach()
    # a few thousand rows at a time: the float64 products of all rows at once
    # would be four times the size of x, freshly allocated on every call
    if x.size(0) <= _KEY_CHUNK_ROWS:
        return (x.to(torch.float64).unsqueeze(1) * keys).sum(-1)
    return torch.cat([(chunk.to(torch.float64).unsqueeze(1) * keys).sum(-1) for chunk in x.split(_KEY_CHUNK_ROWS)])


def precedes(a: Tensor, b: Tensor, keys: Tensor) -> Tensor:
    """``[P]`` bool: row ``a`` comes before row ``b`` in the canonical order
    (:func:`order_projections`: first projection, ties by the second); for
    rows with equal keys in both projections it is False both ways."""
    ka, kb = order_projections(a, keys), order_projections(b, keys)
    return (ka[:, 0] < kb[:, 0]) | ((ka[:, 0] == kb[:, 0]) & (ka[:, 1] < kb[:, 1]))


class OrderedGRUCell(_GRUPairCell):
    r"""A GRU cell made commutative by ordering its arguments:
    :math:`a \oplus b = \mathrm{GRU}(\mathrm{lo}, \mathrm{hi})` (input
    first, hidden state second), where :math:`\mathrm{lo}` is whichever of
    :math:`a, b` comes first by a fixed random projection (ties broken by a
    second one; :func:`precedes`).

    :math:`(a, b)` and :math:`(b, a)` select the same input and hidden state,
    so the result is bitwise commutative, at one GRU evaluation per pair
    (half of :class:`SymmetricGRUCell`'s matrix work, which averages both
    orders). The price: the operator jumps where the two keys cross, as any
    sorting does; rows equal in both keys but different (probability zero
    for continuous features) are taken in argument order. Arguments, weights
    and shapes as for :class:`SymmetricGRUCell`.
    """

    def __init__(self, channels: int, batch_invariant: bool = False):
        super().__init__(channels, batch_invariant)
        self.register_buffer("order_keys", pair_order_keys(channels), persistent=False)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        first = precedes(b, a, self.order_keys).unsqueeze(-1)
        lo, hi = torch.where(first, b, a), torch.where(first, a, b)
        d3 = 3 * self.channels
        w, bias = self.weight, self.bias
        return _gru_update(row_linear(lo, w[:d3], bias[:d3], self.batch_invariant),
                           row_linear(hi, w[d3:], bias[d3:], self.batch_invariant), hi)


class SymmetricMLPCell(torch.nn.Module):
    r"""A cheap commutative operator: an MLP on symmetric functions of the pair,

    .. math::
        a \oplus b = W_2\,\mathrm{ReLU}\big(W_1 [\,a + b \,\|\, a \odot b
        \,\|\, |a - b|\,] + b_1\big) + b_2 .

    The first layer sees :math:`\max(a, b) = \tfrac12(a + b + |a - b|)` and
    :math:`\min(a, b) = \tfrac12(a + b - |a - b|)` too (they are linear in its
    inputs), at three instead of four input blocks. The MLP's input is bitwise
    the same for :math:`(a, b)` and :math:`(b, a)` (IEEE subtraction is
    antisymmetric), so the operator is exactly commutative, at one MLP call
    per pair (the symmetrised GRU needs two GRU evaluations). The three
    blocks are one kernel, :func:`graphequi.ops.symmetric_pair_features`.

    Args:
        channels (int): width :math:`D` of ``a``, ``b`` and the result.
        hidden_channels (int, optional): hidden width (default :math:`D`).
        batch_invariant (bool): see :func:`row_linear`.
    """

    def __init__(self, channels: int, hidden_channels: Optional[int] = None, batch_invariant: bool = False):
        super().__init__()
        hidden = hidden_channels or channels
        self.channels, self.hidden_channels, self.batch_invariant = channels, hidden, batch_invariant
        self.lin1 = torch.nn.Linear(3 * channels, hidden)
        self.lin2 = torch.nn.Linear(hidden, channels)

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.forward_pairs(torch.stack([a, b], dim=1))

    def forward_pairs(self, pairs: Tensor) -> Tensor:
        r""":math:`a \oplus b` for ``pairs`` ``[P, 2, D]`` (the layout the
        reduction tree has them in: no split, no stack)."""
        sym = ops.symmetric_pair_features(pairs)
        h = torch.relu(row_linear(sym, self.lin1.weight, self.lin1.bias, self.batch_invariant))
        return row_linear(h, self.lin2.weight, self.lin2.bias, self.batch_invariant)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, hidden_channels={self.hidden_channels})"


_EXACT_CELLS = {"max": torch.maximum, "sum": torch.add}


def _exclusive_cumsum(t: Tensor) -> Tensor:
    return torch.cumsum(t, 0) - t


def _read(position: Optional[Tensor], index: Tensor) -> Tensor:
    """``position[index]``, or ``index`` itself without ``position``."""
    return index if position is None else position.index_select(0, index)


def _group_of(slots: int, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For ``slots`` consecutive slots laid out group after group with
    ``counts[g]`` slots each: the group of every slot, its rank in the group,
    and whether the slot is used (slots past ``counts.sum()`` are padding)."""
    ends = torch.cumsum(counts, 0)
    s = torch.arange(slots, device=counts.device)
    group = torch.searchsorted(ends, s, right=True).clamp_(max=max(counts.numel() - 1, 0))
    used = s < ends[-1] if counts.numel() else torch.zeros_like(s, dtype=torch.bool)
    return group, s - (ends - counts)[group], used


class LCMAggregation(KernelAggregation):
    r"""The learnable commutative monoid aggregation of Ong and Veličković,
    "Learnable Commutative Monoids for Graph Neural Networks" (LoG 2022),
    without padding, with an identity element and invariant to the order of
    the elements.

    Each element is projected, :math:`h_i = \mathrm{ReLU}(W x_i + b)` (or
    :math:`h_i = x_i` without ``project``), the elements of group :math:`g`
    are sorted by a canonical key, and the group is reduced by a balanced
    binary tree of a commutative operator :math:`\oplus`:

    .. math::
        \mathrm{out}_g = \bigoplus_{i \in \mathcal{X}_g} h_i, \qquad
        h^{(\ell+1)}_k = h^{(\ell)}_{2k} \oplus h^{(\ell)}_{2k+1}
        \quad (h^{(\ell)}_{2k+1} := e \text{ past the end of the level}),

    which takes :math:`\lceil \log_2 |\mathcal{X}_g| \rceil` levels; a group
    of one element returns it, an empty group returns the identity
    :math:`e` (there is no readout after the tree, so the readout of
    :math:`e` is :math:`e`). All groups are reduced together, one level at a
    time, with buffers whose total size is :math:`O(E)` (plus at most
    :math:`G` padding rows per level when ``max_num_elements`` is given).

    What depends on what, exactly:

    * **Other groups:** the tree of a group is a function of its own elements
      only. With ``batch_invariant=True`` every matrix product is done row by
      row, so a group's output is bitwise the same whatever else is in the
      batch; with the default GEMMs it may differ in the last bits, because
      BLAS rounds differently for different numbers of rows.
    * **Order of the elements** (``canonical_order=True``): elements are
      sorted by two fixed random projections of the *input* rows
      :math:`x_i` (in float64; lexicographically), so the output is invariant
      to permuting the elements (bitwise with ``batch_invariant=True``, up
      to GEMM rounding otherwise), except when two *different* rows of
      one group have equal keys (probability zero for continuous features; a
      concern only for adversarial inputs), which are then left in input
      order. Equal rows may be swapped freely. With
      ``canonical_order=False`` the elements keep their input order within
      each group (the output then depends on it, as for sequence aggregators).
    * **NaN** in a row propagates to the output of its group (all features
      for the learned cells) and to no other group.

    :math:`\oplus` is commutative exactly (bitwise) for the built-in cells,
    but only approximately associative, so the output depends on the tree's
    shape: :meth:`associativity_loss` measures that, and can be added to the
    training loss as a regulariser.

    Args:
        in_channels (int): width of the input rows.
        out_channels (int): width :math:`D` of :math:`h` and of the output.
        cell (str or callable): :math:`\oplus`: ``'gru'`` (symmetrised GRU
            cell, :class:`SymmetricGRUCell`), ``'ordered-gru'`` (one GRU
            evaluation per pair on canonically ordered arguments,
            :class:`OrderedGRUCell`), ``'mlp'`` (the cheaper
            :class:`SymmetricMLPCell`), ``'max'`` or ``'sum'`` (exactly
            associative, for testing; pair them with ``identity=-inf`` /
            ``0``), or any module/callable ``f(a, b) -> [P, D]``, which must
            be commutative itself.
        identity (str, float or Tensor): :math:`e`: ``'learned'`` (a
            parameter, initialised to zeros), ``'zeros'``, a constant, or a
            ``[D]`` tensor (fixed).
        project (bool): apply :math:`\mathrm{ReLU}(W x + b)` first; without
            it ``in_channels`` must equal ``out_channels``.
        canonical_order (bool): sort each group's elements by a canonical key
            before pairing (see above).
        batch_invariant (bool): compute every matrix product row by row (see
            above); slower.

    Shapes:
        - input: ``x`` ``[E, in_channels]``; ``index`` ``[E]`` (any order) with
          ``dim_size`` groups, or CSR ``ptr`` ``[G + 1]`` (then ``x`` must be
          grouped accordingly); ``dim`` must be ``-2`` or ``0``.
        - output: ``[G, out_channels]``.

    Example:
        >>> import torch
        >>> agg = LCMAggregation(4, 8, cell="mlp")
        >>> x, index = torch.randn(6, 4), torch.tensor([2, 0, 2, 2, 0, 2])
        >>> agg(x, index, dim_size=4).shape
        torch.Size([4, 8])
        >>> torch.equal(agg(x, index, dim_size=4)[1], agg.identity_element())  # empty group
        True
    """

    def __init__(self, in_channels: int, out_channels: int, *, cell: Cell = "gru",
                 identity: Union[str, float, Tensor] = "learned", project: bool = True,
                 canonical_order: bool = True, batch_invariant: bool = False):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
        if not project and in_channels != out_channels:
            raise ValueError(f"LCMAggregation without project needs in_channels == out_channels, "
                             f"got {in_channels} and {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.project, self.canonical_order, self.batch_invariant = project, canonical_order, batch_invariant
        self.lin = torch.nn.Linear(in_channels, out_channels) if project else None
        self.cell_name = cell if isinstance(cell, str) else getattr(cell, "__name__", type(cell).__name__)
        self._exact = None
        if cell == "gru":
            self.cell = SymmetricGRUCell(out_channels, batch_invariant)
        elif cell == "ordered-gru":
            self.cell = OrderedGRUCell(out_channels, batch_invariant)
        elif cell == "mlp":
            self.cell = SymmetricMLPCell(out_channels, batch_invariant=batch_invariant)
        elif isinstance(cell, str):
            if cell not in _EXACT_CELLS:
                raise ValueError(f"cell must be 'gru', 'ordered-gru', 'mlp', 'max', 'sum' or a callable, "
                                 f"got {cell!r}")
            self.cell, self._exact = None, _EXACT_CELLS[cell]
        elif callable(cell):
            self.cell = cell
        else:
            raise TypeError(f"cell must be a name or a callable, got {type(cell).__name__}")
        self.identity_kind = identity if isinstance(identity, str) else "fixed"
        if identity == "learned":
            self.identity = torch.nn.Parameter(torch.zeros(out_channels))
        else:
            if identity == "zeros":
                value = torch.zeros(out_channels)
            elif isinstance(identity, str):
                raise ValueError(f"identity must be 'learned', 'zeros', a float or a tensor, got {identity!r}")
            else:
                value = torch.as_tensor(identity, dtype=torch.get_default_dtype())
                value = value.expand(out_channels).clone() if value.dim() == 0 else value.clone()
                if value.shape != (out_channels,):
                    raise ValueError(f"identity must have shape [{out_channels}], got {list(value.shape)}")
            self.register_buffer("identity", value)
        # canonical-order keys: fixed random directions, seeded so that every
        # instance (and every run) orders the same rows the same way
        self.register_buffer("order_keys", pair_order_keys(in_channels), persistent=False)

    @classmethod
    def square(cls, **kwargs) -> "SquareLCM":
        """A factory ``channels -> LCMAggregation(channels, channels, **kwargs)``,
        for models that build one aggregation per layer (e.g.
        :class:`~graphequi.nn.PolyGIN`'s ``aggr=``)."""
        return SquareLCM(tuple(sorted(kwargs.items())))

    def reset_parameters(self) -> None:
        if self.lin is not None:
            self.lin.reset_parameters()
        if isinstance(self.cell, torch.nn.Module) and hasattr(self.cell, "reset_parameters"):
            self.cell.reset_parameters()
        if self.identity_kind == "learned":
            with torch.no_grad():
                self.identity.zero_()

    # -- the operator ----------------------------------------------------
    def combine(self, a: Tensor, b: Tensor) -> Tensor:
        r""":math:`a \oplus b` row by row, for ``a``, ``b`` of shape ``[P, D]``."""
        if self._exact is not None:
            return self._exact(a, b)
        return self.cell(a, b)

    def combine_pairs(self, pairs: Tensor) -> Tensor:
        r""":math:`a \oplus b` for ``pairs`` ``[P, 2, D]`` (``a = pairs[:, 0]``);
        cells with a ``forward_pairs`` take them as they are."""
        if self._exact is None and hasattr(self.cell, "forward_pairs"):
            return self.cell.forward_pairs(pairs)
        return self.combine(*pairs.unbind(1))

    def identity_element(self, dtype: Optional[torch.dtype] = None) -> Tensor:
        """The identity :math:`e` (``[D]``): what an empty group returns."""
        return self.identity if dtype is None else self.identity.to(dtype)

    def embed(self, x: Tensor) -> Tensor:
        r"""The projected rows :math:`h_i` that :math:`\oplus` combines."""
        if self.lin is None:
            return x
        return torch.relu(row_linear(x, self.lin.weight, self.lin.bias, self.batch_invariant))

    # -- checks ----------------------------------------------------------
    def _check_x(self, x: Tensor, dim: int) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{self}: x must be a tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{self}: x must be a floating-point tensor, got {x.dtype}")
        if x.dim() != 2:
            raise ValueError(f"{self}: x must have shape [E, in_channels], got {list(x.shape)}")
        if dim not in (0, -2):
            raise ValueError(f"{self}: reduces along the rows of a 2-D x (dim=-2 or 0), got dim={dim}")
        if x.size(1) != self.in_channels:
            raise ValueError(f"{self}: x has {x.size(1)} channels but in_channels={self.in_channels}")

    # -- forward -----------------------------------------------------------
    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2,
                max_num_elements: Optional[int] = None) -> Tensor:
        r"""Reduces the rows of ``x`` group by group.

        Args:
            x (Tensor): ``[E, in_channels]``.
            index (Tensor, optional): ``[E]`` group of each row, any order.
            ptr (Tensor, optional): ``[G + 1]`` CSR offsets of rows grouped
                contiguously (instead of ``index``).
            dim_size (int, optional): number of groups ``G``.
            dim (int): ``-2`` or ``0``.
            max_num_elements (int, optional): an upper bound on the size of
                any group. Without it the level count and the exact size of
                every level are read from the group sizes (one host sync);
                with it, buffers get static sizes (at most ``G`` padding rows
                per level) and nothing syncs, as ``torch.compile`` needs.
                Eager mode checks the bound.

        Returns:
            ``[G, out_channels]``.
        """
        self._check_x(x, dim)
        num_rows = x.size(0)
        if ptr is not None:
            if not isinstance(ptr, Tensor) or ptr.dtype not in (torch.int64, torch.int32) or ptr.dim() != 1:
                raise TypeError(f"{self}: ptr must be a 1-D int64/int32 tensor")
            num_groups = ptr.numel() - 1
            ptr = ptr.long()
            index = ops.ptr_to_index(ptr, num_rows)
            counts = ptr[1:] - ptr[:-1]
        else:
            if index is None:
                raise ValueError(f"{self}: one of index or ptr is needed")
            if dim_size is None:
                dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
            num_groups = dim_size
            # the kernel checks dtype, length and range of index, with clear errors
            counts = ops.scatter(torch.ones_like(index, dtype=torch.long), index, dim=0, dim_size=num_groups)
            index = index.long()
        if index.numel() != num_rows:
            raise ValueError(f"{self}: index has {index.numel()} entries but x has {num_rows} rows")
        h = self.embed(x)
        e = self.identity_element(h.dtype)
        if num_groups == 0:
            return h.new_zeros(0, self.out_channels)

        sizes = self._level_sizes(counts, num_rows, num_groups, max_num_elements)
        return self._reduce_tree(h, self._order(x, index), counts, sizes, e)

    def _order(self, x: Tensor, index: Tensor) -> Tensor:
        """The permutation that groups the rows (group-major, stable), and with
        ``canonical_order`` sorts each group by its keys."""
        if not self.canonical_order:
            return torch.sort(index, stable=True).indices
        keys = order_projections(x, self.order_keys)
        order = torch.sort(keys[:, 1], stable=True).indices
        order = order[torch.sort(keys[:, 0][order], stable=True).indices]
        return order[torch.sort(index[order], stable=True).indices]

    @staticmethod
    def _level_sizes(counts: Tensor, num_rows: int, num_groups: int,
                     max_num_elements: Optional[int]) -> list[int]:
        """The number of pairs every level of the tree combines (an upper
        bound per level when ``max_num_elements`` is given)."""
        if max_num_elements is not None:
            if max_num_elements < 0:
                raise ValueError(f"max_num_elements must be non-negative, got {max_num_elements}")
            if not torch.compiler.is_compiling() and counts.numel() and int(counts.max()) > max_num_elements:
                raise ValueError(f"a group has {int(counts.max())} elements, more than "
                                 f"max_num_elements={max_num_elements}")
            levels = math.ceil(math.log2(max_num_elements)) if max_num_elements > 1 else 0
            sizes, pairs = [], num_rows
            for _ in range(levels):
                # a level halves every group, rounding up: at most one extra pair per group
                pairs = min(pairs, (pairs + num_groups) // 2)
                sizes.append(pairs)
            return sizes
        # every level up to the bound that E allows, read back in one host sync;
        # the levels past the largest group's depth have no pairs and are dropped
        bound = max(num_rows - 1, 0).bit_length()  # ceil(log2(E)) levels reduce any group
        if bound == 0:
            return []
        totals = []
        for level in range(bound):  # O(G) memory per level, not a [levels, G] table
            live = (counts + (1 << level) - 1) >> level  # group sizes entering the level: ceil(c / 2^l)
            totals.append(torch.where(live > 1, (live + 1) // 2, 0).sum())
        sizes = torch.stack(totals).tolist()
        while sizes and sizes[-1] == 0:
            sizes.pop()
        return sizes

    def _reduce_tree(self, h: Tensor, order: Tensor, counts: Tensor, level_pairs: list[int], e: Tensor) -> Tensor:
        """Every group's tree, one level at a time over all groups.

        ``h`` is read through ``order`` (the group-major canonical order of
        its rows), so it is never copied into that order. A level holds only
        the groups still being reduced, each as its rows followed by ``e``
        when their number is odd, so that the pairs are the consecutive rows
        of one gather, which goes to the cell as it is (``[P, 2, D]``,
        :meth:`combine_pairs`); nothing else of size ``E`` is copied. A group
        leaves the level loop as soon as it is down to one row, which goes
        straight to the output; the rows of the others are never carried from
        level to level.
        """
        live, offset, rows, position = counts, _exclusive_cumsum(counts), h, order
        out = self._finished(e.expand(counts.numel(), -1), rows, position, live, offset)
        for num_pairs in level_pairs:
            pairs = torch.where(live > 1, (live + 1) // 2, 0)
            group, rank, used = _group_of(2 * num_pairs, 2 * pairs)
            real = used & (rank < live[group])
            source = _read(position, (offset[group] + rank).clamp_(max=max(rows.size(0) - 1, 0)))
            level = torch.cat([rows, e.unsqueeze(0)]).index_select(0, torch.where(real, source, rows.size(0)))
            rows, position = self.combine_pairs(level.view(num_pairs, 2, level.size(-1))), None
            live, offset = pairs, _exclusive_cumsum(pairs)
            out = self._finished(out, rows, position, live, offset)
        return out.contiguous()  # not a view of e when every group is empty

    @staticmethod
    def _finished(out: Tensor, rows: Tensor, position: Optional[Tensor], live: Tensor, offset: Tensor) -> Tensor:
        """``out`` with the groups that are down to one row (``live == 1``)
        set to it (row ``position[offset]`` of ``rows``, or ``offset``
        without ``position``)."""
        if rows.size(0) == 0:
            return out
        done = live == 1
        first = _read(position, torch.where(done, offset, 0).clamp_(max=rows.size(0) - 1))
        return torch.where(done.unsqueeze(-1), rows.index_select(0, first), out)

    # -- regularisers ------------------------------------------------------
    def _sample(self, x: Tensor, num: int, generator: Optional[torch.Generator]) -> Tensor:
        self._check_x(x, -2)
        if x.size(0) == 0:
            raise ValueError(f"{self}: needs at least one row to sample from")
        rows = torch.randint(0, x.size(0), (num,), generator=generator, device=x.device)
        return self.embed(x.index_select(0, rows))

    def associativity_loss(self, x: Tensor, num_triples: int = 256,
                           generator: Optional[torch.Generator] = None) -> Tensor:
        r"""Mean squared associativity error over random triples of rows of ``x``:

        .. math::
            \frac{1}{T} \sum_{t=1}^{T} \big\| (a_t \oplus b_t) \oplus c_t
            - a_t \oplus (b_t \oplus c_t) \big\|_2^2

        with :math:`a_t, b_t, c_t` projected rows drawn uniformly (with
        replacement). Zero for the exactly associative cells; differentiable,
        so it can be added to a training loss.

        Args:
            x (Tensor): ``[E, in_channels]`` inputs (e.g. a batch's messages).
            num_triples (int): :math:`T`.
            generator (torch.Generator, optional): for the draw.
        """
        if num_triples < 1:
            raise ValueError(f"num_triples must be positive, got {num_triples}")
        a, b, c = self._sample(x, 3 * num_triples, generator).chunk(3)
        diff = self.combine(self.combine(a, b), c) - self.combine(a, self.combine(b, c))
        return diff.pow(2).sum(-1).mean()

    def identity_loss(self, x: Tensor, num_samples: int = 256,
                      generator: Optional[torch.Generator] = None) -> Tensor:
        r"""Mean :math:`\|a \oplus e - a\|_2^2` over random projected rows
        :math:`a` of ``x``: how far :math:`e` is from an identity."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        a = self._sample(x, num_samples, generator)
        e = self.identity_element(a.dtype).expand_as(a)
        return (self.combine(a, e) - a).pow(2).sum(-1).mean()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, cell={self.cell_name!r}, "
                f"identity={self.identity_kind!r}, project={self.project}, "
                f"canonical_order={self.canonical_order})")


@dataclass(frozen=True)
class SquareLCM:
    """``channels -> LCMAggregation(channels, channels, **kwargs)`` (picklable)."""

    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self, channels: int) -> LCMAggregation:
        return LCMAggregation(channels, channels, **dict(self.kwargs))

    def __repr__(self) -> str:
        return "LCMAggregation.square(" + ", ".join(f"{k}={v!r}" for k, v in self.kwargs) + ")"

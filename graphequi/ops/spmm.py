r"""Fused CSR gather-reduce (sparse matrix times dense features).

For a CSR matrix with offsets ``ptr`` (``[N_dst + 1]``), column ids ``col``
(``[E]``) and optional edge values ``value`` (``[E]``, default 1):

.. math::
    \mathrm{out}_i = \bigoplus_{k = \mathrm{ptr}_i}^{\mathrm{ptr}_{i+1} - 1}
        \mathrm{value}_k \, x_{\mathrm{col}_k}

with :math:`\oplus` one of sum, mean, min, max; empty rows give ``0``, NaN
propagates, as in :func:`graphequi.ops.scatter`. ``value`` may also be
``[E, F...]``, one weight per edge and feature (sum and mean):
:math:`\mathrm{out}_{i} = \sum_k \mathrm{value}_k \odot x_{\mathrm{col}_k}`,
the depthwise product of continuous-filter convolutions; its gradient for
``value`` is the ``[E, F]`` product :math:`g_{\mathrm{row}(k)} \odot
x_{\mathrm{col}_k}`, the only ``[E, F]`` tensor it makes. The kernels read each
``x[col[k]]`` row once and reduce it on the spot: no ``[E, F]`` message tensor
exists in the forward or in the backward for ``x``.

Gradients. For sum and mean, :math:`\partial L / \partial x = A^\top g` (mean:
rows of :math:`A` scaled by :math:`1/\deg`), computed as an spmm over the
*transpose* (CSC) of the matrix, and
:math:`\partial L / \partial \mathrm{value}_k = \langle g_{\mathrm{row}(k)},
x_{\mathrm{col}_k} \rangle` (over :math:`\deg` for mean). For min and max the
gradient of output entry ``(i, f)`` goes to its **single winning edge** (the
lowest position ``k`` in the CSR on ties), like the min/max of ``scatter``.

The transpose is computed once per backward call (a stable counting sort) when
it is not given. Pass it yourself to reuse it across calls: :func:`to_csr`
returns a :class:`CSR` that carries it (``csc=(colptr, row, perm)``), and
:meth:`CSR.spmm` hands it on.

PyG's message passing sends messages from ``edge_index[0]`` (source) to
``edge_index[1]`` (target); :func:`to_csr` of an ``edge_index`` therefore
builds the CSR over *targets* (the CSC of ``edge_index``), so that
``to_csr(edge_index).spmm(x)`` equals
``torch_geometric.utils.scatter(x[edge_index[0]], edge_index[1], reduce=...)``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

from graphequi.ops._backend import ops_for
from graphequi.ops._registry import check_reduce
from graphequi.ops.checks import check_edge_index
from graphequi.ops.reduce import _REDUCES, _check_integer_tensor, _check_mean, _check_src, _needs_grad

__all__ = ["CSR", "spmm", "to_csr"]


def _check_same_device(t: Tensor, x: Tensor, name: str) -> None:
    if t.device != x.device:
        raise ValueError(f"{name} is on {t.device} but x is on {x.device}")


def _check_spmm_args(ptr, col, x, value, csc) -> None:
    """Shape, dtype and device checks: they read no tensor values (no sync)."""
    _check_integer_tensor(ptr, "ptr")
    _check_integer_tensor(col, "col")
    if ptr.dtype != col.dtype:
        raise TypeError(f"ptr and col must have the same dtype, got {ptr.dtype} and {col.dtype}")
    if ptr.numel() < 1:
        raise ValueError("ptr must have at least one entry (ptr = [0] for zero rows)")
    _check_src(x, "x")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension ([N_src, F...])")
    _check_same_device(ptr, x, "ptr")
    _check_same_device(col, x, "col")
    if value is not None:
        if not isinstance(value, Tensor):
            raise TypeError(f"value must be a torch.Tensor or None, got {type(value).__name__}")
        per_edge = value.dim() == 1 and value.numel() == col.numel()
        per_feature = value.dim() > 1 and value.shape == (col.numel(),) + x.shape[1:]
        if not (per_edge or per_feature):
            raise ValueError(f"value must be [E] = [{col.numel()}] or [E, F...] = "
                             f"{[col.numel()] + list(x.shape[1:])} (a value per edge and feature), "
                             f"got shape {tuple(value.shape)}")
        if value.dtype != x.dtype:
            raise TypeError(f"value must have the dtype of x ({x.dtype}), got {value.dtype}")
        _check_same_device(value, x, "value")
    if csc is not None:
        if not (isinstance(csc, (tuple, list)) and len(csc) == 3 and all(isinstance(t, Tensor) for t in csc)):
            raise TypeError("csc must be a tuple (colptr, row, perm) of tensors")
        colptr, row, perm = csc
        if colptr.dim() != 1 or colptr.numel() != x.size(0) + 1:
            raise ValueError(f"csc colptr must have x.size(0) + 1 = {x.size(0) + 1} entries, "
                             f"got shape {tuple(colptr.shape)}")
        if row.shape != col.shape or perm.shape != col.shape:
            raise ValueError(f"csc row and perm must have one entry per edge ({col.numel()})")
        if colptr.dtype != col.dtype or row.dtype != col.dtype or perm.dtype != torch.int64:
            raise TypeError("csc colptr and row must have col's dtype and perm must be int64")
        for t, name in ((colptr, "csc colptr"), (row, "csc row"), (perm, "csc perm")):
            _check_same_device(t, x, name)


def spmm(ptr: Tensor, col: Tensor, x: Tensor, value: Optional[Tensor] = None, reduce: str = "sum", *,
         csc: Optional[Tuple[Tensor, Tensor, Tensor]] = None, validate: bool = True) -> Tensor:
    r"""Gather-reduce over a CSR matrix:
    :math:`\mathrm{out}_i = \bigoplus_{k \in [\mathrm{ptr}_i, \mathrm{ptr}_{i+1})} \mathrm{value}_k\, x_{\mathrm{col}_k}`.

    Args:
        ptr (Tensor): ``[N_dst + 1]`` row offsets, ``ptr[0] == 0``,
            non-decreasing, ``ptr[-1] == E``; int64 or int32.
        col (Tensor): ``[E]`` column (source row of ``x``) of every edge, in
            ``[0, N_src)``; the dtype of ``ptr``.
        x (Tensor): ``[N_src, F...]`` features; trailing dims are flattened
            for the kernel and restored. Floating or integer (not for mean).
        value (Tensor, optional): ``[E]`` edge weights of ``x``'s dtype;
            ``None`` means 1. Or ``[E, F...]``, one weight per edge and
            feature (``x``'s trailing shape): the depthwise message
            :math:`\mathrm{value}_k \odot x_{\mathrm{col}_k}` of continuous
            filters (SchNet, PONITA), reduced without materialising it;
            sum and mean only. Differentiable.
        reduce (str): ``"sum"``/``"add"``, ``"mean"``, ``"min"`` or ``"max"``.
        csc (tuple, optional): the transpose ``(colptr [N_src + 1], row [E],
            perm [E] int64)`` (CSC position ``p`` holds CSR edge ``perm[p]``),
            as built by :func:`to_csr`; only the sum/mean backward for ``x``
            uses it, and computes it when absent.
        validate (bool): check the index *values* (``ptr`` starts at 0, is
            non-decreasing and ends at ``E``; ``col`` in range). They read
            the indices, which is a host sync on GPUs. Pass ``False`` (the
            trusted path) for a CSR checked once at data entry: nothing then
            syncs and ``torch.compile(fullgraph=True)`` runs without graph
            breaks. Invalid indices on the trusted path are undefined
            behavior. Shape and dtype checks always run.

    Returns:
        Tensor ``[N_dst, F...]`` of ``x``'s dtype (half types accumulate in
        float32).

    Example:
        >>> ptr, col = torch.tensor([0, 2, 2, 3]), torch.tensor([0, 1, 1])
        >>> x = torch.tensor([[1., 2.], [3., 4.]])
        >>> spmm(ptr, col, x)
        tensor([[4., 6.],
                [0., 0.],
                [3., 4.]])
        >>> spmm(ptr, col, x, torch.tensor([2., -1., 1.]), reduce="max")
        tensor([[2., 4.],
                [0., 0.],
                [3., 4.]])
    """
    check_reduce(reduce, _REDUCES)
    _check_spmm_args(ptr, col, x, value, csc)
    _check_mean(x, reduce, "x")
    features = x.shape[1:]
    F = 1
    for s in features:
        F *= s
    x2 = x.reshape(x.size(0), F)
    ops = ops_for(x.device)
    if value is not None and value.dim() > 1:
        if reduce not in ("sum", "add", "mean"):
            raise ValueError(f"a value per edge and feature supports reduce 'sum' or 'mean', got {reduce!r}")
        colptr, row, perm = csc if csc is not None else (None, None, None)
        out = ops.spmm_feature(ptr, col, x2, value.reshape(value.size(0), F), None, colptr, row, perm,
                               "sum" if reduce == "add" else reduce, validate)
        return out.reshape((ptr.size(0) - 1,) + tuple(features))
    if reduce in ("min", "max") and (_needs_grad(x) or (value is not None and _needs_grad(value))):
        out, _ = ops.spmm_arg(ptr, col, x2, value, reduce, validate)
    else:
        colptr, row, perm = csc if csc is not None else (None, None, None)
        out = ops.spmm(ptr, col, x2, value, colptr, row, perm, "sum" if reduce == "add" else reduce, validate)
    return out.reshape((ptr.size(0) - 1,) + tuple(features))


class CSR(NamedTuple):
    r"""A CSR matrix ``[N_dst, N_src]`` ready for :func:`spmm`, with the
    transpose cached for the backward.

    Attributes:
        ptr (Tensor): ``[N_dst + 1]`` row offsets.
        col (Tensor): ``[E]`` column ids (rows of ``x``), ``ptr``'s dtype.
        value (Tensor, optional): ``[E]`` (or ``[E, F...]``) edge values in
            CSR order.
        csc (tuple, optional): ``(colptr [N_src + 1], row [E], perm [E])``,
            the transpose: CSC position ``p`` holds CSR edge ``perm[p]``.
    """
    ptr: Tensor
    col: Tensor
    value: Optional[Tensor] = None
    csc: Optional[Tuple[Tensor, Tensor, Tensor]] = None

    def spmm(self, x: Tensor, reduce: str = "sum", *, validate: bool = True) -> Tensor:
        """:func:`spmm` of this matrix with ``x``, reusing the cached transpose."""
        return spmm(self.ptr, self.col, x, self.value, reduce, csc=self.csc, validate=validate)


def _is_edge_index(adj) -> bool:
    return isinstance(adj, EdgeIndex)


def _is_torch_sparse(adj) -> bool:
    # torch_geometric.typing.SparseTensor is a placeholder class when the optional
    # torch_sparse package is absent, so this is False then
    return WITH_TORCH_SPARSE and isinstance(adj, SparseTensor)


def _inverse(perm: Tensor) -> Tensor:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device, dtype=perm.dtype)
    return inv


def _from_plain_edge_index(edge_index: Tensor, num_nodes: int, value: Optional[Tensor], transpose: bool,
                           validate: bool) -> CSR:
    # Read as a CSR with one row per edge, edge_index[1] is the column list,
    # so its transpose is the stable counting sort of the edges by target:
    # the target-major CSR in O(E + N), with the node count kept symbolic
    # under torch.compile (PyG's coo-to-csr conversion specialises on it,
    # which recompiles the model for every batch size).
    ops = ops_for(edge_index.device)
    source, target = edge_index[0], edge_index[1]
    one_per_edge = torch.arange(target.numel() + 1, device=target.device, dtype=target.dtype)
    ptr, _, order = ops.csr_transpose(one_per_edge, target, num_nodes, validate)
    col = source.index_select(0, order)
    csr_value = None if value is None else value.index_select(0, order)
    csc = ops.csr_transpose(ptr, col, num_nodes, validate) if transpose else None
    return CSR(ptr, col, csr_value, csc)


def _from_edge_index(edge_index, num_nodes: Optional[int], value: Optional[Tensor], transpose: bool,
                     validate: bool = True) -> CSR:
    if value is not None and (value.dim() == 0 or value.size(0) != edge_index.size(1)):
        raise ValueError(f"value must have one entry (or row) per edge ({edge_index.size(1)}), "
                         f"got shape {tuple(value.shape)}")
    if not isinstance(edge_index, EdgeIndex) or None in edge_index.sparse_size():
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
        if not isinstance(edge_index, EdgeIndex):
            return _from_plain_edge_index(edge_index, num_nodes, value, transpose, validate)
        edge_index = EdgeIndex(edge_index.as_tensor(), sparse_size=(num_nodes, num_nodes),
                               sort_order=edge_index.sort_order)
    elif num_nodes is not None and tuple(edge_index.sparse_size()) != (num_nodes, num_nodes):
        raise ValueError(f"num_nodes={num_nodes} disagrees with the EdgeIndex's sparse size "
                         f"{tuple(edge_index.sparse_size())}")
    # Messages flow edge_index[0] -> edge_index[1]: the CSR is over targets,
    # i.e. the CSC of edge_index. EdgeIndex caches it (and sorts at most once).
    order = None  # original edge of each CSR position, None = identity
    if not edge_index.is_sorted:
        edge_index, order = edge_index.sort_by("col", stable=True)
    (ptr, col), csc_perm = edge_index.get_csc()
    if csc_perm is not None:
        order = csc_perm if order is None else order[csc_perm]
    csr_value = value if value is None or order is None else value[order]
    csc = None
    if transpose:
        # The transpose of the CSC is edge_index's own CSR, also cached.
        (colptr, row), csr_perm = edge_index.get_csr()
        position = None if csc_perm is None else _inverse(csc_perm)  # edge of edge_index -> CSR position
        if csr_perm is None:
            perm = position if position is not None else torch.arange(col.numel(), device=col.device)
        else:
            perm = csr_perm if position is None else position[csr_perm]
        csc = (colptr.to(col.dtype), row.to(col.dtype), perm.long())
    return CSR(ptr, col, csr_value, csc)


def to_csr(adj, num_nodes: Optional[int] = None, *, value: Optional[Tensor] = None,
           transpose: bool = True, validate: bool = True) -> CSR:
    r"""A :class:`CSR` for :func:`spmm` from the adjacency types PyG users have.

    * ``edge_index`` (a ``[2, E]`` int tensor or a
      :class:`torch_geometric.EdgeIndex`): PyG's message-passing convention,
      messages go from ``edge_index[0]`` to ``edge_index[1]``, so the CSR is
      over targets and ``to_csr(ei).spmm(x, reduce)`` equals
      ``scatter(x[ei[0]], ei[1], 0, N, reduce)``. An ``EdgeIndex`` is used
      through its cached CSC/CSR (no sort when it is already sorted or
      cached; an unsorted one is sorted by target once). ``value`` gives the
      per-edge weights in ``edge_index`` order.
    * a ``torch.sparse_csr`` tensor ``A`` (``[N_dst, N_src]``): ``A @ x``
      semantics; ``crow_indices``, ``col_indices`` and ``values``.
    * a ``torch_sparse.SparseTensor`` ``A`` (when installed): ``A @ x``
      semantics (pass PyG's ``adj_t``), with its cached CSC.

    Args:
        adj: the adjacency, one of the above.
        num_nodes (int, optional): node count of an ``edge_index`` whose size
            is not known; inferred from its maximum otherwise (a sync).
        value (Tensor, optional): ``[E]`` (or ``[E, F...]``) edge weights for ``edge_index``
            inputs (the sparse tensors carry their own values).
        transpose (bool): also build the transpose that the backward uses.
        validate (bool): check that an ``edge_index`` lies in
            ``[0, num_nodes)`` (it reads the values: a host synchronisation).
            Sorting an out-of-range ``edge_index`` writes out of bounds, so
            pass ``False`` only for input validated where it entered (e.g. by
            :class:`graphequi.transforms.ValidateGraph`).

    Example:
        >>> edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
        >>> csr = to_csr(edge_index, num_nodes=3)
        >>> csr.ptr, csr.col
        (tensor([0, 1, 3, 4]), tensor([2, 0, 2, 1]))
        >>> csr.spmm(torch.tensor([1., 10., 100.]))
        tensor([100., 101.,  10.])
    """
    if isinstance(adj, Tensor) and adj.layout == torch.sparse_csr:
        if adj.dim() != 2:
            raise ValueError(f"a sparse CSR adjacency must be 2-D, got {adj.dim()} dims")
        if value is not None:
            raise ValueError("a sparse tensor carries its own values; do not pass value")
        ptr, col = adj.crow_indices(), adj.col_indices()
        csc = ops_for(ptr.device).csr_transpose(ptr, col, adj.size(1), True) if transpose else None
        value = adj.values()
        # values() is an alias into the sparse tensor, which torch.compile
        # cannot take as a graph input; a detached alias is a plain tensor.
        # Keep the alias when it carries autograd history.
        if not value.requires_grad:
            value = value.detach()
        return CSR(ptr, col, value, csc)
    if _is_torch_sparse(adj):
        if value is not None:
            raise ValueError("a SparseTensor carries its own values; do not pass value")
        ptr, col, csr_value = adj.csr()
        csc = None
        if transpose:
            storage = adj.storage
            perm = storage.csr2csc()
            csc = (storage.colptr().to(col.dtype), storage.row().index_select(0, perm).to(col.dtype), perm.long())
        return CSR(ptr, col, csr_value, csc)
    if _is_edge_index(adj) or (isinstance(adj, Tensor) and adj.layout == torch.strided):
        if adj.dim() != 2 or adj.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(adj.shape)}")
        if adj.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"edge_index must be an int64 or int32 tensor, got {adj.dtype}")
        if validate:
            size = num_nodes
            if size is None and _is_edge_index(adj) and None not in adj.sparse_size():
                size = max(adj.sparse_size())
            if size is not None:
                check_edge_index(adj.as_subclass(Tensor), size)
        return _from_edge_index(adj, num_nodes, value, transpose, validate)
    raise TypeError("adj must be an edge_index tensor, a torch_geometric.EdgeIndex, a torch.sparse_csr tensor or a "
                    f"torch_sparse.SparseTensor, got {type(adj).__name__}")

"""Op schemas, the pure-PyTorch backend, fake kernels and autograd formulas.

The C++ extension defines the ``graphequi::*`` ops in its single
``TORCH_LIBRARY`` block (``csrc/graphequi.cpp``). This module defines the
*same* schemas in the namespace ``graphequi_torch`` with pure-PyTorch kernels
(``CompositeExplicitAutograd``, so they run on every device), and registers one
set of fake kernels and autograd formulas for both namespaces. Both backends
therefore share the exact same semantics, gradients and ``torch.compile``
behavior; only the kernels differ.

Layout contract (see ``csrc/graphequi.cpp``): ``src``/``grad`` are ``[B, E, F]``,
``index`` is ``[E]``, ``ptr`` is ``[G + 1]``, ``arg`` is ``[B, G, F]`` with the
winning row per entry or ``-1`` for an empty group.

spmm ops (``spmm``, ``spmm_arg``, ``spmm_value_grad``, ``csr_transpose``): a
CSR matrix ``ptr [G + 1]``, ``col [E]``, optional ``value [E]`` times
``x [N, F]``; ``arg [G, F]`` holds the winning *edge* ``k`` (or ``-1``). The
optional ``csc_*`` inputs of ``spmm`` are the transpose its backward needs
(``colptr [N + 1]``, ``row [E]``, ``perm [E]``: CSC position ``p`` holds CSR
edge ``perm[p]``); ``validate=False`` skips the index checks that read values.
``spmm_feature`` takes a value per edge *and feature* (``value [E, F]``, sum and
mean; with ``value_perm [E]`` edge ``k`` reads row ``value_perm[k]``, which lets
the backward run over the transpose without reordering ``value``), and
``spmm_feature_value_grad`` is its ``[E, F]`` value gradient.

``depthwise_mix`` mixes a small axis channel by channel, ``out [N, O, C] =
sum_l weight [O, L, C] * x [N, L, C]``, and ``depthwise_mix_weight_grad`` is
its ``[O, L, C]`` weight gradient. ``symmetric_pair_features`` maps pairs
``[P, 2, D]`` (rows ``a``, ``b``) to ``[P, 3 D] = [a + b, a * b, |a - b|]``
(LCM's cheap cell), ``symmetric_pair_features_backward`` is its adjoint.

``segment_linear`` applies weight ``[G, N, K]`` (and bias ``[G, N]``) of
group ``g`` to the ``sizes[g]`` contiguous rows of segment ``g`` of
``x [L, K]``; ``segment_linear_weight_grad`` returns its weight gradient and,
when asked, its bias gradient (else an empty tensor).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import torch
from torch import Tensor

from graphequi.ops.ptr import ptr_to_index

SCHEMAS = {
    "segment": "segment(Tensor src, Tensor ptr, str reduce) -> Tensor",
    "segment_arg": "segment_arg(Tensor src, Tensor ptr, str reduce) -> (Tensor, Tensor)",
    "scatter": "scatter(Tensor src, Tensor index, SymInt dim_size, str reduce) -> Tensor",
    "scatter_arg": "scatter_arg(Tensor src, Tensor index, SymInt dim_size, str reduce) -> (Tensor, Tensor)",
    "gather_csr": "gather_csr(Tensor grad, Tensor ptr, Tensor? arg, SymInt num_rows, str reduce) -> Tensor",
    "gather_coo": "gather_coo(Tensor grad, Tensor index, Tensor? arg, str reduce) -> Tensor",
    "spmm": ("spmm(Tensor ptr, Tensor col, Tensor x, Tensor? value, Tensor? csc_ptr, Tensor? csc_row, "
             "Tensor? csc_perm, str reduce, bool validate) -> Tensor"),
    "spmm_arg": ("spmm_arg(Tensor ptr, Tensor col, Tensor x, Tensor? value, str reduce, bool validate) "
                 "-> (Tensor, Tensor)"),
    "spmm_value_grad": "spmm_value_grad(Tensor ptr, Tensor col, Tensor grad, Tensor x, str reduce, bool validate) -> Tensor",
    "spmm_arg_grad": ("spmm_arg_grad(Tensor csc_ptr, Tensor csc_row, Tensor csc_perm, Tensor arg, Tensor grad, "
                      "Tensor? value) -> Tensor"),
    "spmm_feature": ("spmm_feature(Tensor ptr, Tensor col, Tensor x, Tensor value, Tensor? value_perm, "
                     "Tensor? csc_ptr, Tensor? csc_row, Tensor? csc_perm, str reduce, bool validate) -> Tensor"),
    "spmm_feature_value_grad": ("spmm_feature_value_grad(Tensor ptr, Tensor col, Tensor grad, Tensor x, str reduce, "
                                "bool validate) -> Tensor"),
    "csr_transpose": "csr_transpose(Tensor ptr, Tensor col, SymInt num_cols, bool validate) -> (Tensor, Tensor, Tensor)",
    "depthwise_mix": "depthwise_mix(Tensor weight, Tensor x) -> Tensor",
    "depthwise_mix_weight_grad": "depthwise_mix_weight_grad(Tensor grad, Tensor x) -> Tensor",
    "symmetric_pair_features": "symmetric_pair_features(Tensor pairs) -> Tensor",
    "symmetric_pair_features_backward": "symmetric_pair_features_backward(Tensor grad, Tensor pairs) -> Tensor",
    "segment_linear": "segment_linear(Tensor x, SymInt[] sizes, Tensor weight, Tensor? bias) -> Tensor",
    "segment_linear_weight_grad": ("segment_linear_weight_grad(Tensor grad, Tensor x, SymInt[] sizes, bool bias) "
                                   "-> (Tensor, Tensor)"),
}

TORCH_NAMESPACE = "graphequi_torch"
_SUM_LIKE = ("sum", "add", "mean")
_ARG_LIKE = ("min", "max")


# --------------------------------------------------------- pure-torch kernels
# They validate values eagerly (they never run under tracing: the compiler sees
# the fake kernels), with the same error types and messages as the C++ ones.

def check_reduce(reduce: str, allowed) -> None:
    """The one reduce check of graphequi.ops (public wrappers and kernels)."""
    if reduce not in allowed:
        raise ValueError(f"reduce must be one of {allowed}, got {reduce!r}")


def _check_ptr(ptr: Tensor, num_rows: int, rows: str = "src.size(dim)") -> None:
    if ptr.numel() < 1:
        raise ValueError("ptr must have at least one entry")
    if int(ptr[0]) != 0:
        raise ValueError(f"ptr must start at 0, got {int(ptr[0])}")
    if int(ptr[-1]) != num_rows:
        raise ValueError(f"ptr[-1] must equal {rows} = {num_rows}, got {int(ptr[-1])}")
    if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("ptr must be non-decreasing")


def _check_index_range(index: Tensor, dim_size: int, name: str = "index", bound: str = "dim_size") -> None:
    if index.numel() == 0:
        return
    lo, hi = int(index.min()), int(index.max())
    if lo < 0:
        raise IndexError(f"{name} contains a negative entry ({lo})")
    if hi >= dim_size:
        raise IndexError(f"{name} contains {hi}, out of range for {bound} {dim_size}")


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype reductions accumulate in: float32 for float16/bfloat16, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _rows_of(ptr: Tensor, num_rows: int) -> Tensor:
    """Group id of every row of a ptr that the caller already validated."""
    return ptr_to_index(ptr, num_rows, validate=False).long()


def _torch_scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str, check: bool = True) -> Tensor:
    check_reduce(reduce, _SUM_LIKE + _ARG_LIKE)
    if reduce in _ARG_LIKE:
        return _torch_scatter_arg(src, index, dim_size, reduce, check)[0]
    if check:
        _check_index_range(index, dim_size)
    B, _, F = src.shape
    acc = accumulation_dtype(src.dtype)
    out = torch.zeros(B, dim_size, F, dtype=acc, device=src.device)
    out.index_add_(1, index.long(), src.to(acc))
    if reduce == "mean":
        count = torch.bincount(index.long(), minlength=dim_size).clamp_(min=1)
        out = out / count.view(1, -1, 1).to(acc)
    return out.to(src.dtype)


def _torch_scatter_arg(src: Tensor, index: Tensor, dim_size: int, reduce: str, check: bool = True):
    check_reduce(reduce, _ARG_LIKE)
    if check:
        _check_index_range(index, dim_size)
    B, E, F = src.shape
    idx = index.long().view(1, E, 1).expand(B, E, F)
    out = torch.zeros(B, dim_size, F, dtype=src.dtype, device=src.device)
    out.scatter_reduce_(1, idx, src, "amax" if reduce == "max" else "amin", include_self=False)
    winner_value = out.gather(1, idx)
    is_winner = (src == winner_value)
    if src.is_floating_point():
        is_winner |= torch.isnan(src) & torch.isnan(winner_value)
    rows = torch.arange(E, device=src.device).view(1, E, 1).expand(B, E, F)
    candidates = torch.where(is_winner, rows, torch.full_like(rows, E))
    arg = torch.full((B, dim_size, F), E, dtype=torch.long, device=src.device)
    arg.scatter_reduce_(1, idx, candidates, "amin", include_self=True)
    arg[arg == E] = -1
    return out, arg


def _torch_segment(src: Tensor, ptr: Tensor, reduce: str) -> Tensor:
    check_reduce(reduce, _SUM_LIKE + _ARG_LIKE)
    _check_ptr(ptr, src.size(1))
    return _torch_scatter(src, _rows_of(ptr, src.size(1)), ptr.numel() - 1, reduce)


def _torch_segment_arg(src: Tensor, ptr: Tensor, reduce: str):
    check_reduce(reduce, _ARG_LIKE)
    _check_ptr(ptr, src.size(1))
    return _torch_scatter_arg(src, _rows_of(ptr, src.size(1)), ptr.numel() - 1, reduce)


def _torch_gather_coo(grad: Tensor, index: Tensor, arg: Optional[Tensor], reduce: str) -> Tensor:
    check_reduce(reduce, _SUM_LIKE + _ARG_LIKE)
    G = grad.size(1)
    _check_index_range(index, G)
    index = index.long()
    out = grad.index_select(1, index)
    if reduce == "mean":
        acc = accumulation_dtype(grad.dtype)
        inv = 1.0 / torch.bincount(index, minlength=G).clamp(min=1).to(acc)
        out = (out.to(acc) * inv[index].view(1, -1, 1)).to(grad.dtype)
    elif reduce in _ARG_LIKE:
        if arg is None:
            raise ValueError("arg is required for reduce='min'/'max'")
        rows = torch.arange(index.numel(), device=grad.device).view(1, -1, 1)
        out = torch.where(arg.index_select(1, index) == rows, out, torch.zeros_like(out))
    return out


def _torch_gather_csr(grad: Tensor, ptr: Tensor, arg: Optional[Tensor], num_rows: int, reduce: str) -> Tensor:
    _check_ptr(ptr, num_rows)
    if ptr.numel() != grad.size(1) + 1:
        raise ValueError(f"ptr must have grad.size(1) + 1 = {grad.size(1) + 1} entries, got {ptr.numel()}")
    return _torch_gather_coo(grad, _rows_of(ptr, num_rows), arg, reduce)


def _torch_check_spmm(ptr: Tensor, col: Tensor, x: Tensor, value: Optional[Tensor], validate: bool) -> None:
    # Shape/dtype checks live in the public wrapper (graphequi.ops.spmm); the
    # kernel repeats only the value checks, as the C++ kernels do.
    if x.dim() != 2:
        raise ValueError(f"x must be a 2-D [N, F] tensor, got {x.dim()} dims")
    if value is not None and (value.dim() != 1 or value.numel() != col.numel()):
        raise ValueError(f"value must be 1-D with one entry per edge ({col.numel()}), got shape {tuple(value.shape)}")
    if validate:
        _check_ptr(ptr, col.numel(), "col.numel()")
        _check_index_range(col, x.size(0), "col", "x.size(0) =")


def _torch_messages(ptr: Tensor, col: Tensor, x: Tensor, value: Optional[Tensor]) -> tuple:
    """Gathered (and weighted: ``value`` ``[E]``, or ``[E, F]`` per feature)
    rows ``[1, E, F]`` and their row ids: the fallback materialises the
    messages, the compiled kernels do not."""
    acc = accumulation_dtype(x.dtype)
    msgs = x.index_select(0, col.long())
    if value is not None:
        # products stay in the accumulation dtype, as in the C++ kernels
        msgs = msgs.to(acc) * (value.to(acc) if value.dim() == 2 else value.to(acc).unsqueeze(1))
    return msgs.unsqueeze(0), _rows_of(ptr, col.numel())


def _torch_spmm(ptr, col, x, value, csc_ptr, csc_row, csc_perm, reduce: str, validate: bool) -> Tensor:
    check_reduce(reduce, _SUM_LIKE + _ARG_LIKE)
    _torch_check_spmm(ptr, col, x, value, validate)
    if reduce in _ARG_LIKE:
        return _torch_spmm_arg(ptr, col, x, value, reduce, validate)[0]
    msgs, rows = _torch_messages(ptr, col, x, value)
    return _torch_scatter(msgs, rows, ptr.numel() - 1, reduce, check=False)[0].to(x.dtype)


def _torch_spmm_arg(ptr, col, x, value, reduce: str, validate: bool):
    check_reduce(reduce, _ARG_LIKE)
    _torch_check_spmm(ptr, col, x, value, validate)
    msgs, rows = _torch_messages(ptr, col, x, value)
    out, arg = _torch_scatter_arg(msgs, rows, ptr.numel() - 1, reduce, check=False)
    return out[0].to(x.dtype), arg[0]


def _torch_edge_products(ptr, col, grad, x, reduce: str, validate: bool) -> tuple:
    """``grad[row(k)] * x[col[k]]`` ``[E, F]`` in the accumulation dtype, with
    the degree of each edge's row (for mean): the value gradients of spmm
    (summed over features) and of spmm_feature (as they are)."""
    check_reduce(reduce, _SUM_LIKE)
    _torch_check_spmm(ptr, col, x, None, validate)
    acc = accumulation_dtype(x.dtype)
    rows = _rows_of(ptr, col.numel())
    products = grad.index_select(0, rows).to(acc) * x.index_select(0, col.long()).to(acc)
    return products, (ptr[1:] - ptr[:-1]).to(acc).index_select(0, rows)


def _torch_spmm_value_grad(ptr, col, grad, x, reduce: str, validate: bool) -> Tensor:
    products, degree = _torch_edge_products(ptr, col, grad, x, reduce, validate)
    out = products.sum(1)
    if reduce == "mean":
        out = out / degree
    return out.to(x.dtype)


def _check_feature_value(col: Tensor, x: Tensor, value: Tensor) -> None:
    if value.dim() != 2 or value.size(0) != col.numel() or value.size(1) != x.size(1):
        raise ValueError(f"value must be [E, F] = [{col.numel()}, {x.size(1)}], got shape {tuple(value.shape)}")


def _torch_spmm_feature(ptr, col, x, value, value_perm, csc_ptr, csc_row, csc_perm, reduce: str,
                        validate: bool) -> Tensor:
    check_reduce(reduce, _SUM_LIKE)
    _torch_check_spmm(ptr, col, x, None, validate)
    _check_feature_value(col, x, value)
    if value_perm is not None:
        if validate:
            _check_index_range(value_perm, value.size(0), "value_perm", "E =")
        value = value.index_select(0, value_perm)
    msgs, rows = _torch_messages(ptr, col, x, value)
    return _torch_scatter(msgs, rows, ptr.numel() - 1, reduce, check=False)[0].to(x.dtype)


def _torch_spmm_feature_value_grad(ptr, col, grad, x, reduce: str, validate: bool) -> Tensor:
    out, degree = _torch_edge_products(ptr, col, grad, x, reduce, validate)
    if reduce == "mean":
        out = out / degree.unsqueeze(1)
    return out.to(x.dtype)


def _torch_spmm_arg_grad(csc_ptr, csc_row, csc_perm, arg, grad, value) -> Tensor:
    # the C++ kernel's sum, in the same CSC order, over an [E, F] mask (fallback only)
    rows = csc_row.long()
    won = arg.index_select(0, rows) == csc_perm.unsqueeze(1)
    contrib = grad.index_select(0, rows).to(accumulation_dtype(grad.dtype))
    if value is not None:
        contrib = contrib * value.index_select(0, csc_perm).to(contrib.dtype).unsqueeze(1)
    contrib = torch.where(won, contrib, torch.zeros_like(contrib))
    return _torch_segment(contrib.unsqueeze(0), csc_ptr, "sum")[0].to(grad.dtype)


def _torch_csr_transpose(ptr: Tensor, col: Tensor, num_cols: int, validate: bool):
    # Always checked, as in the C++ kernel: the searchsorted below would
    # silently drop out-of-range entries.
    del validate
    _check_ptr(ptr, col.numel(), "col.numel()")
    _check_index_range(col, num_cols, "col", "num_cols")
    sorted_col, perm = torch.sort(col, stable=True)
    boundaries = torch.arange(num_cols + 1, device=col.device, dtype=col.dtype)
    colptr = torch.searchsorted(sorted_col, boundaries).to(col.dtype)
    row = _rows_of(ptr, col.numel()).index_select(0, perm).to(col.dtype)
    return colptr, row, perm


def check_depthwise_mix(weight: Tensor, x: Tensor) -> None:
    """The shape and dtype checks of depthwise_mix (public wrapper and kernel)."""
    for name, t in (("weight", weight), ("x", x)):
        if t.dim() != 3:
            raise ValueError(f"depthwise_mix: {name} must be 3-D, got shape {tuple(t.shape)}")
    if not x.is_floating_point() or weight.dtype != x.dtype:
        raise TypeError(f"depthwise_mix: weight and x must share a floating dtype, got {weight.dtype} and {x.dtype}")
    if weight.shape[1:] != x.shape[1:]:
        raise ValueError(f"depthwise_mix: weight [O, L, C] = {list(weight.shape)} and x [N, L, C] = "
                         f"{list(x.shape)} must agree on L and C")


def _torch_depthwise_mix(weight: Tensor, x: Tensor) -> Tensor:
    check_depthwise_mix(weight, x)
    acc = accumulation_dtype(x.dtype)
    return torch.einsum("olc,nlc->noc", weight.to(acc), x.to(acc)).to(x.dtype).contiguous()


def _torch_depthwise_mix_weight_grad(grad: Tensor, x: Tensor) -> Tensor:
    if grad.dim() != 3 or x.dim() != 3 or grad.size(0) != x.size(0) or grad.size(2) != x.size(2):
        raise ValueError(f"depthwise_mix_weight_grad: grad must be [N, O, C] and x [N, L, C], "
                         f"got {tuple(grad.shape)} and {tuple(x.shape)}")
    if not x.is_floating_point() or grad.dtype != x.dtype:
        raise TypeError(f"depthwise_mix_weight_grad: grad and x must share a floating dtype, "
                        f"got {grad.dtype} and {x.dtype}")
    acc = accumulation_dtype(x.dtype)
    return torch.einsum("noc,nlc->olc", grad.to(acc), x.to(acc)).to(x.dtype).contiguous()


def check_segment_linear(x: Tensor, sizes, weight: Tensor, bias: Optional[Tensor]) -> None:
    """The shape and dtype checks of segment_linear (public wrapper and kernel)."""
    if not x.is_floating_point():
        raise TypeError(f"segment_linear: x must be a floating-point tensor, got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"segment_linear: x must be a 2-D [L, K] tensor, got {x.dim()} dims")
    if weight.dim() != 3 or weight.size(2) != x.size(1):
        raise ValueError(f"segment_linear: weight must be [G, N, {x.size(1)}] for x [L, {x.size(1)}], "
                         f"got {list(weight.shape)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"segment_linear: weight ({weight.dtype}) and x ({x.dtype}) must share a dtype")
    _check_segment_sizes(sizes, x.size(0), weight.size(0), "segment_linear")
    if bias is not None:
        if bias.shape != (weight.size(0), weight.size(1)):
            raise ValueError(f"segment_linear: bias must be [{weight.size(0)}, {weight.size(1)}], "
                             f"got {list(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"segment_linear: bias ({bias.dtype}) and x ({x.dtype}) must share a dtype")


def _check_segment_sizes(sizes, rows: int, groups: int, op: str) -> None:
    if len(sizes) != groups:
        raise ValueError(f"{op}: sizes has {len(sizes)} segments but the weight has {groups} groups")
    for g, size in enumerate(sizes):
        if size < 0:
            raise ValueError(f"{op}: segment sizes must be non-negative, got {size} at segment {g}")
    if sum(sizes) != rows:
        raise ValueError(f"{op}: segment sizes sum to {sum(sizes)} but there are {rows} rows")


def _torch_segment_linear(x: Tensor, sizes, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    check_segment_linear(x, sizes, weight, bias)
    parts = [torch.nn.functional.linear(x_g, weight[g], None if bias is None else bias[g])
             for g, x_g in enumerate(x.split(list(sizes)))]
    return torch.cat(parts) if parts else x.new_empty(0, weight.size(1))


def _torch_segment_linear_weight_grad(grad: Tensor, x: Tensor, sizes, bias: bool):
    if not grad.is_floating_point():
        raise TypeError(f"segment_linear_weight_grad: grad must be a floating-point tensor, got {grad.dtype}")
    if x.dim() != 2 or grad.dim() != 2 or grad.size(0) != x.size(0):
        raise ValueError(f"segment_linear_weight_grad: grad [L, N] and x [L, K] must have the same rows, "
                         f"got {list(grad.shape)} and {list(x.shape)}")
    if grad.dtype != x.dtype:
        raise TypeError(f"segment_linear_weight_grad: grad ({grad.dtype}) and x ({x.dtype}) must share a dtype")
    _check_segment_sizes(sizes, x.size(0), len(sizes), "segment_linear_weight_grad")
    sizes = list(sizes)
    pairs = list(zip(grad.split(sizes), x.split(sizes)))
    n, k = grad.size(1), x.size(1)
    grad_weight = torch.stack([g.t() @ x_g for g, x_g in pairs]) if pairs else x.new_empty(0, n, k)
    if not bias:
        return grad_weight, x.new_empty(0)
    return grad_weight, (torch.stack([g.sum(0) for g, _ in pairs]) if pairs else x.new_empty(0, n))


def check_pairs(pairs: Tensor) -> None:
    """The shape and dtype checks of symmetric_pair_features (public wrapper and kernel)."""
    if pairs.dim() != 3 or pairs.size(1) != 2:
        raise ValueError(f"symmetric_pair_features: pairs must be [P, 2, D], got shape {tuple(pairs.shape)}")
    if not pairs.is_floating_point():
        raise TypeError(f"symmetric_pair_features: pairs must be floating point, got {pairs.dtype}")


def _torch_symmetric_pair_features(pairs: Tensor) -> Tensor:
    check_pairs(pairs)
    a, b = pairs.unbind(1)
    return torch.cat([a + b, a * b, (a - b).abs()], dim=-1)


def _torch_symmetric_pair_features_backward(grad: Tensor, pairs: Tensor) -> Tensor:
    check_pairs(pairs)
    if grad.dim() != 2 or grad.shape != (pairs.size(0), 3 * pairs.size(2)):
        raise ValueError(f"symmetric_pair_features_backward: grad must be [P, 3 D] for pairs [P, 2, D], "
                         f"got {tuple(grad.shape)} and {tuple(pairs.shape)}")
    if grad.dtype != pairs.dtype:
        raise TypeError(f"symmetric_pair_features_backward: grad and pairs must share a dtype, "
                        f"got {grad.dtype} and {pairs.dtype}")
    a, b = pairs.unbind(1)
    g_sum, g_prod, g_diff = grad.chunk(3, dim=-1)
    g_diff = g_diff * (a - b).sign()
    return torch.stack([g_sum + g_prod * b + g_diff, g_sum + g_prod * a - g_diff], dim=1)


_TORCH_KERNELS = {
    "segment": _torch_segment,
    "segment_arg": _torch_segment_arg,
    "scatter": _torch_scatter,
    "scatter_arg": _torch_scatter_arg,
    "gather_csr": _torch_gather_csr,
    "gather_coo": _torch_gather_coo,
    "spmm": _torch_spmm,
    "spmm_arg": _torch_spmm_arg,
    "spmm_value_grad": _torch_spmm_value_grad,
    "spmm_arg_grad": _torch_spmm_arg_grad,
    "spmm_feature": _torch_spmm_feature,
    "spmm_feature_value_grad": _torch_spmm_feature_value_grad,
    "csr_transpose": _torch_csr_transpose,
    "depthwise_mix": _torch_depthwise_mix,
    "depthwise_mix_weight_grad": _torch_depthwise_mix_weight_grad,
    "symmetric_pair_features": _torch_symmetric_pair_features,
    "symmetric_pair_features_backward": _torch_symmetric_pair_features_backward,
    "segment_linear": _torch_segment_linear,
    "segment_linear_weight_grad": _torch_segment_linear_weight_grad,
}


# -------------------------------------------------------------- fake kernels

def _fake_segment(src, ptr, reduce):
    return src.new_empty(src.size(0), ptr.size(0) - 1, src.size(2))


def _fake_segment_arg(src, ptr, reduce):
    out = _fake_segment(src, ptr, reduce)
    return out, out.new_empty(out.shape, dtype=torch.long)


def _fake_scatter(src, index, dim_size, reduce):
    return src.new_empty(src.size(0), dim_size, src.size(2))


def _fake_scatter_arg(src, index, dim_size, reduce):
    out = _fake_scatter(src, index, dim_size, reduce)
    return out, out.new_empty(out.shape, dtype=torch.long)


def _fake_gather_csr(grad, ptr, arg, num_rows, reduce):
    return grad.new_empty(grad.size(0), num_rows, grad.size(2))


def _fake_gather_coo(grad, index, arg, reduce):
    return grad.new_empty(grad.size(0), index.size(0), grad.size(2))


def _fake_spmm(ptr, col, x, value, csc_ptr, csc_row, csc_perm, reduce, validate):
    return x.new_empty(ptr.size(0) - 1, x.size(1))


def _fake_spmm_arg(ptr, col, x, value, reduce, validate):
    out = x.new_empty(ptr.size(0) - 1, x.size(1))
    return out, out.new_empty(out.shape, dtype=torch.long)


def _fake_spmm_value_grad(ptr, col, grad, x, reduce, validate):
    return x.new_empty(col.size(0))


def _fake_spmm_arg_grad(csc_ptr, csc_row, csc_perm, arg, grad, value):
    return grad.new_empty(csc_ptr.size(0) - 1, grad.size(1))


def _fake_spmm_feature(ptr, col, x, value, value_perm, csc_ptr, csc_row, csc_perm, reduce, validate):
    return x.new_empty(ptr.size(0) - 1, x.size(1))


def _fake_spmm_feature_value_grad(ptr, col, grad, x, reduce, validate):
    return x.new_empty(col.size(0), x.size(1))


def _fake_csr_transpose(ptr, col, num_cols, validate):
    return col.new_empty(num_cols + 1), col.new_empty(col.size(0)), col.new_empty(col.size(0), dtype=torch.long)


def _fake_depthwise_mix(weight, x):
    return x.new_empty(x.size(0), weight.size(0), x.size(2))


def _fake_depthwise_mix_weight_grad(grad, x):
    return x.new_empty(grad.size(1), x.size(1), x.size(2))


def _fake_symmetric_pair_features(pairs):
    return pairs.new_empty(pairs.size(0), 3 * pairs.size(2))


def _fake_symmetric_pair_features_backward(grad, pairs):
    return pairs.new_empty(pairs.shape)


def _fake_segment_linear(x, sizes, weight, bias):
    return x.new_empty(x.size(0), weight.size(1))


def _fake_segment_linear_weight_grad(grad, x, sizes, bias):
    g, n = len(sizes), grad.size(1)
    return x.new_empty(g, n, x.size(1)), (x.new_empty(g, n) if bias else x.new_empty(0))


_FAKE_KERNELS = {
    "segment": _fake_segment,
    "segment_arg": _fake_segment_arg,
    "scatter": _fake_scatter,
    "scatter_arg": _fake_scatter_arg,
    "gather_csr": _fake_gather_csr,
    "gather_coo": _fake_gather_coo,
    "spmm": _fake_spmm,
    "spmm_arg": _fake_spmm_arg,
    "spmm_value_grad": _fake_spmm_value_grad,
    "spmm_arg_grad": _fake_spmm_arg_grad,
    "spmm_feature": _fake_spmm_feature,
    "spmm_feature_value_grad": _fake_spmm_feature_value_grad,
    "csr_transpose": _fake_csr_transpose,
    "depthwise_mix": _fake_depthwise_mix,
    "depthwise_mix_weight_grad": _fake_depthwise_mix_weight_grad,
    "symmetric_pair_features": _fake_symmetric_pair_features,
    "symmetric_pair_features_backward": _fake_symmetric_pair_features_backward,
    "segment_linear": _fake_segment_linear,
    "segment_linear_weight_grad": _fake_segment_linear_weight_grad,
}


# ------------------------------------------------------------------ autograd

def _inverse_degree(ptr: Tensor, dtype: torch.dtype) -> Tensor:
    """``1 / degree`` of every CSR row in the accumulation dtype (empty rows: 1),
    the scale a mean reduction's backward applies."""
    return 1.0 / (ptr[1:] - ptr[:-1]).clamp(min=1).to(accumulation_dtype(dtype))


def _gather_winner(grad_grad: Tensor, arg: Tensor) -> Tensor:
    """Adjoint of the min/max gathers: each group reads its winning row."""
    picked = torch.gather(grad_grad, 1, arg.clamp(min=0))
    return torch.where(arg >= 0, picked, torch.zeros_like(picked))


def _spmm_winner_grads(ops, ptr: Tensor, col: Tensor, x: Tensor, value: Optional[Tensor], arg: Tensor,
                       grad: Tensor, need_x: bool, need_value: bool, csc=None) -> tuple:
    """Gradients of spmm min/max: output entry ``(i, f)`` won by edge
    ``k = arg[i, f]`` sends ``value[k] * grad[i, f]`` to ``x[col[k], f]`` and
    ``grad[i, f] * x[col[k], f]`` to ``value[k]``. The x part runs over the
    transpose (``spmm_arg_grad``: owner computes, no atomics), the value part
    on ``[G, F]`` tensors."""
    grad_x = grad_value = None
    if need_x:
        colptr, row, perm = csc if csc is not None else ops.csr_transpose(ptr, col, x.size(0), False)
        grad_x = ops.spmm_arg_grad(colptr, row, perm, arg, grad, value)
    if need_value and value is not None:
        won = arg >= 0
        edge = arg.clamp(min=0)
        grad = torch.where(won, grad, torch.zeros_like(grad))
        source = col.long().index_select(0, edge.flatten()).view_as(edge)
        contrib = grad * torch.gather(x, 0, source)
        grad_value = torch.zeros_like(value).index_add(0, edge.flatten(), contrib.flatten())
    return grad_x, grad_value


def _register_autograd(ns: str) -> None:
    ops = getattr(torch.ops, ns)

    # The value ops also take min/max (no winning rows: faster when no gradient
    # is needed). Their backward recomputes the winners with the arg op; the
    # public wrappers call the arg ops directly when a gradient is needed.
    def segment_setup(ctx, inputs, output):
        src, ptr, reduce = inputs
        ctx.save_for_backward(ptr, src if reduce in _ARG_LIKE else None)
        ctx.num_rows, ctx.reduce = src.size(1), reduce

    def segment_backward(ctx, grad):
        ptr, src = ctx.saved_tensors
        arg = ops.segment_arg(src, ptr, ctx.reduce)[1] if ctx.reduce in _ARG_LIKE else None
        return ops.gather_csr(grad.contiguous(), ptr, arg, ctx.num_rows, ctx.reduce), None, None

    def segment_arg_setup(ctx, inputs, output):
        src, ptr, reduce = inputs
        ctx.save_for_backward(ptr, output[1])
        ctx.num_rows, ctx.reduce = src.size(1), reduce
        ctx.set_materialize_grads(False)  # no zero gradient for the integer winners

    def segment_arg_backward(ctx, grad, _grad_arg):
        ptr, arg = ctx.saved_tensors
        if grad is None:
            return None, None, None
        return ops.gather_csr(grad.contiguous(), ptr, arg, ctx.num_rows, ctx.reduce), None, None

    def scatter_setup(ctx, inputs, output):
        src, index, dim_size, reduce = inputs
        ctx.save_for_backward(index, src if reduce in _ARG_LIKE else None)
        ctx.reduce, ctx.dim_size = reduce, dim_size

    def scatter_backward(ctx, grad):
        index, src = ctx.saved_tensors
        arg = ops.scatter_arg(src, index, ctx.dim_size, ctx.reduce)[1] if ctx.reduce in _ARG_LIKE else None
        return ops.gather_coo(grad.contiguous(), index, arg, ctx.reduce), None, None, None

    def scatter_arg_setup(ctx, inputs, output):
        src, index, dim_size, reduce = inputs
        ctx.save_for_backward(index, output[1])
        ctx.reduce = reduce
        ctx.set_materialize_grads(False)  # no zero gradient for the integer winners

    def scatter_arg_backward(ctx, grad, _grad_arg):
        index, arg = ctx.saved_tensors
        if grad is None:
            return None, None, None, None
        return ops.gather_coo(grad.contiguous(), index, arg, ctx.reduce), None, None, None

    def gather_csr_setup(ctx, inputs, output):
        grad, ptr, arg, num_rows, reduce = inputs
        ctx.save_for_backward(ptr, arg)
        ctx.reduce = reduce

    def gather_csr_backward(ctx, grad_grad):
        ptr, arg = ctx.saved_tensors
        if ctx.reduce in _ARG_LIKE:
            return _gather_winner(grad_grad, arg), None, None, None, None
        return ops.segment(grad_grad.contiguous(), ptr, ctx.reduce), None, None, None, None

    def gather_coo_setup(ctx, inputs, output):
        grad, index, arg, reduce = inputs
        ctx.save_for_backward(index, arg)
        ctx.reduce, ctx.num_groups = reduce, grad.size(1)

    def gather_coo_backward(ctx, grad_grad):
        index, arg = ctx.saved_tensors
        if ctx.reduce in _ARG_LIKE:
            return _gather_winner(grad_grad, arg), None, None, None
        return ops.scatter(grad_grad.contiguous(), index, ctx.num_groups, ctx.reduce), None, None, None

    # spmm: x's gradient is the transposed gather-reduce (an spmm over the CSC,
    # no [E, F] tensor), value's the per-edge dot product; min/max route each
    # output entry's gradient to its single winning edge.
    def spmm_setup(ctx, inputs, output):
        ptr, col, x, value, csc_ptr, csc_row, csc_perm, reduce, _validate = inputs
        # x itself is only read again for min/max winners and value's gradient: not keeping
        # it otherwise lets a sum/mean spmm free its input (e.g. a stacked or gathered
        # [E, F] tensor) as soon as the forward pass is done with it
        keep_x = reduce in _ARG_LIKE or (value is not None and ctx.needs_input_grad[3])
        ctx.save_for_backward(ptr, col, x if keep_x else None, value, csc_ptr, csc_row, csc_perm)
        ctx.reduce, ctx.num_sources, ctx.x_dtype = reduce, x.size(0), x.dtype

    def spmm_backward(ctx, grad):
        ptr, col, x, value, csc_ptr, csc_row, csc_perm = ctx.saved_tensors
        need_x, need_value = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        grad = grad.contiguous()
        if ctx.reduce in _ARG_LIKE:
            arg = ops.spmm_arg(ptr, col, x, value, ctx.reduce, False)[1]
            csc = (csc_ptr, csc_row, csc_perm) if csc_ptr is not None else None
            grad_x, grad_value = _spmm_winner_grads(ops, ptr, col, x, value, arg, grad, need_x, need_value, csc)
        else:
            grad_x = grad_value = None
            if need_x:
                if csc_ptr is None:
                    csc_ptr, csc_row, csc_perm = ops.csr_transpose(ptr, col, ctx.num_sources, False)
                weight = value.index_select(0, csc_perm) if value is not None else None
                if ctx.reduce == "mean":
                    scale = _inverse_degree(ptr, ctx.x_dtype).index_select(0, csc_row.long()).to(ctx.x_dtype)
                    weight = scale if weight is None else weight * scale
                grad_x = ops.spmm(csc_ptr, csc_row, grad, weight, None, None, None, "sum", False)
            if need_value and value is not None:
                grad_value = ops.spmm_value_grad(ptr, col, grad, x, ctx.reduce, False)
        return None, None, grad_x, grad_value, None, None, None, None, None

    # spmm_feature: x's gradient is spmm_feature over the transpose, reading
    # each edge's value row through the CSC permutation (no reordered copy of
    # value) with the gradient pre-scaled by 1/degree for mean; the value's is
    # the [E, F] product of the row's gradient and the gathered x row.
    def spmm_feature_setup(ctx, inputs, output):
        ptr, col, x, value, value_perm, csc_ptr, csc_row, csc_perm, reduce, _validate = inputs
        # x is read again only for value's gradient, value only for x's
        ctx.save_for_backward(ptr, col, x if ctx.needs_input_grad[3] else None,
                              value if ctx.needs_input_grad[2] else None, value_perm, csc_ptr, csc_row, csc_perm)
        ctx.reduce, ctx.num_sources, ctx.x_dtype = reduce, x.size(0), x.dtype

    def spmm_feature_backward(ctx, grad):
        ptr, col, x, value, value_perm, csc_ptr, csc_row, csc_perm = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_value = None
        if ctx.needs_input_grad[2]:
            if csc_ptr is None:
                csc_ptr, csc_row, csc_perm = ops.csr_transpose(ptr, col, ctx.num_sources, False)
            scaled = grad
            if ctx.reduce == "mean":
                scaled = (grad * _inverse_degree(ptr, ctx.x_dtype).unsqueeze(1)).to(grad.dtype)
            rows = csc_perm if value_perm is None else value_perm.index_select(0, csc_perm)
            grad_x = ops.spmm_feature(csc_ptr, csc_row, scaled, value, rows, None, None, None, "sum", False)
        if ctx.needs_input_grad[3]:
            grad_value = ops.spmm_feature_value_grad(ptr, col, grad, x, ctx.reduce, False)
            if value_perm is not None:  # edge k's gradient belongs to value row value_perm[k]
                grad_value = torch.zeros_like(grad_value).index_add(0, value_perm, grad_value)
        return None, None, grad_x, grad_value, None, None, None, None, None, None

    def spmm_arg_setup(ctx, inputs, output):
        ptr, col, x, value, reduce, _validate = inputs
        ctx.save_for_backward(ptr, col, x, value, output[1])
        # the winners are integers: no [G, F] zero gradient needs to be made for them
        ctx.set_materialize_grads(False)

    def spmm_arg_backward(ctx, grad, _grad_arg):
        ptr, col, x, value, arg = ctx.saved_tensors
        if grad is None:
            return None, None, None, None, None, None
        grad_x, grad_value = _spmm_winner_grads(ops, ptr, col, x, value, arg, grad.contiguous(),
                                                ctx.needs_input_grad[2], ctx.needs_input_grad[3])
        return None, None, grad_x, grad_value, None, None

    # depthwise_mix and its weight gradient are bilinear in their two inputs
    # (a, b): each input's gradient is a function of the output gradient and
    # the other input, written with the same two ops, so every order of
    # derivative exists (e.g. forces of a PONITA energy trained on forces).
    def bilinear(grad_first, grad_second):
        def setup(ctx, inputs, output):
            a, b = inputs
            ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b if ctx.needs_input_grad[0] else None)

        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            grad = grad.contiguous()
            return (grad_first(grad, b) if ctx.needs_input_grad[0] else None,
                    grad_second(grad, a) if ctx.needs_input_grad[1] else None)
        return backward, setup

    def mix_transposed(grad, weight):  # sum_o weight[o, l, c] grad[n, o, c]
        return ops.depthwise_mix(weight.transpose(0, 1).contiguous(), grad)

    # symmetric_pair_features: its adjoint is one kernel; the adjoint's own
    # derivative (linear in grad, and in pairs only through g_prod) is written
    # in torch ops, so every order of derivative exists
    def pair_features_setup(ctx, inputs, output):
        (pairs,) = inputs
        ctx.save_for_backward(pairs)

    def pair_features_backward(ctx, grad):
        (pairs,) = ctx.saved_tensors
        return ops.symmetric_pair_features_backward(grad.contiguous(), pairs)

    def pair_features_adjoint_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def pair_features_adjoint_backward(ctx, upstream):
        grad, pairs = ctx.saved_tensors
        (u_a, u_b), (a, b) = upstream.unbind(1), pairs.unbind(1)
        g_prod = grad.chunk(3, dim=-1)[1]
        grad_grad = torch.cat([u_a + u_b, u_a * b + u_b * a, (u_a - u_b) * (a - b).sign()], dim=-1)
        return grad_grad, torch.stack([u_b * g_prod, u_a * g_prod], dim=1)

    # segment_linear: x's gradient is segment_linear with each weight transposed,
    # the weight's (and bias') one weight_grad call; weight_grad is linear in
    # both its inputs, so its own derivative is two more segment_linear calls
    def segment_linear_setup(ctx, inputs, output):
        x, sizes, weight, bias = inputs
        need_x_saved = ctx.needs_input_grad[2] or (bias is not None and ctx.needs_input_grad[3])
        ctx.save_for_backward(x if need_x_saved else None, weight if ctx.needs_input_grad[0] else None)
        ctx.sizes, ctx.has_bias = list(sizes), bias is not None

    def segment_linear_backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        need_b = ctx.has_bias and ctx.needs_input_grad[3]
        grad_x = ops.segment_linear(grad, ctx.sizes, weight.transpose(1, 2), None) if need_x else None
        grad_w = grad_b = None
        if need_w or need_b:
            grad_w, grad_b = ops.segment_linear_weight_grad(grad, x, ctx.sizes, need_b)
        return grad_x, None, grad_w if need_w else None, grad_b if need_b else None

    def weight_grad_setup(ctx, inputs, output):
        grad, x, sizes, bias = inputs
        ctx.save_for_backward(grad, x)
        ctx.sizes, ctx.bias = list(sizes), bias

    def weight_grad_backward(ctx, up_weight, up_bias):
        grad, x = ctx.saved_tensors
        if up_weight is None:
            up_weight = x.new_zeros(len(ctx.sizes), grad.size(1), x.size(1))
        up_bias = up_bias if ctx.bias and up_bias is not None and up_bias.numel() else None
        grad_grad = ops.segment_linear(x, ctx.sizes, up_weight.contiguous(), up_bias)
        grad_x = ops.segment_linear(grad, ctx.sizes, up_weight.transpose(1, 2), None)
        return grad_grad, grad_x, None, None

    table = {
        "symmetric_pair_features": (pair_features_backward, pair_features_setup),
        "segment_linear": (segment_linear_backward, segment_linear_setup),
        "segment_linear_weight_grad": (weight_grad_backward, weight_grad_setup),
        "symmetric_pair_features_backward": (pair_features_adjoint_backward, pair_features_adjoint_setup),
        # out = mix(weight, x): d weight = weight_grad(g, x), d x = mix(weight^T, g)
        "depthwise_mix": bilinear(ops.depthwise_mix_weight_grad, mix_transposed),
        # out = weight_grad(grad, x): d grad = mix(u, x), d x = mix(u^T, grad)
        "depthwise_mix_weight_grad": bilinear(lambda u, x: ops.depthwise_mix(u, x),
                                              lambda u, grad: mix_transposed(grad, u)),
        "spmm": (spmm_backward, spmm_setup),
        "spmm_arg": (spmm_arg_backward, spmm_arg_setup),
        "spmm_feature": (spmm_feature_backward, spmm_feature_setup),
        "segment": (segment_backward, segment_setup),
        "segment_arg": (segment_arg_backward, segment_arg_setup),
        "scatter": (scatter_backward, scatter_setup),
        "scatter_arg": (scatter_arg_backward, scatter_arg_setup),
        "gather_csr": (gather_csr_backward, gather_csr_setup),
        "gather_coo": (gather_coo_backward, gather_coo_setup),
    }
    for name, (backward, setup) in table.items():
        torch.library.register_autograd(f"{ns}::{name}", backward, setup_context=setup)


def _register_fake(ns: str) -> None:
    for name, fn in _FAKE_KERNELS.items():
        torch.library.register_fake(f"{ns}::{name}", fn)


_torch_library = None


def define_torch_backend() -> None:
    """Define ``graphequi_torch::*`` with the pure-PyTorch kernels."""
    global _torch_library
    if _torch_library is not None:
        return
    lib = torch.library.Library(TORCH_NAMESPACE, "DEF")
    for name, schema in SCHEMAS.items():
        lib.define(schema)
        lib.impl(name, _TORCH_KERNELS[name], "CompositeExplicitAutograd")
    _torch_library = lib
    _register_fake(TORCH_NAMESPACE)
    _register_autograd(TORCH_NAMESPACE)


_cuda_library = None


def register_cpp_backend() -> None:
    """Fake kernels and autograd for the C++-defined ``graphequi::*`` ops."""
    global _cuda_library
    _register_fake("graphequi")
    _register_autograd("graphequi")
    if _cuda_library is None:
        # the min/max backward of spmm has a CPU kernel only; on CUDA its torch
        # formulation (a masked segment sum over the transpose) serves.
        _cuda_library = torch.library.Library("graphequi", "IMPL")
        _cuda_library.impl("spmm_arg_grad", _torch_spmm_arg_grad, "CUDA")
        # likewise the depthwise mix (a batched matrix product for cuBLAS) and the
        # pair features (elementwise ops and a concatenation)
        _cuda_library.impl("depthwise_mix", _torch_depthwise_mix, "CUDA")
        _cuda_library.impl("depthwise_mix_weight_grad", _torch_depthwise_mix_weight_grad, "CUDA")
        _cuda_library.impl("symmetric_pair_features", _torch_symmetric_pair_features, "CUDA")
        _cuda_library.impl("symmetric_pair_features_backward", _torch_symmetric_pair_features_backward, "CUDA")


def namespace(ns: str) -> SimpleNamespace:
    ops = getattr(torch.ops, ns)
    return SimpleNamespace(**{name: getattr(ops, name).default for name in SCHEMAS}, name=ns)

r"""Scatter and segment reductions.

For a 1-D ``index`` (COO) or CSR offsets ``ptr`` along dimension ``dim``:

.. math::
    \mathrm{out}_{\dots, g, \dots} = \bigoplus_{e \,:\, \mathrm{index}_e = g} \mathrm{src}_{\dots, e, \dots}
    \qquad (\text{CSR: } e \in [\mathrm{ptr}_g, \mathrm{ptr}_{g+1}))

with :math:`\oplus` one of sum, mean, min, max. Empty groups give ``0``.

Gradients: sum and mean are exact. For min and max the whole gradient of a
group's output goes to its **single winning row** (the lowest row on ties).
``torch.Tensor.scatter_reduce`` / ``torch.amax`` instead split it evenly among
tied rows; both are valid subgradients, ours is deterministic and sparse.
NaN propagates (a group containing NaN reduces to NaN for min/max), as in torch.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from graphequi.ops._backend import ops_for
from graphequi.ops._registry import check_reduce

__all__ = ["scatter", "segment", "segment_arg", "scatter_arg", "SegmentArgResult"]

_REDUCES = ("sum", "add", "mean", "min", "max")


class SegmentArgResult(NamedTuple):
    """``values`` reduced per group; ``arg`` the winning row (``-1`` if empty)."""
    values: Tensor
    arg: Tensor


def _check_src(src, name: str = "src") -> None:
    if not isinstance(src, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(src).__name__}")
    if src.is_complex() or src.dtype == torch.bool:
        raise TypeError(f"{name} must be a real floating or integer tensor, got {src.dtype}")


def _normalize_dim(dim: int, src: Tensor) -> int:
    if src.dim() == 0:
        raise ValueError("src must have at least one dimension")
    if not -src.dim() <= dim < src.dim():
        raise IndexError(f"dim={dim} is out of range for src with {src.dim()} dimensions")
    return dim % src.dim()


def _check_integer_tensor(t, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 or int32 tensor, got {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(t.shape)}")


def _check_mean(src: Tensor, reduce: str, name: str = "src") -> None:
    if reduce == "mean" and not src.is_floating_point():
        raise TypeError(f"reduce='mean' needs floating-point {name}, got {src.dtype}")


def _needs_grad(src: Tensor) -> bool:
    """Min/max only pay for tracking the winning rows when autograd needs them."""
    return src.requires_grad and torch.is_grad_enabled()


def _as_3d(src: Tensor, dim: int) -> Tensor:
    """View ``src`` as ``[B, E, F]`` around ``dim`` (a copy only if needed)."""
    shape = src.shape
    outer = 1
    for s in shape[:dim]:
        outer *= s
    inner = 1
    for s in shape[dim + 1:]:
        inner *= s
    return src.reshape(outer, shape[dim], inner)


def _restore(out3: Tensor, src: Tensor, dim: int, size) -> Tensor:
    return out3.reshape(src.shape[:dim] + (size,) + src.shape[dim + 1:])


def _check_scatter_args(src: Tensor, index: Tensor, dim: int, dim_size) -> tuple:
    """Validates scatter arguments; returns the normalized ``dim`` and ``dim_size``."""
    _check_src(src)
    dim = _normalize_dim(dim, src)
    _check_integer_tensor(index, "index")
    if index.numel() != src.size(dim):
        raise ValueError(f"index has {index.numel()} entries but src.size({dim}) = {src.size(dim)}")
    if index.device != src.device:
        raise ValueError(f"index is on {index.device} but src is on {src.device}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
    elif not isinstance(dim_size, (int, torch.SymInt)) or isinstance(dim_size, bool):
        raise TypeError(f"dim_size must be an int, got {type(dim_size).__name__}")
    if dim_size < 0:
        raise ValueError(f"dim_size must be non-negative, got {dim_size}")
    return dim, dim_size


def scatter(src: Tensor, index: Tensor, dim: int = 0, dim_size: Optional[int] = None,
            reduce: str = "sum") -> Tensor:
    r"""Reduces all values of ``src`` that share an ``index`` along ``dim``.

    A drop-in for :func:`torch_geometric.utils.scatter` (same signature and
    semantics, empty groups give 0) running on graphequi's kernels. A sorted
    ``index`` is detected by the kernel and reduced as CSR segments.

    Args:
        src (Tensor): values, any shape; floating or integer dtype.
        index (Tensor): ``[src.size(dim)]`` group of each row, int64 or int32,
            with values in ``[0, dim_size)``.
        dim (int): the dimension to reduce along.
        dim_size (int, optional): number of groups; ``index.max() + 1`` when
            omitted (which needs a device sync and breaks ``torch.compile``
            graphs: pass it explicitly in compiled code).
        reduce (str): ``"sum"``/``"add"``, ``"mean"``, ``"min"`` or ``"max"``.

    Returns:
        Tensor of ``src``'s shape with ``size(dim) == dim_size``.

    Example:
        >>> src = torch.tensor([[1., 2.], [3., 4.], [5., 6.]])
        >>> scatter(src, torch.tensor([0, 2, 0]), dim_size=3, reduce="max")
        tensor([[5., 6.],
                [0., 0.],
                [3., 4.]])
    """
    check_reduce(reduce, _REDUCES)
    dim, dim_size = _check_scatter_args(src, index, dim, dim_size)
    _check_mean(src, reduce)
    ops = ops_for(src.device)
    src3 = _as_3d(src, dim)
    if reduce in ("min", "max") and _needs_grad(src):
        out3, _ = ops.scatter_arg(src3, index, dim_size, reduce)
    else:
        out3 = ops.scatter(src3, index, dim_size, "sum" if reduce == "add" else reduce)
    return _restore(out3, src, dim, dim_size)


def scatter_arg(src: Tensor, index: Tensor, dim: int = 0, dim_size: Optional[int] = None,
                reduce: str = "max") -> SegmentArgResult:
    """Like :func:`scatter` with ``reduce='min'|'max'``, also returning the
    winning row of each output entry (lowest row on ties, ``-1`` if empty)."""
    check_reduce(reduce, ("min", "max"))
    dim, dim_size = _check_scatter_args(src, index, dim, dim_size)
    out3, arg3 = ops_for(src.device).scatter_arg(_as_3d(src, dim), index, dim_size, reduce)
    return SegmentArgResult(_restore(out3, src, dim, dim_size), _restore(arg3, src, dim, dim_size))


def _check_segment_args(src: Tensor, ptr: Tensor, dim: int) -> int:
    _check_src(src)
    dim = _normalize_dim(dim, src)
    _check_integer_tensor(ptr, "ptr")
    if ptr.numel() < 1:
        raise ValueError("ptr must have at least one entry (ptr = [0] for zero groups)")
    if ptr.device != src.device:
        raise ValueError(f"ptr is on {ptr.device} but src is on {src.device}")
    return dim


def segment(src: Tensor, ptr: Tensor, reduce: str = "sum", dim: int = 0) -> Tensor:
    r"""Reduces contiguous row ranges (CSR segments) of ``src`` along ``dim``:
    group ``g`` is rows ``ptr[g]:ptr[g+1]``.

    Args:
        src (Tensor): values, any shape.
        ptr (Tensor): ``[G + 1]`` non-decreasing offsets with ``ptr[0] == 0``
            and ``ptr[-1] == src.size(dim)``; int64 or int32.
        reduce (str): ``"sum"``/``"add"``, ``"mean"``, ``"min"`` or ``"max"``.
        dim (int): the dimension to reduce along.

    Returns:
        Tensor of ``src``'s shape with ``size(dim) == G``.

    Example:
        >>> segment(torch.arange(6.).view(3, 2), torch.tensor([0, 2, 2, 3]), reduce="mean")
        tensor([[1., 2.],
                [0., 0.],
                [4., 5.]])
    """
    check_reduce(reduce, _REDUCES)
    dim = _check_segment_args(src, ptr, dim)
    _check_mean(src, reduce)
    ops = ops_for(src.device)
    src3 = _as_3d(src, dim)
    if reduce in ("min", "max") and _needs_grad(src):
        out3, _ = ops.segment_arg(src3, ptr, reduce)
    else:
        out3 = ops.segment(src3, ptr, "sum" if reduce == "add" else reduce)
    return _restore(out3, src, dim, ptr.size(0) - 1)


def segment_arg(src: Tensor, ptr: Tensor, reduce: str = "max", dim: int = 0) -> SegmentArgResult:
    """Min or max over CSR segments, with the winning row of every output entry.

    Ties go to the lowest row; empty segments give value 0 and row ``-1``.

    Example:
        >>> values, arg = segment_arg(torch.tensor([3., 7., 7., 1.]), torch.tensor([0, 3, 4]))
        >>> values, arg
        (tensor([7., 1.]), tensor([1, 3]))
    """
    check_reduce(reduce, ("min", "max"))
    dim = _check_segment_args(src, ptr, dim)
    out3, arg3 = ops_for(src.device).segment_arg(_as_3d(src, dim), ptr, reduce)
    size = ptr.size(0) - 1
    return SegmentArgResult(_restore(out3, src, dim, size), _restore(arg3, src, dim, size))

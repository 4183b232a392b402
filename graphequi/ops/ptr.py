"""Conversions between a sorted group index (COO) and CSR offsets (``ptr``)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["index_to_ptr", "ptr_to_index"]


def index_to_ptr(index: Tensor, size: int) -> Tensor:
    """CSR offsets of a **sorted** group index.

    ``ptr[g]`` is the first row whose group is ``>= g``, so group ``g`` is rows
    ``ptr[g]:ptr[g+1]``. Static output shape ``[size + 1]`` (compile-friendly).

    Args:
        index (Tensor): ``[E]`` non-decreasing group ids in ``[0, size)``.
        size (int): number of groups ``G``.

    Example:
        >>> index_to_ptr(torch.tensor([0, 0, 2, 2, 2]), 4)
        tensor([0, 2, 2, 5, 5])
    """
    if not isinstance(index, Tensor) or index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"index must be an int64 or int32 tensor, got "
                        f"{index.dtype if isinstance(index, Tensor) else type(index).__name__}")
    if index.dim() != 1:
        raise ValueError(f"index must be one-dimensional, got shape {tuple(index.shape)}")
    if size < 0:
        raise ValueError(f"size must be non-negative, got {size}")
    if not torch.compiler.is_compiling() and index.numel() > 0:
        if bool((index[1:] < index[:-1]).any()):
            raise ValueError("index must be sorted (non-decreasing) to convert it to ptr")
        if int(index[0]) < 0 or int(index[-1]) >= size:
            raise IndexError(f"index values must lie in [0, {size}), got [{int(index[0])}, {int(index[-1])}]")
    boundaries = torch.arange(size + 1, device=index.device, dtype=index.dtype)
    return torch.searchsorted(index, boundaries, right=False).to(index.dtype)


def ptr_to_index(ptr: Tensor, num_rows: Optional[int] = None, *, validate: bool = True) -> Tensor:
    """The group id of every row described by CSR offsets ``ptr``.

    Args:
        ptr (Tensor): ``[G + 1]`` non-decreasing offsets starting at 0.
        num_rows (int, optional): ``ptr[-1]``; pass it to avoid a device sync
            (and a graph break under ``torch.compile``).
        validate (bool): check ``ptr``'s values (start, monotonicity,
            ``num_rows``), which reads them on the host; ``False`` for offsets
            validated before (the kernels' own row expansion).

    Example:
        >>> ptr_to_index(torch.tensor([0, 2, 2, 5]))
        tensor([0, 0, 2, 2, 2])
    """
    if not isinstance(ptr, Tensor) or ptr.dtype not in (torch.int64, torch.int32):
        raise TypeError("ptr must be an int64 or int32 tensor")
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"ptr must be one-dimensional with at least one entry, got shape {tuple(ptr.shape)}")
    counts = ptr[1:] - ptr[:-1]
    if validate and not torch.compiler.is_compiling():
        if int(ptr[0]) != 0:
            raise ValueError(f"ptr must start at 0, got {int(ptr[0])}")
        if bool((counts < 0).any()):
            raise ValueError("ptr must be non-decreasing")
        if num_rows is not None and int(ptr[-1]) != num_rows:
            raise ValueError(f"ptr[-1] = {int(ptr[-1])} does not match num_rows = {num_rows}")
    if num_rows is None:
        num_rows = int(ptr[-1])
    groups = torch.arange(counts.numel(), device=ptr.device, dtype=ptr.dtype)
    return torch.repeat_interleave(groups, counts, output_size=num_rows)

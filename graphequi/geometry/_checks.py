"""Value checks of point-cloud inputs, done once where positions enter."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def check_positions(pos: Tensor, name: str = "pos", dims: Optional[tuple] = None, values: bool = True) -> None:
    """``pos`` is a floating ``[N, D]`` tensor (``D`` in ``dims`` when given)
    and, with ``values``, finite (a host read: a compiled caller passes
    ``values=False`` and keeps the metadata checks)."""
    if not isinstance(pos, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(pos).__name__}")
    if not pos.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {pos.dtype}")
    if pos.dim() != 2:
        raise ValueError(f"{name} must have shape [N, D], got {tuple(pos.shape)}")
    if dims is not None and pos.size(1) not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} columns, "
                         f"got shape {tuple(pos.shape)}")
    if values and pos.numel() and not bool(torch.isfinite(pos).all()):
        raise ValueError(f"{name} contains NaN or infinite coordinates")


def check_batch(batch: Optional[Tensor], num_nodes: int) -> Optional[Tensor]:
    """``batch`` is ``None`` or a non-negative integer ``[N]`` graph id vector."""
    if batch is None:
        return None
    if not isinstance(batch, Tensor) or batch.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"batch must be an int32/int64 tensor, got "
                        f"{getattr(batch, 'dtype', type(batch).__name__)}")
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [{num_nodes}], got {tuple(batch.shape)}")
    if batch.numel() and int(batch.min()) < 0:
        raise IndexError("batch contains a negative graph id")
    return batch.long()

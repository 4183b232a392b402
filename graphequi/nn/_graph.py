"""Sizes and offsets of a PyG ``Data``/``Batch`` that stay symbolic under ``torch.compile``."""
from __future__ import annotations

import torch
from torch import Tensor

from graphequi.ops import index_to_ptr


def num_nodes_of(data) -> int:
    """``data.num_nodes``, read from a tensor's size where one says it: PyG's
    property walks the storages, which ``torch.compile`` cannot trace."""
    for key in ("batch", "x"):
        value = getattr(data, key, None)
        if isinstance(value, Tensor):
            return value.size(0)
    return data.num_nodes


def graph_ptr(data, num_nodes: int, device: torch.device) -> Tensor:
    """``data.ptr`` (``[B + 1]`` node offsets of the graphs of a batch), or
    ``[0, num_nodes]`` for a single graph. Its length, unlike PyG's Python
    ``num_graphs``, is a size that a compiled model keeps symbolic. A graph
    with a ``batch`` vector but no ``ptr`` gets one from it (a host read)."""
    ptr = getattr(data, "ptr", None)
    if ptr is not None:
        return ptr
    batch = getattr(data, "batch", None)
    if isinstance(batch, Tensor) and batch.numel() > 0:
        return index_to_ptr(batch, int(batch.max()) + 1)
    return torch.tensor([0, num_nodes], device=device)

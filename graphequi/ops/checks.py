r"""Checks of graph index tensors, for the places where data enters.

Kernels and layers check shapes on every call (no host synchronisation);
the value checks here -- index ranges -- read the data, so they run once, where
a graph enters (a transform, a dataset, :class:`graphequi.transforms.ValidateGraph`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["check_edge_index", "first_empty_graph"]


def check_edge_index(edge_index, num_nodes: int, name: str = "edge_index") -> None:
    """Raise a clear error unless ``edge_index`` is an integer ``[2, E]`` tensor
    whose entries lie in ``[0, num_nodes)``.

    Args:
        edge_index: the candidate ``[2, E]`` tensor.
        num_nodes: :math:`N`.
        name: what to call it in the message.

    Example:
        >>> import torch
        >>> check_edge_index(torch.tensor([[0, 1], [1, 2]]), 3)
        >>> check_edge_index(torch.tensor([[0, 1], [1, 3]]), 3)
        Traceback (most recent call last):
        ...
        IndexError: edge_index contains node 3, out of range for 3 nodes
    """
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an int64 or int32 tensor, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() == 0:
        return
    lo, hi = int(edge_index.min()), int(edge_index.max())
    if lo < 0:
        raise IndexError(f"{name} contains a negative node id ({lo})")
    if hi >= num_nodes:
        raise IndexError(f"{name} contains node {hi}, out of range for {num_nodes} nodes")


def first_empty_graph(ptr: Tensor) -> Optional[int]:
    """The position of the first graph without nodes in a batch given by its
    node offsets ``ptr`` ``[B + 1]``, or ``None`` (a host read).

    Example:
        >>> first_empty_graph(torch.tensor([0, 3, 3, 5])), first_empty_graph(torch.tensor([0, 2]))
        (1, None)
    """
    empty = (ptr[1:] == ptr[:-1]).nonzero().view(-1)
    return int(empty[0]) if empty.numel() else None

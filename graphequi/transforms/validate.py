r"""Validate a graph once, where it enters a pipeline."""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import Tensor
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from graphequi.ops.checks import check_edge_index, first_empty_graph
from graphequi.poly.keys import KEY_BY_LEVEL, POLY_EDGE_KEY, POLY_NODE_KEY

__all__ = ["ValidateGraph", "validate_graph"]


def validate_graph(data, *, allow_empty: bool = False, max_num_nodes: Optional[int] = None,
                   finite_attrs: Iterable[str] = ("x", "edge_attr", "pos", *KEY_BY_LEVEL.values())) -> None:
    r"""Raise a clear error unless ``data`` (a ``Data`` or ``Batch``) is well formed.

    Checks that ``edge_index`` is an integer ``[2, E]`` tensor with node ids in
    ``[0, num_nodes)``, that the graph (every graph of a batch) has nodes
    unless ``allow_empty``, that edge-level attributes (``edge_attr``, the
    edge polynomials) have one row per edge and node-level ones (``x``,
    ``pos``, the node polynomials, ``batch``) one row per node, and that the
    floating attributes in ``finite_attrs`` hold no NaN or infinity. These
    are the value checks graphequi's layers leave out of ``forward`` so that
    it has no host synchronisation.

    Args:
        data: the graph(s).
        allow_empty: accept graphs with 0 nodes.
        max_num_nodes: the most nodes a graph may have (the fixed dense size
            of e.g. ``PPGNPlusPlus(max_num_nodes=...)``).
        finite_attrs: floating attributes that must be finite (when present).
    """
    num_nodes = data.num_nodes
    if not allow_empty:
        if not num_nodes:
            raise ValueError("the graph has 0 nodes")
        ptr = getattr(data, "ptr", None)
        empty = first_empty_graph(ptr) if isinstance(ptr, Tensor) and ptr.numel() > 1 else None
        if empty is not None:
            raise ValueError(f"graph {empty} of the batch has 0 nodes")
    if max_num_nodes is not None:
        ptr, batch = getattr(data, "ptr", None), getattr(data, "batch", None)
        if isinstance(ptr, Tensor) and ptr.numel() > 1:
            largest = int(ptr.diff().max())
        elif isinstance(batch, Tensor) and batch.numel() > 0:  # graphs of a batch vector without ptr
            largest = int(torch.bincount(batch).max())
        else:
            largest = num_nodes
        if largest > max_num_nodes:
            raise ValueError(f"a graph has {largest} nodes, more than max_num_nodes={max_num_nodes}")
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        raise ValueError("the graph has no edge_index")
    check_edge_index(edge_index, num_nodes)
    for key, rows, what in (("edge_attr", edge_index.size(1), "edges"), (POLY_EDGE_KEY, edge_index.size(1), "edges"),
                            ("x", num_nodes, "nodes"), ("pos", num_nodes, "nodes"),
                            (POLY_NODE_KEY, num_nodes, "nodes"), ("batch", num_nodes, "nodes")):
        value = getattr(data, key, None)
        if isinstance(value, Tensor) and (value.dim() == 0 or value.size(0) != rows):
            got = "a scalar" if value.dim() == 0 else f"{value.size(0)} rows"
            raise ValueError(f"{key} has {got} for {rows} {what}")
    for key in finite_attrs:
        value = getattr(data, key, None)
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"data.{key} contains NaN or infinite values")


@functional_transform("validate_graph")
class ValidateGraph(BaseTransform):
    r"""A transform that runs :func:`validate_graph` and returns the graph
    unchanged: put it first in a ``pre_transform``/``transform`` chain so that
    bad input fails there, with a message naming the problem, instead of deep
    inside a compiled model.

    Args:
        allow_empty: accept graphs with 0 nodes.
        max_num_nodes: the most nodes a graph may have.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> ValidateGraph()(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=2))
        Traceback (most recent call last):
        ...
        IndexError: edge_index contains node 5, out of range for 2 nodes
    """

    def __init__(self, allow_empty: bool = False, max_num_nodes: Optional[int] = None):
        self.allow_empty = allow_empty
        self.max_num_nodes = max_num_nodes

    def forward(self, data):
        validate_graph(data, allow_empty=self.allow_empty, max_num_nodes=self.max_num_nodes)
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(allow_empty={self.allow_empty}"
                + (f", max_num_nodes={self.max_num_nodes}" if self.max_num_nodes is not None else "") + ")")

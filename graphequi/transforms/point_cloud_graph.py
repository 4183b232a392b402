r"""Graphs of point clouds as PyG transforms: :class:`RadiusGraph` and
:class:`FullyConnected`, on :func:`graphequi.geometry.radius_graph` /
:func:`~graphequi.geometry.fully_connected_graph`."""
from __future__ import annotations

import copy
import math
from typing import Optional

from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from graphequi.geometry import fully_connected_graph, radius_graph

__all__ = ["RadiusGraph", "FullyConnected"]


def _with_edges(data, edge_index):
    """A shallow copy of ``data`` with new edges; edge attributes of the old
    edges no longer match and are dropped."""
    out = copy.copy(data)
    out.edge_index = edge_index
    for key in ("edge_attr", "edge_weight"):
        if key in out:
            del out[key]
    return out


@functional_transform("graphequi_radius_graph")
class RadiusGraph(BaseTransform):
    r"""Replace ``edge_index`` by the radius graph of ``data.pos``: edges
    :math:`(j \to i)` with :math:`\lVert p_j - p_i \rVert < r`, sorted by
    target then source, at most ``max_num_neighbors`` (lowest source index
    first) per target. Existing edge attributes no longer match the new
    edges and are dropped (``edge_attr``, ``edge_weight``).

    Args:
        r: radius ``> 0``.
        loop: include self-loops.
        max_num_neighbors: cap per target, ``None`` for none.
        flow: ``"source_to_target"`` or ``"target_to_source"``.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> RadiusGraph(1.0)(Data(pos=torch.tensor([[0.0, 0, 0], [0.5, 0, 0]]))).edge_index.tolist()
        [[1, 0], [0, 1]]
    """

    def __init__(self, r: float, loop: bool = False, max_num_neighbors: Optional[int] = 32,
                 flow: str = "source_to_target"):
        if not isinstance(r, (int, float)) or math.isnan(r) or r <= 0:
            raise ValueError(f"r must be a positive number, got {r!r}")
        self.r, self.loop, self.max_num_neighbors, self.flow = r, loop, max_num_neighbors, flow

    def forward(self, data):
        if getattr(data, "pos", None) is None:
            raise ValueError("RadiusGraph needs data.pos")
        return _with_edges(data, radius_graph(data.pos, self.r, getattr(data, "batch", None),
                                              self.max_num_neighbors, self.loop, self.flow))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(r={self.r}, max_num_neighbors={self.max_num_neighbors})"


@functional_transform("graphequi_fully_connected")
class FullyConnected(BaseTransform):
    r"""Replace ``edge_index`` by all ordered pairs of distinct nodes (of the
    same graph for a batch), in :class:`RadiusGraph`'s order.

    Args:
        loop: include self-loops.
    """

    def __init__(self, loop: bool = False):
        self.loop = loop

    def forward(self, data):
        device = data.pos.device if getattr(data, "pos", None) is not None else None
        return _with_edges(data, fully_connected_graph(data.num_nodes, getattr(data, "batch", None),
                                                       self.loop, device=device))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(loop={self.loop})"

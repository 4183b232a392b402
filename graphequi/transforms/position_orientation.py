r"""Lift a point-cloud graph to a position-orientation point cloud
(:math:`\mathbb R^3 \times S^2`): every directed edge :math:`(j \to i)`
becomes a node at :math:`p_i` with orientation
:math:`\mathrm{unit}(p_j - p_i)`."""
from __future__ import annotations

from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from graphequi.geometry import lift_edges, lifted_orientations

__all__ = ["PositionOrientationGraph", "PositionOrientationData"]


class PositionOrientationData(Data):
    """A lifted graph: ``base_index`` points into the base graph's nodes, so
    it is incremented by ``base_num_nodes`` (not by the lifted node count)
    when graphs are collated."""

    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key == "base_index":
            return self.base_num_nodes
        return super().__inc__(key, value, *args, **kwargs)


@functional_transform("position_orientation_graph")
class PositionOrientationGraph(BaseTransform):
    r"""Lift ``data`` (with ``pos`` and ``edge_index``) to a
    :class:`PositionOrientationData` whose nodes are the directed edges.

    The lifted graph has, for lifted node :math:`u` = base edge
    :math:`(j_u \to i_u)`:

    * ``pos[u]`` :math:`= p_{i_u}`, ``ori[u]`` :math:`=
      \mathrm{unit}(p_{j_u} - p_{i_u})`;
    * ``base_index[u]`` :math:`= i_u` (``base_num_nodes`` base nodes);
    * ``x[u] = x[i_u]`` when ``data.x`` exists;
    * ``edge_index``: :math:`(v \to u)` whenever :math:`i_v = i_u` or
      :math:`(i_v \to i_u)` is a base edge (see
      :func:`graphequi.geometry.lift_edges`);
    * graph-level attributes (``y`` of shape ``[1, ...]``) carried over.

    Node-level targets of the base graph can be read back by averaging over
    ``base_index``.

    Args:
        loop: keep lifted self-loops.
    """

    def __init__(self, loop: bool = True):
        self.loop = loop

    def forward(self, data):
        if getattr(data, "pos", None) is None or getattr(data, "edge_index", None) is None:
            raise ValueError("PositionOrientationGraph needs data.pos and data.edge_index")
        if data.pos.dim() != 2 or data.pos.size(1) != 3:
            raise ValueError(f"pos must have shape [N, 3], got {tuple(data.pos.shape)}")
        lifted = lift_edges(data.edge_index, data.num_nodes, loop=self.loop)
        out = PositionOrientationData(
            pos=data.pos.index_select(0, lifted.base),
            ori=lifted_orientations(data.pos, data.edge_index),
            edge_index=lifted.edge_index, base_index=lifted.base,
            base_num_nodes=data.num_nodes)
        out.num_nodes = lifted.base.numel()
        if getattr(data, "x", None) is not None:
            out.x = data.x.index_select(0, lifted.base)
        y = getattr(data, "y", None)
        if isinstance(y, torch.Tensor) and (y.dim() == 0 or y.size(0) == 1):
            out.y = y
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(loop={self.loop})"

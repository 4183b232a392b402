r"""PONITA: equivariant networks by weight sharing over position-orientation
space (Bekkers et al., "Fast, Expressive SE(n) Equivariant Networks through
Weight-Sharing in Position-Orientation Space", ICLR 2024)."""
from __future__ import annotations

import copy
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from graphequi import ops
from graphequi.geometry import (bundle_fiber_invariants, bundle_spatial_invariants, distance,
                                edge_vectors, fibonacci_sphere, lift_edges, lifted_orientations,
                                polynomial_cutoff, position_orientation_invariants)
from graphequi.geometry._checks import check_positions

from .block import PonitaBlock
from .conv import csr_adjacency
from .embedding import KernelBasis

__all__ = ["Ponita", "PointCloudOutput", "energy_and_forces"]


class PointCloudOutput(NamedTuple):
    """Outputs of a point-cloud model.

    Attributes:
        scalar: invariant outputs ``[N or B, S]`` (``None`` if ``S = 0``).
        vector: equivariant vectors ``[N or B, V, 3]`` (``None`` if ``V = 0``).
    """

    scalar: Optional[Tensor]
    vector: Optional[Tensor]


class Ponita(nn.Module):
    r"""PONITA on point-cloud graphs (``data.pos`` ``[N, 3]``,
    ``data.edge_index``, optional scalars ``data.x`` ``[N, S]`` and vectors
    ``data.vec`` ``[N, V, 3]``).

    Three modes, by ``num_ori``:

    * ``num_ori > 0``: features live on a Fibonacci grid of :math:`O`
      orientations per node, ``[N, O, C]``. Edges carry the bundle
      invariants :math:`(\mathbf r \cdot o, \lVert \mathbf r - (\mathbf r
      \cdot o) o \rVert)` and orientations mix through the fiber kernel of
      :math:`o_k \cdot o_l`. Equivariant only up to the grid's resolution
      (wrap in :class:`~graphequi.nn.FrameAveraging` for exactness).
    * ``num_ori = 0`` (PNITA): one feature vector per node, kernels of the
      distance only; exactly E(3)-invariant, scalar outputs only.
    * ``num_ori = -1``: the graph is lifted to a position-orientation point
      cloud, one node per directed edge :math:`(j \to i)` at :math:`p_i`
      with orientation :math:`\mathrm{unit}(p_j - p_i)`
      (:func:`graphequi.geometry.lift_edges`), convolved with the
      invariants :math:`(a, b, c)`; exactly E(3)-equivariant. Outputs are
      averaged over the lifted nodes of each base node (a base node without
      incoming edges gets 0).

    Inputs: scalars are repeated over orientations; a vector :math:`v` is
    lifted to the scalar field :math:`v \cdot o`. Outputs: scalars are the
    mean over orientations, vectors :math:`\frac1O \sum_o f_o\, o`. The
    kernel bases (spatial ``[E, O, B]``, fiber ``[O, O, B]``) are computed
    once per forward and shared by all layers.

    Args:
        in_scalars: :math:`S` (``0`` for none: a constant 1 is used).
        hidden: channels :math:`C`.
        out_scalars, out_vectors: output widths.
        in_vectors: :math:`V`.
        edge_scalars: :math:`D`, invariant edge scalars ``data.edge_attr``
            ``[E, D]`` (e.g. the charge products :math:`q_i q_j` of the
            n-body task), appended to the geometric invariants of the spatial
            kernel (grid and distance modes; the lifted mode has no edges of
            the input graph to attach them to).
        num_layers: number of :class:`PonitaBlock`.
        num_ori: ``-1``, ``0`` or the grid size.
        radius: cutoff radius of the smooth envelope
            :func:`~graphequi.geometry.polynomial_cutoff` on every kernel
            (``None``: no envelope, e.g. fully connected graphs).
        basis_dim: kernel basis width (default ``hidden``).
        degree: polynomial degree of the invariant embedding.
        widening, layer_scale: of the ConvNeXt blocks.
        aggr: ``"sum"`` or ``"mean"`` over neighbors.
        task_level: ``"graph"`` (pool nodes per graph) or ``"node"``.
        pool: ``"mean"`` or ``"sum"`` for graph-level outputs.
    """

    def __init__(self, in_scalars: int, hidden: int, out_scalars: int = 1, *, in_vectors: int = 0,
                 out_vectors: int = 0, edge_scalars: int = 0, num_layers: int = 4, num_ori: int = 12,
                 radius: Optional[float] = None, basis_dim: Optional[int] = None, degree: int = 3,
                 widening: int = 4, layer_scale: Optional[float] = 1e-6, aggr: str = "sum",
                 task_level: str = "graph", pool: str = "mean"):
        super().__init__()
        if not isinstance(num_ori, int) or num_ori < -1:
            raise ValueError(f"num_ori must be -1, 0 or positive, got {num_ori!r}")
        if num_ori == 0 and (in_vectors or out_vectors):
            raise ValueError("num_ori=0 (distances only) has no orientations to carry vectors; "
                             "use num_ori=-1 or a grid")
        if task_level not in ("graph", "node") or pool not in ("mean", "sum"):
            raise ValueError(f"task_level must be 'graph'/'node' and pool 'mean'/'sum', "
                             f"got {task_level!r}, {pool!r}")
        if radius is not None and radius <= 0:
            raise ValueError(f"radius must be positive, got {radius}")
        if out_scalars + out_vectors < 1:
            raise ValueError("the model needs at least one output")
        if edge_scalars < 0 or (edge_scalars and num_ori == -1):
            raise ValueError(f"edge_scalars must be >= 0 and needs num_ori >= 0 (the lifted mode has no "
                             f"input-graph edges), got edge_scalars={edge_scalars}, num_ori={num_ori}")
        basis_dim = basis_dim or hidden
        self.in_scalars, self.in_vectors, self.edge_scalars = in_scalars, in_vectors, edge_scalars
        self.out_scalars, self.out_vectors = out_scalars, out_vectors
        self.hidden, self.num_ori, self.radius = hidden, num_ori, radius
        self.task_level, self.pool = task_level, pool
        self.register_buffer("grid", fibonacci_sphere(max(num_ori, 1)), persistent=False)
        spatial_dim = {0: 1, -1: 3}.get(num_ori, 2)
        self.spatial_basis = KernelBasis(spatial_dim + edge_scalars, hidden, basis_dim, degree)
        self.fiber_basis = KernelBasis(1, hidden, basis_dim, degree) if num_ori > 0 else None
        self.embed = nn.Linear(max(in_scalars, 1) + in_vectors, hidden)
        self.blocks = nn.ModuleList(PonitaBlock(hidden, basis_dim, fiber=num_ori > 0, widening=widening,
                                                layer_scale=layer_scale, aggr=aggr)
                                    for _ in range(num_layers))
        self.readout = nn.Linear(hidden, out_scalars + out_vectors)

    def reset_parameters(self):
        self.spatial_basis.reset_parameters()
        if self.fiber_basis is not None:
            self.fiber_basis.reset_parameters()
        self.embed.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.readout.reset_parameters()

    # -- inputs ----------------------------------------------------------
    def _inputs(self, data, pos: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        n = pos.size(0)
        x = getattr(data, "x", None) if self.in_scalars else None
        if self.in_scalars:
            if x is None or x.dim() != 2 or x.size(0) != n or x.size(1) != self.in_scalars:
                raise ValueError(f"{self.__class__.__name__}: data.x must have shape "
                                 f"[{n}, {self.in_scalars}], got "
                                 f"{None if x is None else tuple(x.shape)}")
            x = x.to(pos.dtype)
        else:
            x = pos.new_ones(n, 1)
        vec = None
        if self.in_vectors:
            vec = getattr(data, "vec", None)
            if vec is None or vec.dim() != 3 or vec.shape[0] != n or vec.shape[1:] != (self.in_vectors, 3):
                raise ValueError(f"{self.__class__.__name__}: data.vec must have shape "
                                 f"[{n}, {self.in_vectors}, 3], got "
                                 f"{None if vec is None else tuple(vec.shape)}")
            vec = vec.to(pos.dtype)
        return x, vec

    def _with_edge_scalars(self, data, invariants: Tensor) -> Tensor:
        """``[E, O, I]`` geometric invariants, with ``data.edge_attr`` appended on every orientation."""
        if not self.edge_scalars:
            return invariants
        attr = getattr(data, "edge_attr", None)
        num_edges = invariants.size(0)
        if attr is not None and attr.dim() == 1:
            attr = attr.unsqueeze(1)
        if attr is None or attr.dim() != 2 or attr.shape != (num_edges, self.edge_scalars):
            raise ValueError(f"{self.__class__.__name__}: data.edge_attr must have shape "
                             f"[{num_edges}, {self.edge_scalars}], got {None if attr is None else tuple(attr.shape)}")
        attr = attr.to(invariants.dtype).unsqueeze(1).expand(-1, invariants.size(1), -1)
        return torch.cat([invariants, attr], -1)

    def forward(self, data) -> PointCloudOutput:
        pos, edge_index = data.pos, getattr(data, "edge_index", None)
        if pos is None or pos.dim() != 2 or pos.size(1) != 3:
            raise ValueError(f"{self.__class__.__name__}: data.pos must have shape [N, 3], "
                             f"got {None if pos is None else tuple(pos.shape)}")
        if edge_index is None or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"{self.__class__.__name__}: data.edge_index must have shape [2, E]")
        # values in eager mode only, like the index checks of csr_adjacency below (a
        # compiled model trusts inputs validated where they entered, e.g. by RadiusGraph)
        check_positions(pos, "data.pos", values=not torch.compiler.is_compiling())
        num_nodes = pos.size(0)
        x, vec = self._inputs(data, pos)
        grid = self.grid.to(pos.dtype)
        fiber_basis = None
        if self.num_ori > 0:
            rel = edge_vectors(pos, edge_index)
            spatial = self.spatial_basis(self._with_edge_scalars(
                data, bundle_spatial_invariants(rel, grid)))                           # [E, O, B]
            fiber_basis = self.fiber_basis(bundle_fiber_invariants(grid))          # [O, O, B]
            feats = x.unsqueeze(1).expand(-1, self.num_ori, -1)
            if vec is not None:
                feats = torch.cat([feats, torch.einsum("nvd,od->nov", vec, grid)], -1)
            graph_edges, ori, base = edge_index, None, None
            dist = None if self.radius is None else distance(pos, edge_index)
        elif self.num_ori == 0:
            dist = distance(pos, edge_index)
            spatial = self.spatial_basis(self._with_edge_scalars(data, dist.unsqueeze(1)))  # [E, 1, B]
            feats, graph_edges, ori, base = x.unsqueeze(1), edge_index, None, None
        else:
            lifted = lift_edges(edge_index, num_nodes)
            base, graph_edges = lifted.base, lifted.edge_index
            ori = lifted_orientations(pos, edge_index)                             # [E, 3]
            lpos = pos.index_select(0, base)
            spatial = self.spatial_basis(
                position_orientation_invariants(lpos, ori, graph_edges).unsqueeze(1))
            feats = x.index_select(0, base)
            if vec is not None:
                feats = torch.cat([feats, torch.einsum("nvd,nd->nv", vec.index_select(0, base), ori)], -1)
            feats = feats.unsqueeze(1)
            dist = None if self.radius is None else distance(lpos, graph_edges)
        weight = None if self.radius is None else polynomial_cutoff(dist[:, 0], self.radius)

        h = self.embed(feats)
        # One target-major CSR (with its transpose) for every layer; the
        # per-edge inputs are put in its edge order once, so each layer's
        # kernel is made in that order and goes straight into the fused spmm.
        csr, (spatial, weight) = csr_adjacency(graph_edges, h.size(0), spatial, weight,
                                               validate=not torch.compiler.is_compiling())
        for block in self.blocks:
            h = block(h, csr, spatial, fiber_basis, weight)
        out = self.readout(h)                                                      # [M, O, S+V]
        scalar = out[..., :self.out_scalars].mean(1) if self.out_scalars else None
        vector = None
        if self.out_vectors:
            f = out[..., self.out_scalars:]
            if self.num_ori > 0:
                vector = torch.einsum("nov,od->nvd", f, grid) / self.num_ori
            else:
                vector = f[:, 0, :, None] * ori[:, None, :]                       # [E, V, 3]
        if base is not None:
            # back from lifted nodes to base nodes
            scalar = None if scalar is None else ops.scatter(scalar, base, 0, num_nodes, "mean")
            vector = None if vector is None else ops.scatter(vector, base, 0, num_nodes, "mean")
        if self.task_level == "graph":
            batch = getattr(data, "batch", None)
            if batch is None:
                batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
                num_graphs = 1
            else:
                num_graphs = int(data.num_graphs)
            scalar = None if scalar is None else ops.scatter(scalar, batch, 0, num_graphs, self.pool)
            vector = None if vector is None else ops.scatter(vector, batch, 0, num_graphs, self.pool)
        return PointCloudOutput(scalar, vector)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(in_scalars={self.in_scalars}, in_vectors={self.in_vectors}, "
                f"edge_scalars={self.edge_scalars}, hidden={self.hidden}, out_scalars={self.out_scalars}, "
                f"out_vectors={self.out_vectors}, "
                f"num_layers={len(self.blocks)}, num_ori={self.num_ori}, radius={self.radius})")


def energy_and_forces(model: nn.Module, data, create_graph: Optional[bool] = None
                      ) -> tuple[Tensor, Tensor]:
    r"""Energy :math:`E` (the model's single graph-level scalar) and forces
    :math:`F = -\partial E / \partial p`.

    Args:
        model: returns a :class:`PointCloudOutput` with ``scalar`` ``[B, 1]``.
        data: the batch; ``data.pos`` is not modified.
        create_graph: keep the graph of the forces (to train on them);
            default ``model.training``.

    Returns:
        ``(energy [B], forces [N, 3])``.
    """
    pos = data.pos
    if not pos.requires_grad:
        pos = pos.detach().requires_grad_(True)
    data = copy.copy(data)
    data.pos = pos
    scalar = model(data).scalar
    if scalar is None or scalar.dim() != 2 or scalar.size(1) != 1:
        raise ValueError("energy_and_forces needs a model with one graph-level scalar output")
    create_graph = model.training if create_graph is None else create_graph
    (grad,) = torch.autograd.grad(scalar.sum(), pos, create_graph=create_graph)
    return scalar[:, 0], -grad

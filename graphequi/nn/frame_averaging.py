r"""Frame averaging (Puny et al., "Frame Averaging for Invariant and
Equivariant Network Design", ICLR 2022) with PCA frames: any point-cloud
backbone becomes exactly E(3)-, SE(3)- or O(3)-invariant/equivariant."""
from __future__ import annotations

import copy
import itertools
import warnings
from typing import Optional

import torch
from torch import Tensor, nn

from graphequi import ops
from graphequi.geometry._checks import check_positions

__all__ = ["FrameAveraging", "pca_frames"]

_SIGNS = torch.tensor(list(itertools.product((1.0, -1.0), repeat=3)))        # [8, 3]
_PROPER = _SIGNS[_SIGNS.prod(-1) > 0]                                        # [4, 3]


def pca_frames(pos: Tensor, batch: Optional[Tensor], num_graphs: int, group: str = "E3",
               degenerate_tol: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    r"""The PCA frames of each graph.

    The covariance :math:`C_b = \sum_{i \in b} (p_i - \mu_b)(p_i - \mu_b)^\top`
    (:math:`\mu_b` the centroid; :math:`\mu_b = 0` for ``"O3"``, which has no
    translations) has eigenvectors :math:`U_b` (ascending eigenvalues). The
    frames are :math:`U_b S` for the sign matrices :math:`S =
    \mathrm{diag}(\pm 1, \pm 1, \pm 1)`: all 8 for ``"E3"``/``"O3"``, the 4
    with :math:`\det(U_b S) = +1` for ``"SE3"``. Rotating (and, for E(3),
    reflecting) the cloud by :math:`R` maps this set of frames to :math:`R
    U_b S`, which is what makes the average exact -- provided the
    eigenvalues are distinct.

    Args:
        pos: ``[N, 3]``.
        batch: graph id per node ``[N]``, or ``None``.
        num_graphs: :math:`B`.
        group: ``"E3"``, ``"SE3"`` or ``"O3"``.
        degenerate_tol: relative eigenvalue gap below which a spectrum is
            called degenerate.

    Returns:
        ``(center [B, 3], frames [K, B, 3, 3], degenerate [B] bool)``, with
        :math:`K` = 8 or 4; column :math:`d` of ``frames[k, b]`` is axis
        :math:`d`.
    """
    if group not in ("E3", "SE3", "O3"):
        raise ValueError(f"group must be 'E3', 'SE3' or 'O3', got {group!r}")
    if batch is None:
        batch = torch.zeros(pos.size(0), dtype=torch.long, device=pos.device)
    if group == "O3":
        center = pos.new_zeros(num_graphs, 3)
    else:
        center = ops.scatter(pos, batch, 0, num_graphs, "mean")
    c = pos - center.index_select(0, batch)
    cov = ops.scatter(c.unsqueeze(-1) * c.unsqueeze(-2), batch, 0, num_graphs, "sum")    # [B, 3, 3]
    evals, evecs = torch.linalg.eigh(cov)
    scale = evals.abs().amax(-1).clamp_min(torch.finfo(pos.dtype).tiny)
    gaps = (evals[:, 1:] - evals[:, :-1]).amin(-1) / scale
    degenerate = gaps <= degenerate_tol
    signs = (_SIGNS if group != "SE3" else _PROPER).to(pos)                     # [K, 3]
    frames = evecs.unsqueeze(0) * signs[:, None, None, :]                       # [K, B, 3, 3]
    if group == "SE3":
        # flip the last axis where det(U_b) = -1 so that every frame is proper
        det = torch.linalg.det(evecs).sign()
        last = torch.ones(3, dtype=pos.dtype, device=pos.device).repeat(num_graphs, 1)
        last[:, 2] = det
        frames = frames * last[None, :, None, :]
    return center, frames, degenerate


class FrameAveraging(nn.Module):
    r"""Average a backbone over PCA frames.

    For each frame :math:`F_{k,b}` (see :func:`pca_frames`) the backbone
    sees canonical coordinates :math:`(p - \mu_b) F_{k,b}` and vectors
    :math:`v F_{k,b}` (``data.vec``); its outputs are mapped back,

    .. math::
        s = \frac1K \sum_k s_k, \qquad v = \frac1K \sum_k v_k F_{k,b}^\top,

    which is exactly invariant (scalars) and equivariant (vectors) for any
    backbone, including a grid-mode :class:`~graphequi.nn.Ponita` that is
    only approximately equivariant on its own. Gradients flow through the
    frames (forces of an averaged energy are equivariant too).

    Degenerate spectra (two eigenvalues within ``degenerate_tol`` relative
    gap, e.g. graphs of 1-2 points, collinear or highly symmetric clouds)
    have no unique frame. Fallback: the eigenvectors returned by
    ``torch.linalg.eigh`` are used as they are, so the output is still
    well defined and finite in the forward pass, but exact equivariance then holds only up to the
    arbitrary basis chosen inside the degenerate eigenspace (and the
    gradient through ``eigh`` may be unbounded). With ``check_degenerate``
    a :class:`UserWarning` names the graphs (a host sync; turn it off under
    ``torch.compile``).

    Args:
        backbone: maps a ``Data``/``Batch`` with ``pos`` (and ``vec``) to a
            :class:`~graphequi.nn.PointCloudOutput` (``scalar`` and/or
            ``vector`` at node level ``[N, ...]`` or graph level ``[B, ...]``).
        group: ``"E3"`` (8 frames), ``"SE3"`` (4 proper frames; reflections
            are not averaged out, so chiral outputs survive) or ``"O3"`` (8
            frames, no centering).
        check_degenerate: warn on degenerate spectra.
        degenerate_tol: relative eigenvalue gap of a degenerate spectrum.
        stochastic: in training mode, run the backbone once, on one frame per
            graph drawn uniformly at random (stochastic frame averaging, as in
            FAENet, Duval et al. 2023): :math:`K` times cheaper per step, an
            unbiased estimate of the average, and an augmentation over the
            frame choices. In eval mode every frame is averaged, so the
            output is exact as above. The draw uses torch's global generator.
    """

    def __init__(self, backbone: nn.Module, group: str = "E3", check_degenerate: bool = True,
                 degenerate_tol: float = 1e-6, stochastic: bool = False):
        super().__init__()
        if group not in ("E3", "SE3", "O3"):
            raise ValueError(f"group must be 'E3', 'SE3' or 'O3', got {group!r}")
        self.backbone, self.group = backbone, group
        self.check_degenerate, self.degenerate_tol = check_degenerate, degenerate_tol
        self.stochastic = stochastic

    def reset_parameters(self):
        if hasattr(self.backbone, "reset_parameters"):
            self.backbone.reset_parameters()

    def forward(self, data):
        pos = data.pos
        if pos is None or pos.dim() != 2 or pos.size(1) != 3:
            raise ValueError(f"FrameAveraging: data.pos must have shape [N, 3], "
                             f"got {None if pos is None else tuple(pos.shape)}")
        if pos.size(0) == 0:
            raise ValueError("FrameAveraging: the point cloud is empty")
        # eager mode also reads the values: NaN/inf would otherwise surface as an eigh
        # convergence error
        check_positions(pos, "data.pos", values=not torch.compiler.is_compiling())
        batch = getattr(data, "batch", None)
        num_graphs = 1 if batch is None else int(data.num_graphs)
        node_batch = batch if batch is not None else torch.zeros(pos.size(0), dtype=torch.long,
                                                                  device=pos.device)
        center, frames, degenerate = pca_frames(pos, batch, num_graphs, self.group, self.degenerate_tol)
        if self.check_degenerate and bool(degenerate.any()):
            bad = degenerate.nonzero().view(-1).tolist()
            warnings.warn(f"FrameAveraging: graphs {bad[:10]} have a (nearly) degenerate PCA spectrum; "
                          f"their frames are not unique and the output is only approximately "
                          f"{'invariant' if self.group != 'SE3' else 'SE(3)-invariant'}", UserWarning)
        centered = pos - center.index_select(0, node_batch)
        vec = getattr(data, "vec", None)
        if self.stochastic and self.training:
            # one frame per graph: frames[k_b, b] for a uniform k_b
            choice = torch.randint(frames.size(0), (frames.size(1),), device=frames.device)
            frames = frames[choice, torch.arange(frames.size(1), device=frames.device)].unsqueeze(0)
        scalars, vectors = [], []
        for frame in frames:                                                    # [B, 3, 3]
            f_node = frame.index_select(0, node_batch)                          # [N, 3, 3]
            moved = copy.copy(data)
            moved.pos = torch.einsum("nd,nde->ne", centered, f_node)
            if vec is not None:
                moved.vec = torch.einsum("nvd,nde->nve", vec.to(pos.dtype), f_node)
            out = self.backbone(moved)
            scalars.append(out.scalar)
            if out.vector is not None:
                rows = out.vector.size(0)
                f_rows = f_node if rows == pos.size(0) else frame
                if f_rows.size(0) != rows:
                    raise ValueError(f"FrameAveraging: vector output has {rows} rows, neither "
                                     f"{pos.size(0)} nodes nor {num_graphs} graphs")
                vectors.append(torch.einsum("nve,nde->nvd", out.vector, f_rows))
        scalar = None if scalars[0] is None else torch.stack(scalars).mean(0)
        vector = torch.stack(vectors).mean(0) if vectors else None
        return type(out)(scalar, vector)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.backbone!r}, group={self.group!r}"
                + (", stochastic=True" if self.stochastic else "") + ")")

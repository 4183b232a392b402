"""Frame averaging: exact symmetry for any backbone (grid PONITA, and a plain
MLP on coordinates that has no symmetry at all), forces, degenerate spectra."""
import warnings

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from graphequi.nn import FrameAveraging, PointCloudOutput, energy_and_forces, pca_frames
from graphequi.testing import (assert_e3_equivariant, assert_gradcheck, assert_permutation_equivariant,
                               random_rotation)

from point_cloud_helpers import NODE_ATTRS, cloud, model, points_of, with_points


class CoordinateMLP(nn.Module):
    """No symmetry at all: reads raw coordinates and vectors."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.mlp = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 4)).double()

    def forward(self, data):
        h = self.mlp(torch.cat([data.pos, data.vec[:, 0]], -1))
        return PointCloudOutput(h[:, :1], h[:, 1:].unsqueeze(1))


def error(fn, pos, output, reflect):
    ref = fn(pos)
    rot = random_rotation(torch.Generator().manual_seed(5), reflect=reflect)
    got = fn(pos @ rot.T + 0.3)
    return float((got - (ref if output == "invariant" else ref @ rot.T)).detach().abs().max())


@pytest.mark.parametrize("group", ["E3", "O3"])
def test_fa_makes_any_backbone_exact(group):
    data = cloud(7)
    fa = FrameAveraging(CoordinateMLP(), group=group)
    plain = CoordinateMLP()
    pts = points_of(data)
    # the backbone alone is far from invariant; averaged it is exact
    assert error(lambda p: plain(with_points(data, p)).scalar, pts, "invariant", False) > 1e-3
    if group == "E3":
        assert_e3_equivariant(lambda p: fa(with_points(data, p)).scalar, pts, trials=4)
        assert_e3_equivariant(lambda p: fa(with_points(data, p)).vector[:, 0], pts, output="vector", trials=4)
    else:
        # O(3): rotations and reflections about the origin, no translation
        for reflect in (False, True):
            rot = random_rotation(torch.Generator().manual_seed(3), reflect=reflect)
            moved = with_points(data, pts @ rot.T)
            out, ref = fa(moved), fa(data)
            torch.testing.assert_close(out.scalar, ref.scalar)
            torch.testing.assert_close(out.vector, ref.vector @ rot.T)


class Counting(nn.Module):
    """Wraps a backbone and records each input it sees."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone, self.seen = backbone, []

    def forward(self, data):
        self.seen.append(data.pos.detach().clone())
        return self.backbone(data)


def test_stochastic_fa_draws_one_frame_per_graph_in_training_and_is_exact_in_eval():
    graphs = [cloud(5 + i, seed=i) for i in range(4)]
    batch = Batch.from_data_list(graphs)
    exact = FrameAveraging(CoordinateMLP())
    stochastic = FrameAveraging(Counting(CoordinateMLP()), stochastic=True)
    assert "stochastic=True" in repr(stochastic)
    torch.testing.assert_close(stochastic.eval()(batch).scalar, exact.eval()(batch).scalar, atol=0, rtol=0)
    stochastic.train()
    stochastic.backbone.seen.clear()
    torch.manual_seed(1)
    out = stochastic(batch)
    assert len(stochastic.backbone.seen) == 1  # one backbone pass, not eight
    # every graph's output is the backbone's on one of its own eight frames
    center, frames, _ = pca_frames(batch.pos, batch.batch, 4)
    centered = batch.pos - center[batch.batch]

    def on_frame(f):
        moved = batch.clone()
        moved.pos = torch.einsum("nd,nde->ne", centered, f[batch.batch])
        moved.vec = torch.einsum("nvd,nde->nve", batch.vec, f[batch.batch])
        return CoordinateMLP()(moved).scalar

    per_frame = torch.stack([on_frame(f) for f in frames])                        # [8, N, 1]
    for b in range(4):
        rows = batch.batch == b
        assert any(torch.allclose(per_frame[k, rows], out.scalar[rows]) for k in range(8)), \
            f"graph {b} got no frame's output"
    torch.manual_seed(1)
    torch.testing.assert_close(stochastic(batch).scalar, out.scalar, atol=0, rtol=0)  # seeded: reproducible


def test_fa_se3_keeps_chirality():
    data = cloud(7)
    fa = FrameAveraging(CoordinateMLP(), group="SE3")
    pts = points_of(data)
    assert_e3_equivariant(lambda p: fa(with_points(data, p)).scalar, pts, reflections=False, trials=3)
    # a reflection is not averaged out by the 4 proper frames
    assert error(lambda p: fa(with_points(data, p)).scalar, pts, "invariant", True) > 1e-6
    assert pca_frames(data.pos, None, 1, "SE3")[1].shape == (4, 1, 3, 3)
    assert bool((torch.linalg.det(pca_frames(data.pos, None, 1, "SE3")[1]) > 0).all())


@pytest.mark.parametrize("num_ori", [4, 12])
def test_grid_ponita_approximate_alone_exact_with_fa(num_ori):
    data = cloud(7)
    net = model(num_ori, task_level="node")
    pts = points_of(data)
    alone = error(lambda p: net(with_points(data, p)).vector, pts, "vector", False)
    assert alone > 1e-8           # the grid breaks exact equivariance ...
    fa = FrameAveraging(net)
    assert_e3_equivariant(lambda p: fa(with_points(data, p)).scalar, pts, trials=4)
    assert_e3_equivariant(lambda p: fa(with_points(data, p)).vector[:, 0], pts, output="vector", trials=4)


def test_fa_forces_batching_permutation():
    graphs = [cloud(5, seed=1, vec=False), cloud(6, seed=2, vec=False)]
    net = model(6, in_vectors=0, out_vectors=0).eval()
    fa = FrameAveraging(net)
    data = graphs[0]
    assert_e3_equivariant(lambda p: energy_and_forces(fa, with_points(data, p))[1], data.pos,
                          output="vector", trials=2)
    batch = Batch.from_data_list(graphs)
    torch.testing.assert_close(fa(batch).scalar, torch.cat([fa(g).scalar for g in graphs]))
    assert_permutation_equivariant(lambda d: fa(d).scalar, batch, output="graph", node_attrs=NODE_ATTRS)


def test_fa_gradcheck():
    data = cloud(5, vec=False)
    net = model(4, in_vectors=0, out_vectors=0)
    net.blocks = net.blocks[:1]
    fa = FrameAveraging(net)
    assert_gradcheck(lambda p: fa(Data(pos=p, x=data.x, edge_index=data.edge_index)).scalar, data.pos)


def test_degenerate_spectrum_warns_and_bad_input():
    square = Data(pos=torch.tensor([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], dtype=torch.float64),
                  vec=torch.zeros(4, 1, 3, dtype=torch.float64))
    fa = FrameAveraging(CoordinateMLP())
    with pytest.warns(UserWarning, match="degenerate"):
        out = fa(square)
    assert torch.isfinite(out.scalar).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FrameAveraging(CoordinateMLP(), check_degenerate=False)(square)
        fa(cloud(6))
    with pytest.raises(ValueError, match="group"):
        FrameAveraging(CoordinateMLP(), group="SO2")
    with pytest.raises(ValueError, match="empty"):
        fa(Data(pos=torch.empty(0, 3), vec=torch.empty(0, 1, 3)))
    with pytest.raises(ValueError, match="pos"):
        fa(Data(pos=torch.zeros(3, 2)))
    with pytest.raises(TypeError, match="floating point"):
        fa(Data(pos=torch.zeros(3, 3, dtype=torch.long)))
    for bad in (float("nan"), float("inf")):  # named, not an eigh convergence error
        pos = cloud(6).pos.clone()
        pos[2, 1] = bad
        with pytest.raises(ValueError, match="data.pos contains NaN or infinite"):
            fa(Data(pos=pos, vec=torch.zeros(6, 1, 3)))

"""PONITA: the separable convolution against a dense loop, exact symmetry of
the distance and position-orientation modes, forces, batching, permutations,
gradients and bad input. (Frame averaging: test_nn_frame_averaging.py.)"""
import pytest
import torch
from torch_geometric.data import Batch, Data

from graphequi import ops
from graphequi.geometry import radius_graph
from graphequi.nn import Ponita, PonitaConv, build_ponita, energy_and_forces
from graphequi.nn.ponita import csr_adjacency
from graphequi.testing import (assert_compiles, assert_e3_equivariant, assert_gradcheck,
                               assert_permutation_equivariant)
from graphequi.transforms import ValidateGraph

from point_cloud_helpers import NODE_ATTRS, cloud, model, points_of, with_points


def test_conv_matches_dense_loop():
    torch.manual_seed(0)
    conv = PonitaConv(3, 4).double()
    gen = torch.Generator().manual_seed(1)
    n, o = 4, 5
    x = torch.randn(n, o, 3, generator=gen, dtype=torch.float64)
    ei = torch.tensor([[1, 2, 3, 0, 0], [0, 0, 0, 1, 3]])
    sb = torch.randn(5, o, 4, generator=gen, dtype=torch.float64)
    fb = torch.randn(o, o, 4, generator=gen, dtype=torch.float64)
    w = torch.rand(5, generator=gen, dtype=torch.float64)
    got = conv(x, ei, sb, fb, w)
    ws, wf = conv.spatial.weight.T, conv.fiber_kernel.weight.T
    ref = torch.zeros(n, o, 3, dtype=torch.float64)
    for i in range(n):
        for oo in range(o):
            for c in range(3):
                y = [sum(w[e] * (sb[e, l] @ ws[:, c]) * x[ei[0, e], l, c]
                         for e in range(5) if ei[1, e] == i) for l in range(o)]
                ref[i, oo, c] = sum((fb[oo, l] @ wf[:, c]) * y[l] for l in range(o)) / o + conv.bias[c]
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("num_ori", [0, -1])
@pytest.mark.parametrize("level", ["graph", "node"])
def test_exact_invariance_distance_and_po_modes(num_ori, level):
    data = cloud(vec=num_ori != 0)
    net = model(num_ori, task_level=level)
    assert_e3_equivariant(lambda p: net(with_points(data, p)).scalar, points_of(data), trials=4)


def test_po_mode_vectors_equivariant():
    data = cloud()
    net = model(-1, task_level="node")
    assert_e3_equivariant(lambda p: net(with_points(data, p)).vector[:, 0], points_of(data),
                          output="vector", trials=4)


@pytest.mark.parametrize("num_ori", [0, -1])
def test_forces_equivariant(num_ori):
    data = cloud(vec=False)
    net = model(num_ori, in_vectors=0, out_vectors=0, radius=3.0).eval()
    assert_e3_equivariant(lambda p: energy_and_forces(net, with_points(data, p))[0], data.pos, trials=2)
    assert_e3_equivariant(lambda p: energy_and_forces(net, with_points(data, p))[1], data.pos,
                          output="vector", trials=2)


def test_forces_are_minus_gradient():
    data = cloud(4, vec=False)
    net = model(0)
    energy, forces = energy_and_forces(net, data)
    pos = data.pos.clone().requires_grad_(True)
    moved = data.clone()
    moved.pos = pos
    (g,) = torch.autograd.grad(net(moved).scalar.sum(), pos)
    torch.testing.assert_close(forces, -g)
    assert energy.shape == (1,) and not data.pos.requires_grad


@pytest.mark.parametrize("num_ori", [0, -1, 6])
def test_batching_and_permutations(num_ori):
    graphs = [cloud(5, seed=1, vec=num_ori != 0), cloud(3, seed=2, vec=num_ori != 0)]
    for g in graphs:
        g.edge_index = radius_graph(g.pos, 2.5)
    batch = Batch.from_data_list(graphs)
    net = model(num_ori, radius=2.5)
    torch.testing.assert_close(net(batch).scalar, torch.cat([net(g).scalar for g in graphs]))
    assert_permutation_equivariant(lambda d: net(d).scalar, batch, output="graph", node_attrs=NODE_ATTRS)
    node = model(num_ori, task_level="node")
    assert_permutation_equivariant(lambda d: node(d).scalar, batch, output="node", node_attrs=NODE_ATTRS)
    if num_ori != 0:
        assert_permutation_equivariant(lambda d: node(d).vector, batch, output="node",
                                       node_attrs=NODE_ATTRS)


@pytest.mark.parametrize("num_ori", [0, -1, 4])
def test_gradcheck(num_ori):
    data = cloud(4, vec=num_ori != 0)
    net = model(num_ori, radius=4.0)
    net.blocks = net.blocks[:1]
    assert_gradcheck(lambda p, x: net(Data(pos=p, x=x, vec=data.get("vec"), edge_index=data.edge_index))
                     .scalar, data.pos, data.x)


def test_isolated_node_and_two_runs_equal():
    data = cloud(4)
    data.edge_index = torch.tensor([[1, 2], [0, 0]])          # nodes 1..3 receive nothing
    net = model(-1, task_level="node")
    out = net(data)
    assert torch.isfinite(out.scalar).all()
    assert torch.equal(out.scalar[3], torch.zeros(1, dtype=torch.float64))  # documented: 0 without edges
    assert torch.equal(net(data).scalar, out.scalar)


def test_builder():
    task = type("T", (), {"train": [cloud()], "num_outputs": 3})()
    net = build_ponita(task, hidden=8, num_ori=4)
    assert (net.in_scalars, net.in_vectors, net.out_scalars, net.hidden) == (2, 1, 3, 8)
    assert net.double()(cloud()).scalar.shape == (1, 3)


def test_bad_input():
    data = cloud()
    with pytest.raises(ValueError, match="num_ori"):
        Ponita(2, 8, num_ori=-2)
    with pytest.raises(ValueError, match="radius"):
        Ponita(2, 8, radius=-1.0)
    with pytest.raises(ValueError, match="vectors"):
        Ponita(2, 8, num_ori=0, in_vectors=1)
    net = model(4)
    with pytest.raises(ValueError, match=r"data.x must have shape \[6, 2\]"):
        net(Data(pos=data.pos, x=data.x[:, :1], vec=data.vec, edge_index=data.edge_index))
    with pytest.raises(ValueError, match="data.vec"):
        net(Data(pos=data.pos, x=data.x, vec=data.vec[:, :, :2], edge_index=data.edge_index))
    with pytest.raises(ValueError, match="data.pos"):
        net(Data(pos=data.pos[:, :2], x=data.x, vec=data.vec, edge_index=data.edge_index))
    with pytest.raises(ValueError, match="edge_index"):
        net(Data(pos=data.pos, x=data.x, vec=data.vec))
    with pytest.raises(ValueError, match="basis"):
        PonitaConv(4, 3)(torch.randn(2, 3, 4), torch.tensor([[0], [1]]), torch.randn(2, 3, 3))
    # value checks happen where data enters
    bad = data.clone()
    bad.pos[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ValidateGraph()(bad)
    with pytest.raises(ValueError, match="NaN"):
        radius_graph(bad.pos, 1.0)
    with pytest.raises(ValueError, match="same position"):  # a self-loop has no orientation
        Ponita(2, 8, num_layers=1, num_ori=-1)(Data(pos=data.pos, x=data.x,
                                                     edge_index=torch.tensor([[0, 1], [0, 0]])))
    # and again by the eager model, in every mode (a NaN distance once read as 0)
    for num_ori in (0, -1, 4):
        with pytest.raises(ValueError, match="data.pos contains NaN"):
            Ponita(2, 8, num_layers=1, num_ori=num_ori)(Data(pos=bad.pos, x=bad.x, edge_index=bad.edge_index))
    empty = Data(pos=torch.empty(0, 3), x=torch.empty(0, 2), edge_index=torch.empty(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="0 nodes"):
        ValidateGraph()(empty)


def test_conv_compiles_fullgraph():
    torch.manual_seed(0)
    conv = PonitaConv(4, 3)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 6, 4, generator=gen)
    ei = torch.tensor([[1, 2, 3, 4, 0], [0, 0, 1, 2, 4]])
    assert_compiles(conv, x, ei, torch.randn(5, 6, 3, generator=gen), torch.randn(6, 6, 3, generator=gen))


@pytest.mark.parametrize("aggr", ["sum", "mean"])
def test_conv_fused_csr_path_equals_the_message_path(aggr):
    """The CSR path (spmm with the kernel as per-edge-and-feature value) gives
    the same outputs and gradients as gathering the messages, for unsorted
    edges, duplicate edges, an isolated node and edge weights."""
    gen = torch.Generator().manual_seed(3)
    conv = PonitaConv(4, 3, aggr=aggr).double()
    num_nodes, num_edges = 7, 19
    ei = torch.randint(0, num_nodes - 1, (2, num_edges), generator=gen)  # node 6 is isolated
    ei[:, 1] = ei[:, 0]
    x = torch.randn(num_nodes, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    basis = torch.randn(num_edges, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    fiber = torch.randn(5, 5, 3, generator=gen, dtype=torch.float64)
    weight = torch.rand(num_edges, generator=gen, dtype=torch.float64)
    ref = conv(x, ei, basis, fiber, weight)
    csr, (basis_csr, weight_csr) = csr_adjacency(ei, num_nodes, basis, weight)
    got = conv(x, csr, basis_csr, fiber, weight_csr)
    torch.testing.assert_close(got, ref)
    grads_ref = torch.autograd.grad(ref.square().sum(), (x, basis, *conv.parameters()))
    grads_got = torch.autograd.grad(got.square().sum(), (x, basis, *conv.parameters()))
    for a, b in zip(grads_got, grads_ref):
        torch.testing.assert_close(a, b)
    assert_gradcheck(lambda a, b: conv(a, csr, *csr_adjacency(ei, num_nodes, b)[1], fiber, weight_csr), x, basis)
    with pytest.raises(ValueError, match="the CSR has 7 rows but x has 6 nodes"):
        conv(x[:6], csr, basis_csr, fiber)
    with pytest.raises(ValueError, match=r"spatial_basis must have shape \[E=19, O, B\]"):
        conv(x, csr, basis[:3], fiber)


def test_conv_compiles_fullgraph_on_a_csr():
    conv = PonitaConv(4, 3)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 6, 4, generator=gen)
    csr = ops.to_csr(torch.tensor([[1, 2, 3, 4, 0], [0, 0, 1, 2, 4]]), 5)
    assert_compiles(lambda a, b, f: conv(a, csr, b, f), x, torch.randn(5, 6, 3, generator=gen),
                    torch.randn(6, 6, 3, generator=gen))


@pytest.mark.parametrize("num_ori", [0, 6])
def test_edge_scalars_enter_the_kernel(num_ori):
    """``edge_attr`` invariants (e.g. charge products) change the output,
    keep distance mode exactly invariant, and permute with the edges."""
    data = cloud(vec=num_ori != 0)
    gen = torch.Generator().manual_seed(3)
    data.edge_attr = torch.randn(data.edge_index.size(1), 2, generator=gen, dtype=torch.float64)
    net = model(num_ori, edge_scalars=2)
    out = net(data).scalar
    other = data.clone()
    other.edge_attr = other.edge_attr.flip(0)
    assert not torch.allclose(out, net(other).scalar)
    if num_ori == 0:
        assert_e3_equivariant(lambda p: net(with_points(data, p)).scalar, points_of(data), trials=3)
    batch = Batch.from_data_list([data, data])
    assert_permutation_equivariant(lambda d: net(d).scalar, batch, output="graph", node_attrs=NODE_ATTRS)
    with pytest.raises(ValueError, match=r"data.edge_attr must have shape \[30, 2\]"):
        bad = data.clone()
        bad.edge_attr = data.edge_attr[:, :1]
        net(bad)
    with pytest.raises(ValueError, match="edge_scalars"):
        Ponita(2, 8, num_ori=-1, edge_scalars=1)

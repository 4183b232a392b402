"""Point-cloud transforms: graphs, lifting, bundle attributes, cutoff."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from graphequi.geometry import (distance, fibonacci_sphere, fully_connected_graph, polynomial_cutoff,
                                position_orientation_invariants, radius_graph)
from graphequi.testing import random_rotation
from graphequi.transforms import (BundleEdgeAttributes, FullyConnected, PolynomialCutoff,
                                  PositionOrientationGraph, RadiusGraph)


def _data(n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Data(pos=torch.randn(n, 3, generator=gen, dtype=torch.float64),
                x=torch.randn(n, 2, generator=gen, dtype=torch.float64),
                y=torch.tensor([[1.5]]))


def test_radius_and_fully_connected():
    data = _data()
    data.edge_attr = torch.ones(3, 1)
    out = RadiusGraph(1.2, max_num_neighbors=4)(data)
    assert torch.equal(out.edge_index, radius_graph(data.pos, 1.2, max_num_neighbors=4))
    assert "edge_attr" not in out and "edge_attr" in data
    assert torch.equal(FullyConnected()(data).edge_index, fully_connected_graph(8))
    with pytest.raises(ValueError, match="r must be"):
        RadiusGraph(-0.5)
    with pytest.raises(ValueError, match="pos"):
        RadiusGraph(1.0)(Data(x=torch.ones(3, 1)))


def test_position_orientation_graph_and_batching():
    data = FullyConnected()(_data(5))
    lifted = PositionOrientationGraph()(data)
    ei = data.edge_index
    assert lifted.num_nodes == ei.size(1)
    assert torch.equal(lifted.pos, data.pos[ei[1]])
    rel = data.pos[ei[0]] - data.pos[ei[1]]
    assert torch.allclose(lifted.ori, rel / rel.norm(dim=-1, keepdim=True))
    assert torch.equal(lifted.x, data.x[ei[1]])
    # collating two lifted graphs offsets base_index by the base node count
    other = PositionOrientationGraph()(FullyConnected()(_data(3, seed=1)))
    batch = Batch.from_data_list([lifted, other])
    assert torch.equal(batch.base_index[lifted.num_nodes:], other.base_index + 5)
    assert int(batch.edge_index.max()) < batch.num_nodes
    # the (a, b, c) invariants of the lifted cloud are E(3)-invariant
    attrs = BundleEdgeAttributes(-1)(lifted).edge_attr
    rot = random_rotation(torch.Generator().manual_seed(0), reflect=True)
    moved = data.clone()
    moved.pos = data.pos @ rot.T + 1.0
    attrs2 = BundleEdgeAttributes(-1)(PositionOrientationGraph()(moved)).edge_attr
    assert torch.allclose(attrs, attrs2, atol=1e-12)
    assert torch.allclose(attrs, position_orientation_invariants(lifted.pos, lifted.ori, lifted.edge_index))
    # an edge without a direction (duplicate points, a self-loop) has no orientation
    dup = data.clone()
    dup.pos[3] = dup.pos[1]
    with pytest.raises(ValueError, match="same position"):
        PositionOrientationGraph()(dup)
    with pytest.raises(ValueError, match=r"edge 0 \(2 -> 2\) joins two points"):
        PositionOrientationGraph()(Data(pos=data.pos, edge_index=torch.tensor([[2, 0], [2, 1]])))


def test_bundle_attributes_modes():
    data = FullyConnected()(_data(4))
    assert torch.allclose(BundleEdgeAttributes(0)(data).edge_attr, distance(data.pos, data.edge_index))
    out = BundleEdgeAttributes(7)(data)
    assert out.edge_attr.shape == (12, 7, 2) and out.fiber_attr.shape == (1, 7, 7, 1)
    grid = fibonacci_sphere(7, dtype=torch.float64)
    assert torch.allclose(out.fiber_attr[0, :, :, 0], grid @ grid.T)
    with pytest.raises(ValueError, match="ori"):
        BundleEdgeAttributes(-1)(data)
    with pytest.raises(ValueError, match="num_ori"):
        BundleEdgeAttributes(-3)


def test_polynomial_cutoff_transform():
    data = RadiusGraph(1.5)(_data())
    w = PolynomialCutoff(1.5, p=4)(data).edge_weight
    assert torch.allclose(w, polynomial_cutoff(distance(data.pos, data.edge_index)[:, 0], 1.5, 4))
    assert bool(((w > 0) & (w <= 1)).all())

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import from_networkx, to_dense_adj

from graphequi.nn import PolyGIN, PolyGINE
from graphequi.testing import assert_permutation_equivariant


def triangle_features(data):
    """Node: triangles through v; edge: triangles through (u, v) -- exact
    equivariant polynomial features computed densely (A^3 diagonal / 2, (A^2 * A))."""
    data = data.clone()
    a = to_dense_adj(data.edge_index, max_num_nodes=data.num_nodes)[0]
    a2 = a @ a
    data.poly_x = torch.diagonal(a2 @ a).unsqueeze(-1) / 2
    data.poly_edge_attr = a2[data.edge_index[0], data.edge_index[1]].unsqueeze(-1)
    return data


def graph(n, p, seed):
    data = from_networkx(nx.gnp_random_graph(n, p, seed=seed))
    data.num_nodes = n
    gen = torch.Generator().manual_seed(seed)
    data.x = torch.randint(4, (n, 1), generator=gen)
    data.edge_attr = torch.ones(data.edge_index.size(1), dtype=torch.long)
    return triangle_features(data)


@pytest.fixture
def batch():
    return Batch.from_data_list([graph(n, 0.5, s) for s, n in enumerate([5, 8, 3, 6])])


MODELS = {
    "gin": lambda: PolyGIN(2, hidden_channels=16, num_layers=3, node_vocab=4, poly_channels=1),
    "gine": lambda: PolyGINE(2, hidden_channels=16, num_layers=3, node_vocab=4, edge_vocab=2,
                             poly_channels=1, poly_edge_channels=1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_poly_gin_is_permutation_invariant(name, batch):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    assert_permutation_equivariant(model, batch, output="graph")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_poly_gin_same_output_alone_and_in_batch(name, batch):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    alone = torch.cat([model(Batch.from_data_list([g])) for g in batch.to_data_list()])
    torch.testing.assert_close(model(batch), alone, atol=1e-5, rtol=1e-5)


def test_polynomial_features_add_expressivity():
    # 1-WL cannot tell C6 from two triangles; a triangle-count node feature can.
    c6 = triangle_features(from_networkx(nx.cycle_graph(6)))
    tt = triangle_features(from_networkx(nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))))
    pair = Batch.from_data_list([c6, tt])
    torch.manual_seed(0)
    plain = PolyGIN(1, 8, 3, dropout=0.0, pool="sum").double().eval()
    out = plain(pair)
    torch.testing.assert_close(out[0], out[1])
    torch.manual_seed(0)
    poly = PolyGIN(1, 8, 3, poly_channels=1, dropout=0.0, pool="sum").double().eval()
    out = poly(pair)
    assert (out[0] - out[1]).abs().item() > 1e-6


def test_poly_gin_reset_parameters_and_repr():
    torch.manual_seed(0)
    model = MODELS["gine"]()
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert sum(not torch.equal(a, b) for a, b in zip(before, model.parameters())) > len(before) // 2
    assert repr(model).startswith("PolyGINE(") and "edge_dim=17" in repr(model)


def test_poly_gin_bad_input_raises(batch):
    gin, gine = MODELS["gin"]().eval(), MODELS["gine"]().eval()
    d = batch.clone()
    d.poly_x = d.poly_x[:-1]
    with pytest.raises(ValueError, match="poly_x"):
        gin(d)
    d = batch.clone()
    d.poly_x = torch.full_like(d.poly_x, float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        gin(d)
    d = batch.clone()
    del d.poly_edge_attr
    with pytest.raises(ValueError, match="PolynomialFeatures"):
        gine(d)
    d = batch.clone()
    d.x = d.x + 4
    with pytest.raises(ValueError, match="outside"):
        gin(d)
    d = batch.clone()
    d.edge_index = d.edge_index + 1000
    with pytest.raises(ValueError, match="edge_index"):
        gin(d)
    with pytest.raises(ValueError, match="PolyGINE"):
        PolyGIN(1, edge_vocab=3)
    with pytest.raises(ValueError, match="needs edge features"):
        PolyGINE(1)

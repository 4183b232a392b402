import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv as PyGGINConv
from torch_geometric.nn import GINEConv as PyGGINEConv
from torch_geometric.utils import from_networkx, to_dense_adj

from graphequi.nn import PolyGIN, PolyGINE
from graphequi import ops
from graphequi.nn.aggr import LCMAggregation
from graphequi.nn.conv import GINConv, GINEConv
from graphequi.testing import (assert_compiles, assert_compiles_once, assert_gradcheck,
                               assert_permutation_equivariant)
from graphequi.transforms import ValidateGraph


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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_graph_with_a_batch_vector_but_no_ptr_pools_per_graph(name, batch):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    plain = Data(**{k: batch[k] for k in batch.keys() if k != "ptr"})
    assert "ptr" not in plain and "batch" in plain
    torch.testing.assert_close(model(plain), model(batch), atol=0, rtol=0)


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
    with pytest.raises(ValueError, match="poly_x contains NaN"):  # checked where data enters
        ValidateGraph()(d)
    d = batch.clone()
    del d.poly_edge_attr
    with pytest.raises(ValueError, match="PolynomialFeatures"):
        gine(d)
    d = batch.clone()
    d.x = d.x + 4
    with pytest.raises(ValueError, match="outside"):
        gin(d)
    for model in (gin, gine):
        for shift in (1000, -1000):
            d = batch.clone()
            d.edge_index = d.edge_index + shift
            with pytest.raises((IndexError, ValueError), match="index|dim_size"):  # by the kernels
                model(d)
            with pytest.raises(IndexError, match="edge_index contains"):
                ValidateGraph()(d)
    d = batch.clone()
    d.edge_index = d.edge_index.float()
    with pytest.raises(TypeError, match="integer"):
        gin(d)
    d.edge_index = batch.edge_index[0]
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        gin(d)
    empty = Data(x=torch.zeros(0, 1, dtype=torch.long), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, dtype=torch.long), poly_x=torch.zeros(0, 1),
                 poly_edge_attr=torch.zeros(0, 1), num_nodes=0)
    for model in (gin, gine):
        with pytest.raises(ValueError, match="0 nodes"):
            model(empty)
    with pytest.raises(ValueError, match="0 nodes"):
        ValidateGraph()(empty)
    with pytest.raises(ValueError, match="graph 1 of the batch has 0 nodes"):
        ValidateGraph()(Batch.from_data_list([graph(4, 0.5, 0), empty, graph(3, 0.5, 1)]))
    for model in (gin, gine):  # the eager model checks a batch too
        with pytest.raises(ValueError, match="empty graph .* at position 1 of the batch"):
            model(Batch.from_data_list([graph(4, 0.5, 0), empty, graph(3, 0.5, 1)]))
    with pytest.raises(ValueError, match="PolyGINE"):
        PolyGIN(1, edge_vocab=3)
    with pytest.raises(ValueError, match="needs edge features"):
        PolyGINE(1)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min"])
def test_fused_csr_path_equals_the_edge_index_path(batch, aggr):
    torch.manual_seed(0)
    fused = PolyGIN(2, 16, 3, node_vocab=4, poly_channels=1, aggr=aggr).double().eval()
    plain = PolyGIN(2, 16, 3, node_vocab=4, poly_channels=1, aggr=aggr, fused=False).double().eval()
    plain.load_state_dict(fused.state_dict())
    batch.poly_x = batch.poly_x.double()
    torch.testing.assert_close(fused(batch), plain(batch))
    with_adj = batch.clone()
    with_adj.adj_t = ops.to_csr(batch.edge_index, batch.num_nodes)
    torch.testing.assert_close(plain(with_adj), plain(batch))  # a given adj_t is used as it is


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_gin_conv_equals_pyg_on_every_adjacency_form(aggr):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, 10, (2, 30), generator=gen)
    torch.manual_seed(0)
    ours = GINConv(torch.nn.Linear(4, 5), train_eps=True, aggr=aggr).double()
    torch.manual_seed(0)
    ref = PyGGINConv(torch.nn.Linear(4, 5), train_eps=True, aggr=aggr).double()
    expected = ref(x, edge_index)
    from torch_geometric import EdgeIndex
    forms = [edge_index, ops.to_csr(edge_index, 10),
             EdgeIndex(edge_index, sparse_size=(10, 10)).sort_by("col")[0],
             torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(30, dtype=torch.float64),
                                     (10, 10)).coalesce().to_sparse_csr()]
    for adj in forms[:3] + ([forms[3]] if aggr == "sum" else []):  # coalescing sums duplicate edges
        torch.testing.assert_close(ours(x, adj), expected, msg=lambda m: f"{type(adj).__name__}: {m}")
    assert_gradcheck(lambda v: ours(v, forms[1]), x)


def test_gine_conv_equals_pyg():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, 10, (2, 30), generator=gen)
    edge_attr = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    ours = GINEConv(torch.nn.Sequential(torch.nn.Linear(4, 5)), edge_dim=3).double()
    torch.manual_seed(0)
    ref = PyGGINEConv(torch.nn.Sequential(torch.nn.Linear(4, 5)), edge_dim=3).double()
    ours.lin.load_state_dict(ref.lin.state_dict())
    torch.testing.assert_close(ours(x, edge_index, edge_attr), ref(x, edge_index, edge_attr))
    assert_gradcheck(lambda v, e: ours(v, edge_index, e), x, edge_attr)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_poly_gin_compiles_once_without_graph_breaks_for_three_batch_sizes(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    batches = [Batch.from_data_list([graph(n, 0.5, s) for s, n in enumerate(sizes)])
               for sizes in ([5, 8, 3], [6, 4, 7, 5, 9], [4, 4])]
    for data in batches:
        assert_compiles(model, data, dynamic=True)
    assert_compiles_once(model, [(data,) for data in batches], atol=1e-5, rtol=1e-4)


LCM_MODELS = {
    "gin-lcm": lambda: PolyGIN(2, hidden_channels=8, num_layers=2, node_vocab=4, poly_channels=1,
                               aggr=LCMAggregation.square(cell="gru")),
    "gine-lcm": lambda: PolyGINE(2, hidden_channels=8, num_layers=2, node_vocab=4, edge_vocab=2,
                                 poly_channels=1, aggr=LCMAggregation.square(cell="mlp")),
}


@pytest.mark.parametrize("name", sorted(LCM_MODELS))
def test_poly_gin_with_lcm_aggregation_per_layer(name, batch):
    torch.manual_seed(0)
    model = LCM_MODELS[name]().eval()
    aggrs = [conv.aggr_module for conv in model.convs]
    assert all(isinstance(a, LCMAggregation) for a in aggrs) and aggrs[0] is not aggrs[1]
    assert aggrs[1].in_channels == 8 and "LCMAggregation.square(" in repr(model)
    assert not model.fused
    assert_permutation_equivariant(model, batch, output="graph")
    alone = torch.cat([model(Batch.from_data_list([g])) for g in batch.to_data_list()])
    torch.testing.assert_close(model(batch), alone, atol=1e-5, rtol=1e-5)


def test_poly_gin_rejects_a_shared_aggregation_instance():
    with pytest.raises(TypeError, match="factory"):
        PolyGIN(1, hidden_channels=8, num_layers=2, aggr=LCMAggregation(8, 8))

"""PolynomialFeatures: agreement with direct evaluation, batched == per graph,
DataLoader collation, equivariance, bad inputs."""
import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from torch_geometric.utils import from_networkx, to_dense_adj

from graphequi.poly import Multigraph, evaluate_each, select
from graphequi.testing import assert_permutation_equivariant
from graphequi.transforms import PolynomialFeatures

TRIANGLE = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
MIXED = (TRIANGLE, Multigraph(3, [(0, 1), (1, 2), (2, 0)], marked=(0,)),
         Multigraph(3, [(0, 1), (1, 2)], marked=(0, 2)), Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)], marked=(0, 1)))


def random_graphs(sizes, p=0.45, seed=0):
    out = []
    for i, n in enumerate(sizes):
        d = from_networkx(nx.gnp_random_graph(n, p, seed=seed + i))
        d.num_nodes = n
        d.x = torch.randn(n, 2)
        out.append(d)
    return out


def dense_reference(data, polys, level, normalize):
    """Features from evaluate_each on the unpadded adjacency, converted by hand."""
    n = data.num_nodes
    A = to_dense_adj(data.edge_index, max_num_nodes=n)[0].double()
    cols = []
    for poly, val in zip(polys, evaluate_each(polys, A)):
        if normalize:
            val = val / n ** (poly.num_nodes - poly.num_marks)
        m = poly.num_marks
        if level == "node":
            cols.append(val.expand(n) if m == 0 else (val if m == 1 else val.sum(1)))
        else:
            if m == 0:
                pair = val.expand(n, n)
            elif m == 1:
                pair = torch.diag(val) if level == "pair" else val[:, None] + val[None, :]
            else:
                pair = val
            if level == "edge":
                cols.append(pair[data.edge_index[0], data.edge_index[1]])
            else:
                cols.append(pair.reshape(-1))
    return torch.stack(cols, -1).float()


@pytest.mark.parametrize("level", ["node", "edge", "pair"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_direct_evaluation(level, normalize):
    data = random_graphs([7])[0]
    out = PolynomialFeatures(MIXED, level=level, normalize=normalize)(data)
    key = {"node": "poly_x", "edge": "poly_edge_attr", "pair": "poly_pair_attr"}[level]
    torch.testing.assert_close(out[key], dense_reference(data, MIXED, level, normalize))
    assert not hasattr(data, key), "the input must not be modified"
    if level == "pair":
        n = data.num_nodes
        assert out.pair_index.shape == (2, n * n)
        assert torch.equal(out.pair_index[0], torch.arange(n).repeat_interleave(n))


def test_triangle_counts_unnormalized():
    data = random_graphs([9], p=0.5, seed=3)[0]
    G = nx.Graph(data.edge_index.t().tolist())
    G.add_nodes_from(range(9))
    out = PolynomialFeatures([MIXED[1]], level="node", normalize=False)(data)
    expected = torch.tensor([2.0 * nx.triangles(G, v) for v in range(9)])
    torch.testing.assert_close(out.poly_x[:, 0], expected)


@pytest.mark.parametrize("level", ["node", "edge", "pair"])
def test_batch_and_dataset_equal_per_graph(level):
    graphs = random_graphs([5, 8, 3, 8, 6, 1])
    transform = PolynomialFeatures("ppgn++", level=level)
    key = {"node": "poly_x", "edge": "poly_edge_attr", "pair": "poly_pair_attr"}[level]
    single = [transform(g) for g in graphs]
    # a PyG Batch, evaluated as one padded batch
    batched = transform(Batch.from_data_list(graphs))
    torch.testing.assert_close(batched[key], torch.cat([s[key] for s in single]))
    # dataset-level application with size grouping and a small batch size
    grouped = transform.apply_to_dataset(graphs, batch_size=2, progress=False)
    for s, g in zip(single, grouped):
        torch.testing.assert_close(g[key], s[key])
        if level == "pair":
            assert torch.equal(g.pair_index, s.pair_index)


def test_dataloader_collation():
    graphs = random_graphs([4, 6, 5])
    pair = PolynomialFeatures(MIXED, level="pair")
    edge = PolynomialFeatures(MIXED, level="edge")
    node = PolynomialFeatures(MIXED, level="node")
    data = [node(edge(pair(g))) for g in graphs]
    batch = next(iter(DataLoader(data, batch_size=3)))
    assert batch.poly_x.shape == (15, 4)
    assert batch.poly_edge_attr.shape == (batch.edge_index.size(1), 4)
    assert batch.poly_pair_attr.shape == (16 + 36 + 25, 4)
    # pair_index is offset per graph, so a dense [B, n, n, k] tensor can be rebuilt
    dense = to_dense_adj(batch.pair_index, batch.batch, edge_attr=batch.poly_pair_attr)
    for b, g in enumerate(data):
        n = g.num_nodes
        torch.testing.assert_close(dense[b, :n, :n].reshape(n * n, -1), g.poly_pair_attr)
    # node features agree with the transform applied to the whole batch
    torch.testing.assert_close(node(Batch.from_data_list(graphs)).poly_x, batch.poly_x)


def test_node_features_are_permutation_equivariant():
    batch = Batch.from_data_list(random_graphs([6, 7]))
    transform = PolynomialFeatures(MIXED, level="node")
    assert_permutation_equivariant(lambda d: transform(d).poly_x, batch, output="node")


def test_edge_features_follow_edges_under_permutation():
    data = random_graphs([7], seed=5)[0]
    transform = PolynomialFeatures(MIXED, level="edge")
    assert_permutation_equivariant(lambda d: transform(d).poly_edge_attr, data, output="edge")


def test_pair_features_are_permutation_equivariant():
    data = random_graphs([6], seed=7)[0]
    transform = PolynomialFeatures(MIXED, level="pair")

    def dense(d):
        n = d.num_nodes
        return transform(d).poly_pair_attr.view(n, n, -1)

    assert_permutation_equivariant(dense, data, output="pair")


def test_ppgn_default_and_repr():
    t = PolynomialFeatures()
    assert t.num_features == len(select("ppgn++", 6)) == 12
    assert "ppgn++" in repr(t) and "level='node'" in repr(t)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="level"):
        PolynomialFeatures(level="graph")
    with pytest.raises(ValueError, match="unknown polynomial set"):
        PolynomialFeatures("gin++")
    with pytest.raises(ValueError, match="directed"):
        PolynomialFeatures([Multigraph(2, [(0, 1)], directed=True)])
    t = PolynomialFeatures(MIXED)
    with pytest.raises(ValueError, match="undirected"):
        t(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    with pytest.raises(IndexError, match="out of range for 2 nodes"):
        t(Data(edge_index=torch.tensor([[0, 3], [3, 0]]), num_nodes=2))
    with pytest.raises(IndexError, match="negative"):
        t(Data(edge_index=torch.tensor([[0, -1], [-1, 0]]), num_nodes=2))
    with pytest.raises(ValueError, match="without nodes"):
        t(Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0))
    with pytest.raises(TypeError, match="int64 or int32"):
        t(Data(edge_index=torch.zeros(2, 1), num_nodes=2))
    with pytest.raises(ValueError, match="batch_size"):
        t.apply_to_dataset([], batch_size=0)

import doctest

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data

import graphequi.transforms.ego_net_bags as ego_module
from graphequi.transforms import EgoNetBags, EgoNetData


def random_graph(n, p, seed, isolated=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=gen) < p
    mask = torch.triu(mask, diagonal=1)
    mask[n - isolated:] = False
    mask[:, n - isolated:] = False
    u, v = mask.nonzero().t()
    edge_index = torch.cat([torch.stack([u, v]), torch.stack([v, u])], dim=1)
    perm = torch.randperm(edge_index.size(1), generator=gen)
    x = torch.randn(n, 3, generator=gen)
    edge_attr = torch.randn(edge_index.size(1), 2, generator=gen)
    return Data(x=x, edge_index=edge_index[:, perm], edge_attr=edge_attr, num_nodes=n)


def nx_ego(data, k):
    g = nx.Graph()
    g.add_nodes_from(range(data.num_nodes))
    g.add_edges_from(data.edge_index.t().tolist())
    return [[r] + sorted(set(nx.single_source_shortest_path_length(g, r, cutoff=k)) - {r})
            for r in range(data.num_nodes)]


def test_doctests():
    assert doctest.testmod(ego_module, extraglobs={"torch": torch}).failed == 0


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_layout_matches_networkx(k, seed):
    data = random_graph(11, 0.25, seed, isolated=2)
    out = EgoNetBags(num_hops=k)(data)
    assert isinstance(out, EgoNetData)
    ego = nx_ego(data, k)
    assert out.ego_size.tolist() == [len(e) for e in ego]
    assert out.ego_node.tolist() == [u for e in ego for u in e]
    assert len(set(out.ego_size.tolist())) > 1  # mixed sizes
    # every local pair maps to its global pair; the pair list is exactly the covered pairs
    pairs = out.ego_pair_index.t().tolist()
    pos = 0
    for e in ego:
        for a in e:
            for b in e:
                assert pairs[out.ego_pair[pos]] == [a, b]
                pos += 1
    covered = sorted({(a, b) for e in ego for a in e for b in e})
    assert [tuple(p) for p in pairs] == covered
    assert torch.equal(out.ego_pair_index[:, out.ego_edge_pair], data.edge_index)
    assert out.ego_size[-2:].tolist() == [1, 1]  # isolated nodes: ego-net is the node itself


def test_batch_is_bags_of_disjoint_union():
    graphs = [random_graph(n, 0.3, s, isolated=1) for s, n in enumerate((6, 9, 4))]
    batch = Batch.from_data_list([EgoNetBags()(g) for g in graphs])
    union = Batch.from_data_list(graphs)
    whole = EgoNetBags()(Data(x=union.x, edge_index=union.edge_index, edge_attr=union.edge_attr,
                              num_nodes=union.num_nodes))
    for key in ("ego_size", "ego_node", "ego_pair", "ego_pair_index", "ego_edge_pair"):
        assert torch.equal(batch[key], whole[key]), key


def test_bad_input():
    with pytest.raises(ValueError, match="0 nodes"):
        EgoNetBags()(Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=0))
    with pytest.raises(IndexError, match="out of range"):
        EgoNetBags()(Data(edge_index=torch.tensor([[0], [3]]), num_nodes=2))
    with pytest.raises(ValueError, match="NaN"):
        EgoNetBags()(Data(x=torch.tensor([[float("nan")], [0.0]]), edge_index=torch.tensor([[0], [1]]),
                          num_nodes=2))
    with pytest.raises(ValueError, match="num_hops"):
        EgoNetBags(num_hops=0)
    with pytest.raises(ValueError, match="include_center"):
        EgoNetBags(include_center=False)
    batch = Batch.from_data_list([random_graph(4, 0.5, 0)])
    with pytest.raises(ValueError, match="single graph"):
        EgoNetBags()(batch)


def test_graph_without_edges():
    out = EgoNetBags()(Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=3))
    assert out.ego_size.tolist() == [1, 1, 1]
    assert out.ego_pair_index.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert out.ego_edge_pair.numel() == 0

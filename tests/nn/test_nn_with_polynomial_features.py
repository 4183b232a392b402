"""The models on the real ``PolynomialFeatures('ppgn++')`` inputs."""
import networkx as nx
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.utils import from_networkx

from graphequi.nn import PolyGIN, PolyGINE, PPGNPlusPlus
from graphequi.nn.ppgn import dense_pair_features
from graphequi.testing import assert_permutation_equivariant
from graphequi.transforms import PolynomialFeatures


def graphs():
    out = []
    for seed, n in enumerate([7, 5, 9]):
        data = from_networkx(nx.gnp_random_graph(n, 0.5, seed=seed))
        data.num_nodes = n
        data.x = torch.randint(3, (n, 1), generator=torch.Generator().manual_seed(seed))
        out.append(data)
    return out


PAIR = PolynomialFeatures("ppgn++", level="pair")
NODE = PolynomialFeatures("ppgn++", level="node")
EDGE = PolynomialFeatures("ppgn++", level="edge")


def test_ppgn_plus_plus_on_pair_features_is_invariant_and_padding_free():
    torch.manual_seed(0)
    model = PPGNPlusPlus(1, hidden_channels=12, num_layers=2, node_vocab=3,
                         poly_channels=PAIR.num_features).eval()
    batch = Batch.from_data_list(graphs())
    assert_permutation_equivariant(lambda d: model(PAIR(d)), batch, output="graph")
    # dataset path (graphs evaluated in padded groups, then collated) == one graph at a time
    featured = PAIR.apply_to_dataset(graphs(), progress=False)
    collated = next(iter(DataLoader(featured, batch_size=3)))
    alone = torch.cat([model(Batch.from_data_list([PAIR(g)])) for g in graphs()])
    torch.testing.assert_close(model(collated), alone, atol=1e-5, rtol=1e-5)


def test_pair_index_and_row_major_layouts_agree():
    collated = next(iter(DataLoader(PAIR.apply_to_dataset(graphs(), progress=False), batch_size=3)))
    n_max = int(torch.bincount(collated.batch).max())
    via_index = dense_pair_features(collated, "poly_pair_attr", collated.batch, collated.ptr, n_max)
    row_major = collated.clone()
    del row_major.pair_index
    torch.testing.assert_close(
        dense_pair_features(row_major, "poly_pair_attr", collated.batch, collated.ptr, n_max), via_index)


def test_poly_gin_and_gine_on_node_and_edge_features_are_invariant():
    data = [EDGE(NODE(g)) for g in graphs()]
    batch = Batch.from_data_list(data)
    torch.manual_seed(0)
    gin = PolyGIN(1, 16, 2, node_vocab=3, poly_channels=NODE.num_features).eval()
    gine = PolyGINE(1, 16, 2, node_vocab=3, poly_channels=NODE.num_features,
                    poly_edge_channels=EDGE.num_features).eval()
    for model in (gin, gine):
        assert_permutation_equivariant(lambda d: model(EDGE(NODE(d))), batch, output="graph")
        alone = torch.cat([model(Batch.from_data_list([g])) for g in data])
        torch.testing.assert_close(model(batch), alone, atol=1e-5, rtol=1e-5)

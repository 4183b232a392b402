"""Substructure counts: graphequi.poly homomorphism combinations against
networkx subgraph-isomorphism counts and closed-form matrix formulas; the
dataset on a generated graph.npy and on the real one; bad input."""
import itertools

import networkx as nx
import numpy as np
import pytest
import torch
from networkx.algorithms.isomorphism import GraphMatcher

from graphequi.datasets import (DatasetFileError, SUBSTRUCTURE_TARGETS, SubstructureCountingDataset,
                                get_dataset, substructure_counts)
from graphequi.datasets.substructure import canonical_target, load_graph_npy

PATTERNS = {
    "triangle": nx.cycle_graph(3),
    "tailed_triangle": nx.Graph([(0, 1), (1, 2), (2, 0), (0, 3)]),
    "star": nx.star_graph(3),
    "4cycle": nx.cycle_graph(4),
    "chordal_cycle": nx.Graph([(0, 1), (0, 2), (1, 2), (0, 3), (1, 3)]),
}


def brute_force_counts(graph: nx.Graph) -> list:
    """Non-induced occurrences: monomorphisms of the pattern into the graph / automorphisms."""
    out = []
    for name in SUBSTRUCTURE_TARGETS:
        pattern = PATTERNS[name]
        embeddings = sum(1 for _ in GraphMatcher(graph, pattern).subgraph_monomorphisms_iter())
        automorphisms = sum(1 for _ in GraphMatcher(pattern, pattern).isomorphisms_iter())
        out.append(embeddings / automorphisms)
    return out


def closed_form_counts(a: np.ndarray) -> list:
    """GNNML's matrix formulas (and the diamond count over edges)."""
    a = a.astype(np.float64)
    a2, deg = a @ a, a.sum(0)
    a3 = a2 @ a
    return [np.trace(a3) / 6,
            ((np.diag(a3) / 2) * (deg - 2)).sum(),
            sum(d * (d - 1) * (d - 2) / 6 for d in deg),
            (np.trace(a3 @ a) + np.trace(a2) - 2 * a2.sum()) / 8,
            (a * a2 * (a2 - 1) / 2).sum() / 2]


def random_graphs(count, seed, n_range=(2, 9)):
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(count):
        n = int(rng.integers(*n_range))
        g = nx.gnp_random_graph(n, float(rng.uniform(0.2, 0.8)), seed=int(rng.integers(1 << 30)))
        graphs.append(g)
    return graphs


def adjacency(g: nx.Graph) -> torch.Tensor:
    return torch.from_numpy(nx.to_numpy_array(g, nodelist=range(g.number_of_nodes())))


def test_counts_match_networkx_brute_force():
    graphs = random_graphs(25, seed=0) + [nx.complete_graph(5), nx.petersen_graph(), nx.empty_graph(3)]
    for g in graphs:
        assert substructure_counts(adjacency(g)).tolist() == brute_force_counts(g)


def test_counts_match_closed_form_formulas():
    for g in random_graphs(40, seed=1, n_range=(5, 20)):
        a = nx.to_numpy_array(g)
        np.testing.assert_allclose(substructure_counts(torch.from_numpy(a)).numpy(), closed_form_counts(a))


def test_counts_of_a_padded_batch_equal_single_graphs_and_are_invariant():
    graphs = random_graphs(6, seed=2, n_range=(3, 10))
    n = max(g.number_of_nodes() for g in graphs)
    batch = torch.zeros(len(graphs), n, n, dtype=torch.float64)
    mask = torch.zeros(len(graphs), n, dtype=torch.bool)
    for i, g in enumerate(graphs):
        k = g.number_of_nodes()
        batch[i, :k, :k] = adjacency(g)
        mask[i, :k] = True
    counts = substructure_counts(batch, mask)
    for i, g in enumerate(graphs):
        single = substructure_counts(adjacency(g))
        assert torch.equal(counts[i], single)
        perm = torch.randperm(g.number_of_nodes())
        assert torch.equal(substructure_counts(adjacency(g)[perm][:, perm]), single)


@pytest.mark.parametrize("adj, error, match", [
    (torch.tensor([[0.0, 1.0], [0.0, 0.0]]), ValueError, "symmetric"),
    (torch.tensor([[1.0, 0.0], [0.0, 0.0]]), ValueError, "diagonal"),
    (torch.tensor([[0.0, 2.0], [2.0, 0.0]]), ValueError, "0/1"),
    (torch.zeros(2, 3), ValueError, "shape"),
    (np.zeros((2, 2)), TypeError, "torch.Tensor"),
])
def test_counts_reject_bad_matrices(adj, error, match):
    with pytest.raises(error, match=match):
        substructure_counts(adj)


def test_target_names():
    assert canonical_target("C4") == "4cycle" and canonical_target("3-star") == "star"
    with pytest.raises(ValueError, match="unknown substructure target"):
        canonical_target("pentagon")


# --------------------------------------------------------------------------- dataset

def _write_graph_npy(path, adjs, split):
    obj = np.empty(2, dtype=object)
    adj_array = np.empty(len(adjs), dtype=object)
    for i, a in enumerate(adjs):
        adj_array[i] = a
    obj[0], obj[1] = adj_array, split
    np.save(path, obj, allow_pickle=True)


def _tiny_source(tmp_path, adjs=None, split=None):
    folder = tmp_path / "source" / "count_substructures"
    folder.mkdir(parents=True)
    if adjs is None:
        adjs = [nx.to_numpy_array(g, dtype=np.int8) for g in random_graphs(12, seed=3, n_range=(4, 10))]
    if split is None:
        split = {"train": np.array([0, 5, 2, 7]), "val": np.array([1, 3, 11]), "test": np.array([4, 6, 8, 9, 10])}
    _write_graph_npy(folder / "graph.npy", adjs, split)
    return tmp_path / "source", adjs, split


def test_dataset_on_generated_graph_npy(tmp_path):
    source, adjs, split = _tiny_source(tmp_path)
    val = SubstructureCountingDataset(tmp_path / "root", "val", target="c4", source=source, log=False)
    assert len(val) == 3 and val.target == "4cycle"
    for data, i in zip(val, split["val"]):
        expected = brute_force_counts(nx.from_numpy_array(adjs[i]))
        assert data.counts.view(-1).tolist() == expected
        assert data.y.view(-1).tolist() == [expected[SUBSTRUCTURE_TARGETS.index("4cycle")]]
        assert data.num_nodes == adjs[i].shape[0] and data.x.shape == (data.num_nodes, 1)
        assert torch.equal(torch.from_numpy(np.stack(np.nonzero(adjs[i]))), data.edge_index)
    everything = torch.tensor([closed_form_counts(a) for a in adjs], dtype=torch.float64)
    assert val.target_std == pytest.approx(float(everything[:, 3].std()))
    both = SubstructureCountingDataset(tmp_path / "root", "test", target=None, source=source, log=False)
    assert both.y.shape == (5, 5) and torch.equal(both.target_std, everything.std(0))


def test_dataset_refuses_pickled_code(tmp_path):
    folder = tmp_path / "source" / "count_substructures"
    folder.mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = Evil(), {}
    np.save(folder / "graph.npy", obj, allow_pickle=True)
    with pytest.raises(DatasetFileError, match="graph.npy.*builtins.print is not allowed"):
        SubstructureCountingDataset(tmp_path / "root", source=tmp_path / "source", log=False)


@pytest.mark.parametrize("case, match", [
    ("garbage", "graph.npy"),
    ("asymmetric", "graph 1 is not a symmetric"),
    ("overlap", "two splits"),
    ("out_of_range", "outside"),
    ("keys", "keys"),
])
def test_dataset_corrupt_graph_npy_is_named(tmp_path, case, match):
    a = nx.to_numpy_array(nx.path_graph(4), dtype=np.int8)
    adjs, split = [a, a.copy(), a], {"train": np.array([0]), "val": np.array([1]), "test": np.array([2])}
    if case == "asymmetric":
        adjs[1][0, 3] = 1
    elif case == "overlap":
        split["test"] = np.array([1])
    elif case == "out_of_range":
        split["test"] = np.array([3])
    elif case == "keys":
        split = {"train": np.array([0])}
    source, _, _ = _tiny_source(tmp_path, adjs, split)
    if case == "garbage":
        (source / "count_substructures" / "graph.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DatasetFileError, match=match):
        SubstructureCountingDataset(tmp_path / "root", source=source, log=False)


def test_dataset_missing_file_and_bad_arguments(tmp_path):
    (tmp_path / "source" / "count_substructures").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="graph.npy"):
        SubstructureCountingDataset(tmp_path / "root", source=tmp_path / "source", log=False)
    with pytest.raises(ValueError, match="split"):
        SubstructureCountingDataset(tmp_path / "root", split="training")
    with pytest.raises(ValueError, match="unknown substructure target"):
        get_dataset("count-pentagon", tmp_path)


def test_real_substructure_dataset(shared_data, tmp_path):
    source = shared_data("count_substructures", "graph.npy").parent.parent
    parts = get_dataset("count-triangle", tmp_path, source=source, log=False)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (1500, 1000, 2500)
    adjs, index = load_graph_npy(source / "count_substructures" / "graph.npy")
    everything = torch.tensor([closed_form_counts(a) for a in adjs], dtype=torch.float64)
    assert parts.extra["target_std"] == pytest.approx(float(everything[:, 0].std()))
    assert float(everything[:, 0].mean()) == pytest.approx(5.04, abs=0.01)  # SOURCE.txt's check
    test = SubstructureCountingDataset(tmp_path, "test", target=None, source=source, log=False)
    assert torch.equal(test.y.double(), everything[torch.from_numpy(index["test"])])
    # A few real graphs against networkx brute force too.
    for i in itertools.islice(index["val"].tolist(), 3):
        assert everything[i].tolist() == brute_force_counts(nx.from_numpy_array(adjs[i]))

"""evaluate() against the definition: a brute-force sum over all node maps."""
import itertools

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import from_networkx, to_dense_adj, to_dense_batch

from graphequi.poly import TRIANGLE, Multigraph, basis, evaluate, triangle_count
from graphequi.testing import assert_permutation_equivariant


def brute_force(graph: Multigraph, X: np.ndarray) -> np.ndarray:
    """sum over all maps j: V -> [n] (enumerated with itertools) of the
    product over edges, scattered to the marked positions."""
    n = X.shape[0]
    maps = list(itertools.product(range(n), repeat=graph.num_nodes))
    maps = np.array(maps, dtype=np.int64).reshape(len(maps), graph.num_nodes)
    terms = np.ones(len(maps))
    for r, s in graph.edges:
        terms = terms * X[maps[:, r], maps[:, s]]
    if not graph.marked:
        return np.array(terms.sum())
    out = np.zeros((n,) * graph.num_marks)
    np.add.at(out, tuple(maps[:, m] for m in graph.marked), terms)
    return out


def reference(polys, X):
    return np.stack([brute_force(g, X) for g in polys], axis=-1)


def random_matrix(n, symmetric, gen):
    X = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return X + X.T if symmetric else X


CASES = [(d, m, False) for d in range(5) for m in (0, 1, 2)] + \
        [(d, m, True) for d in range(4) for m in (0, 1, 2)] + [(4, 0, True), (4, 1, True)]


@pytest.mark.parametrize("degree,marks,directed", CASES)
def test_every_basis_element_matches_brute_force(degree, marks, directed):
    polys = basis(degree, marks, directed=directed)
    gen = torch.Generator().manual_seed(degree * 10 + marks + 100 * directed)
    n = 3
    X1, X2 = random_matrix(n, not directed, gen), random_matrix(n, not directed, gen)
    small = random_matrix(2, not directed, gen)
    ref1, ref2, ref_small = (reference(polys, x.numpy()) for x in (X1, X2, small))
    # dense (n, n)
    np.testing.assert_allclose(evaluate(polys, X1).numpy(), ref1, rtol=1e-9, atol=1e-9)
    # batched (B, n, n)
    got = evaluate(polys, torch.stack([X1, X2])).numpy()
    np.testing.assert_allclose(got, np.stack([ref1, ref2]), rtol=1e-9, atol=1e-9)
    # padded: a 2-node graph in a 3-node slot (garbage in the padding) + a full graph
    padded = torch.randn(n, n, generator=gen, dtype=torch.float64) * 7
    padded = padded + padded.T if not directed else padded
    padded[:2, :2] = small
    mask = torch.tensor([[True, True, False], [True, True, True]])
    got = evaluate(polys, torch.stack([padded, X1]), mask=mask).numpy()
    expected_small = np.zeros((n,) * marks + (len(polys),))
    expected_small[(slice(0, 2),) * marks] = ref_small
    np.testing.assert_allclose(got[0], expected_small, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[1], ref1, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("strategy", ["joint", "independent"])
def test_strategies_agree(strategy):
    polys = basis(4, 1, connected=True)
    gen = torch.Generator().manual_seed(1)
    X = torch.stack([random_matrix(6, True, gen) for _ in range(3)])
    ref = evaluate(polys, X, strategy="independent")
    torch.testing.assert_close(evaluate(polys, X, strategy=strategy), ref, rtol=1e-9, atol=1e-9)


def test_non_basis_multigraphs_with_isolated_nodes():
    # Isolated unmarked nodes multiply by the number of *real* nodes.
    g = Multigraph(4, [(0, 1)], marked=(2,))  # node 3 isolated, mark 2 isolated
    gen = torch.Generator().manual_seed(0)
    X = random_matrix(4, True, gen)
    ref = brute_force(g, X.numpy())
    torch.testing.assert_close(evaluate([g], X)[..., 0], torch.from_numpy(ref))
    padded = torch.zeros(6, 6, dtype=torch.float64)
    padded[:4, :4] = X
    mask = torch.tensor([True] * 4 + [False] * 2)
    got = evaluate([g], padded, mask=mask)[..., 0]
    torch.testing.assert_close(got[:4], torch.from_numpy(ref))
    assert (got[4:] == 0).all()


def test_triangle_count_matches_trace_and_networkx():
    graphs = [nx.gnp_random_graph(12, 0.4, seed=seed) for seed in range(3)]
    A = torch.stack([torch.tensor(nx.to_numpy_array(G)) for G in graphs])
    expected = torch.tensor([sum(nx.triangles(G).values()) / 3 for G in graphs], dtype=torch.float64)
    assert torch.equal(triangle_count(A), expected)
    # P_triangle counts homomorphisms: 6 per triangle, tr(A^3) on a simple graph
    assert torch.equal(evaluate([TRIANGLE], A)[:, 0], torch.einsum("bij,bjk,bki->b", A, A, A))
    padded = torch.zeros(3, 15, 15, dtype=torch.float64)
    padded[:, :12, :12] = A
    mask = torch.zeros(3, 15, dtype=torch.bool)
    mask[:, :12] = True
    assert torch.equal(triangle_count(padded, mask=mask), expected)
    assert triangle_count(A[0]).shape == ()


def test_four_cycles_match_networkx():
    # hom(C4) = 8 * #C4 + 2 * sum_v deg(v)^2 - 2 * #edges (closed 4-walks that are not cycles)
    c4 = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    for seed in range(3):
        G = nx.gnp_random_graph(10, 0.45, seed=seed)
        A = torch.tensor(nx.to_numpy_array(G))
        cycles = sum(1 for c in nx.simple_cycles(G, length_bound=4) if len(c) == 4)
        degrees = A.sum(1)
        hom = evaluate([c4], A)[0]
        expected = 8 * cycles + 2 * (degrees ** 2).sum() - 2 * G.number_of_edges()
        assert torch.isclose(hom, expected.to(hom.dtype)), (hom, expected)


@pytest.mark.parametrize("marks", [0, 1, 2])
def test_basis_is_linearly_independent(marks):
    polys = basis(3, marks)
    gen = torch.Generator().manual_seed(marks)
    n = 7  # more nodes than any multigraph here, so no accidental relations
    samples = torch.stack([random_matrix(n, True, gen) for _ in range(2 * len(polys))])
    values = evaluate(polys, samples)
    matrix = values.reshape(-1, len(polys))
    assert torch.linalg.matrix_rank(matrix).item() == len(polys)


def _dense(data):
    A = to_dense_adj(data.edge_index, data.batch, max_num_nodes=None)
    _, mask = to_dense_batch(data.edge_index.new_zeros(data.num_nodes), data.batch)
    return A.double(), mask


def _pyg_batch():
    graphs = []
    for seed, n in enumerate((5, 7, 6)):
        d = from_networkx(nx.gnp_random_graph(n, 0.5, seed=seed))
        d.num_nodes = n
        graphs.append(d)
    return Batch.from_data_list(graphs)


def test_invariance_and_equivariance_under_permutations():
    batch = _pyg_batch()
    polys = {m: basis(3, m, connected=True) for m in (0, 1, 2)}

    def invariant(data):
        A, mask = _dense(data)
        return evaluate(polys[0], A, mask=mask)

    def node_level(data):
        A, mask = _dense(data)
        return evaluate(polys[1], A, mask=mask)[mask]

    def pair_level(data):
        A, mask = _dense(data)
        return evaluate(polys[2], A, mask=mask)

    assert_permutation_equivariant(invariant, batch, output="graph", atol=1e-8)
    assert_permutation_equivariant(node_level, batch, output="node", atol=1e-8)
    assert_permutation_equivariant(pair_level, batch, output="pair", atol=1e-8)


def test_channels_are_evaluated_separately_and_concatenated():
    polys = basis(2, 1, directed=True)
    gen = torch.Generator().manual_seed(3)
    Xs = [random_matrix(4, False, gen) for _ in range(2)]
    got = evaluate(polys, Xs)
    k = len(polys)
    torch.testing.assert_close(got[..., :k], evaluate(polys, Xs[0]))
    torch.testing.assert_close(got[..., k:], evaluate(polys, Xs[1]))


def test_float32_and_integer_inputs():
    tri = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
    A = torch.ones(4, 4, dtype=torch.long) - torch.eye(4, dtype=torch.long)
    assert evaluate([tri], A).item() == 24.0
    assert evaluate([tri], A.float()).dtype == torch.float32


def test_bad_inputs_raise():
    polys = basis(2, 1)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(polys, torch.tensor([[0.0, float("nan")], [float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluate(polys, torch.tensor([[0.0, float("inf")], [float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        evaluate(polys, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="shape"):
        evaluate(polys, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="same number of marks"):
        evaluate([basis(1, 0)[0], basis(1, 1)[0]], torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask"):
        evaluate(polys, torch.zeros(2, 3, 3), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        evaluate(polys, torch.zeros(2, 3, 3), mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="symmetric"):
        evaluate(polys, torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="at least one"):
        evaluate([], torch.zeros(3, 3))
    with pytest.raises(TypeError, match="Multigraph"):
        evaluate(["ab,bc->a"], torch.zeros(3, 3))
    with pytest.raises(TypeError, match="complex"):
        evaluate(polys, torch.zeros(3, 3, dtype=torch.complex64))

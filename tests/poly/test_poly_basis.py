"""Multigraph canonical forms and basis enumeration against an independent
brute force: all edge multisets on a fixed node set, deduplicated with
networkx's VF2 isomorphism test (no shared code with graphequi's canonical
form)."""
import itertools
import pickle
import random

import networkx as nx
import pytest
from networkx.algorithms.isomorphism import categorical_node_match

from graphequi.poly import Multigraph, basis


def _nx_graph(num_nodes, edges, marks, directed):
    g = nx.MultiDiGraph() if directed else nx.MultiGraph()
    for v in range(num_nodes):
        g.add_node(v, mark=marks.index(v) if v in marks else -1)
    g.add_edges_from(edges)
    return g


def brute_force_classes(degree, marks, directed, loops=True):
    """Isomorphism classes of all multigraphs with ``degree`` edges on
    ``marks + 2 * degree`` nodes, marks fixed at 0..marks-1, after dropping
    isolated unmarked nodes."""
    num_nodes = marks + 2 * degree
    pairs = [(u, v) for u in range(num_nodes) for v in range(num_nodes)
             if (directed or u <= v) and (loops or u != v)]
    labeled = set()
    for multiset in itertools.combinations_with_replacement(pairs, degree):
        used = sorted({x for e in multiset for x in e} - set(range(marks)))
        relabel = {v: v for v in range(marks)}
        relabel.update({v: marks + i for i, v in enumerate(used)})
        edges = tuple(sorted((relabel[u], relabel[v]) for u, v in multiset))
        labeled.add((marks + len(used), edges))
    node_match = categorical_node_match("mark", -1)
    classes = {}  # cheap invariant -> list of representatives
    for n, edges in labeled:
        g = _nx_graph(n, edges, tuple(range(marks)), directed)
        inv = (n, tuple(sorted(d for _, d in g.degree())),
               tuple(sorted(g.degree(m) for m in range(marks))), sum(u == v for u, v in edges))
        reps = classes.setdefault(inv, [])
        if not any(nx.is_isomorphic(g, r, node_match=node_match) for r in reps):
            reps.append(g)
    return sum(len(r) for r in classes.values())


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("marks", [0, 1, 2])
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_basis_counts_match_brute_force(degree, marks, directed):
    assert len(basis(degree, marks, directed=directed)) == brute_force_classes(degree, marks, directed)


@pytest.mark.parametrize("marks", [0, 1, 2])
def test_basis_without_loops_matches_brute_force(marks):
    assert len(basis(3, marks, loops=False)) == brute_force_classes(3, marks, False, loops=False)


def test_maron_anchor_counts():
    # Maron et al.: 2 invariant, 5 node-level, 15 = 10 + 5 pair-level linear maps.
    assert [len(basis(1, m, directed=True)) for m in (0, 1, 2)] == [2, 5, 10]


def test_basis_elements_are_pairwise_non_isomorphic_and_valid():
    for degree in range(4):
        for marks in (0, 1, 2):
            elems = basis(degree, marks)
            assert len(set(elems)) == len(elems)
            for g in elems:
                assert g.degree == degree and g.num_marks == marks
                assert not set(g.isolated_nodes()) - set(g.marked)


def test_basis_is_deterministic_and_sorted():
    b = basis(3, 1)
    assert list(b) == sorted(b, key=Multigraph.key)
    basis.cache_clear()
    assert [g.edges for g in basis(3, 1)] == [g.edges for g in b]


def test_connected_filter():
    full, conn = basis(4, 1), basis(4, 1, connected=True)
    assert set(conn) == {g for g in full if g.is_connected()}


def test_random_relabelings_are_equal():
    rng = random.Random(0)
    for g in basis(4, 2, directed=True)[::37]:
        perm = list(range(g.num_nodes))
        rng.shuffle(perm)
        h = Multigraph(g.num_nodes, [(perm[u], perm[v]) for u, v in g.edges],
                       tuple(perm[m] for m in g.marked), directed=True)
        assert h == g and hash(h) == hash(g)
        assert h.canonical().edges == g.canonical().edges


def test_marks_stay_in_place():
    path = [(0, 1), (1, 2)]
    assert Multigraph(3, path, marked=(0, 2)) == Multigraph(3, path, marked=(2, 0))  # symmetric
    assert Multigraph(3, path, marked=(0, 1)) != Multigraph(3, path, marked=(1, 0))
    assert Multigraph(3, path, marked=(0,)) != Multigraph(3, path, marked=(1,))
    assert Multigraph(3, path) != Multigraph(3, path, directed=True)


def test_hard_canonical_cases_agree_with_networkx():
    # Regular and symmetric multigraphs where refinement alone cannot split nodes.
    k33 = [(u, v) for u in range(3) for v in range(3, 6)]
    prism = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)]
    assert (Multigraph(6, k33) == Multigraph(6, prism)) is nx.is_isomorphic(
        nx.Graph(k33), nx.Graph(prism))
    c6 = [(i, (i + 1) % 6) for i in range(6)]
    two_triangles = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)]
    assert Multigraph(6, c6) != Multigraph(6, two_triangles)
    matching = [(2 * i, 2 * i + 1) for i in range(6)]
    assert Multigraph(12, matching) == Multigraph(12, [(i, 11 - i) for i in range(6)])


def test_immutable_hashable_picklable():
    g = Multigraph(3, [(0, 1), (1, 2)], marked=(0,))
    with pytest.raises(AttributeError):
        g.num_nodes = 4
    assert pickle.loads(pickle.dumps(g)) == g
    assert {g: 1}[Multigraph(3, [(2, 1), (1, 0)], marked=(2,))] == 1
    assert repr(g) == "Multigraph(3, [(0, 1), (1, 2)], marked=(0,))"
    assert g.einsum_equation() == "ab,bc->a"


def test_bad_multigraphs_raise():
    with pytest.raises(ValueError, match="outside"):
        Multigraph(2, [(0, 2)])
    with pytest.raises(ValueError, match="at most 2"):
        Multigraph(3, [], marked=(0, 1, 2))
    with pytest.raises(ValueError, match="distinct"):
        Multigraph(3, [], marked=(1, 1))
    with pytest.raises(ValueError, match="pair"):
        Multigraph(3, [(0, 1, 2)])
    with pytest.raises(ValueError, match="non-negative"):
        Multigraph(-1, [])
    with pytest.raises(ValueError, match="marks"):
        basis(2, 3)
    with pytest.raises(ValueError, match="degree"):
        basis(-1, 0)


def test_draw_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = Multigraph(3, [(0, 1), (0, 1), (1, 1), (1, 2)], marked=(0, 2), directed=True).draw()
    assert ax is not None and len(ax.patches) == 4
    plt.close("all")


@pytest.mark.parametrize("directed", [False, True])
def test_canonical_equality_matches_networkx_on_random_pairs(directed):
    # Pairs that are relabelings, relabelings with one edge moved, or unrelated.
    rng = random.Random(7 + directed)
    node_match = categorical_node_match("mark", -1)
    agree = {True: 0, False: 0}
    for _ in range(300):
        marks = rng.choice([(), (0,), (0, 1)])
        e1 = [(rng.randrange(5), rng.randrange(5)) for _ in range(rng.randint(3, 6))]
        kind = rng.randrange(3)
        if kind == 2:
            e2 = [(rng.randrange(5), rng.randrange(5)) for _ in range(len(e1))]
            m2 = marks
        else:
            perm = list(range(5))
            rng.shuffle(perm)
            e2 = [(perm[u], perm[v]) for u, v in e1]
            m2 = tuple(perm[m] for m in marks)
            if kind == 1:
                e2[0] = (e2[0][0], rng.randrange(5))
        m1 = marks
        ours = Multigraph(5, e1, m1, directed) == Multigraph(5, e2, m2, directed)
        theirs = nx.is_isomorphic(_nx_graph(5, e1, m1, directed), _nx_graph(5, e2, m2, directed),
                                  node_match=node_match)
        assert ours == theirs, (e1, e2, marks)
        agree[ours] += 1
    assert agree[True] > 0 and agree[False] > 0


def test_deprecated_british_spellings_warn_and_forward():
    from graphequi.poly import multigraph

    g = Multigraph(3, [(0, 1), (1, 2)], marked=(0,))
    with pytest.warns(DeprecationWarning, match="node_colors"):
        assert g.node_colours() == g.node_colors() == (0, 2, 2)
    args = (3, g.edges, g.node_colors(), False)
    with pytest.warns(DeprecationWarning, match="canonical_labeling"):
        assert multigraph.canonical_labelling(*args) == multigraph.canonical_labeling(*args)

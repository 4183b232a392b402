"""select('ppgn++') and the PPGN elimination rule."""
import random

import networkx as nx

from graphequi.poly import Multigraph, basis, ppgn_computable, select

K4 = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_ppgn_counts():
    ppgn = select("ppgn++", 6)
    assert len(ppgn) == 12
    assert sorted(g.degree for g in ppgn).count(5) == 1
    assert [g.num_marks for g in ppgn].count(0) == 1
    assert [g.num_marks for g in ppgn].count(1) == 1
    assert [g.num_marks for g in ppgn].count(2) == 10
    assert select("ppgn++", 4) == ()
    assert Multigraph(4, K4) in ppgn and Multigraph(4, K4, marked=(0,)) in ppgn


def test_selected_are_connected_simple_and_not_computable():
    for g in select("ppgn++", 6):
        assert g.is_connected() and g.is_simple() and not g.directed
        assert not ppgn_computable(g)
    # and every other connected simple multigraph up to degree 6 is computable
    chosen = set(select("ppgn++", 6))
    for m in (0, 1, 2):
        for g in basis(5, m, loops=False, connected=True):
            if g.is_simple() and g not in chosen:
                assert ppgn_computable(g)


def test_rule_on_known_graphs():
    for k in range(3, 9):  # cycles and paths reduce completely
        cycle = [(i, (i + 1) % k) for i in range(k)]
        assert ppgn_computable(Multigraph(k, cycle))
        assert ppgn_computable(Multigraph(k, cycle, marked=(0, k // 2)))
    assert not ppgn_computable(Multigraph(4, K4))
    # the diamond K4 - e is computable unless its degree-2 ends are both marked
    diamond = [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert ppgn_computable(Multigraph(4, diamond))
    assert not ppgn_computable(Multigraph(4, diamond, marked=(0, 1)))
    # series-parallel (treewidth 2) graphs are computable, e.g. K_{2,4}
    k24 = [(u, v) for u in range(2) for v in range(2, 6)]
    assert ppgn_computable(Multigraph(6, k24))


def test_rule_matches_treewidth_for_invariant_simple_graphs():
    # For an unmarked connected simple graph the rule removes everything iff
    # the treewidth is at most 2 (its only minimal obstruction is a K4 minor).
    for g in basis(6, 0, loops=False, connected=True):
        if not g.is_simple():
            continue
        G = nx.Graph(list(g.edges))
        # (the min-degree heuristic is an upper bound; on these <= 7-node graphs it is exact)
        has_k4_minor = nx.algorithms.approximation.treewidth_min_degree(G)[0] >= 3
        assert ppgn_computable(g) == (not has_k4_minor), g


def test_select_invariant_to_relabeling():
    rng = random.Random(1)
    for g in select("ppgn++", 6):
        perm = list(range(g.num_nodes))
        rng.shuffle(perm)
        h = Multigraph(g.num_nodes, [(perm[u], perm[v]) for u, v in g.edges], tuple(perm[m] for m in g.marked))
        assert ppgn_computable(h) == ppgn_computable(g)

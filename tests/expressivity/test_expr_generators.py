"""Generators of WL-hard pairs: structure, determinism, conversion, bad input."""
from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch

from graphequi.expressivity import (
    CSL_SKIPS,
    GraphPair,
    cfi_pair,
    classic_pairs,
    csl_graph,
    random_regular_pair,
    rook_graph,
    shrikhande_graph,
    to_data,
    to_networkx,
)


def test_csl_graph_structure():
    for skip in CSL_SKIPS:
        g = csl_graph(41, skip)
        assert g.number_of_nodes() == 41 and g.number_of_edges() == 82
        assert all(d == 4 for _, d in g.degree())
        assert g.has_edge(0, skip) and g.has_edge(40, 0)
    # Skip s and n - s give the same chords.
    assert nx.utils.edges_equal(csl_graph(11, 3).edges(), csl_graph(11, 8).edges())


def _is_srg(g, k, lam, mu):
    for u, v in itertools.combinations(g.nodes(), 2):
        common = len(set(g[u]) & set(g[v]))
        if common != (lam if g.has_edge(u, v) else mu):
            return False
    return all(d == k for _, d in g.degree())


def test_rook_and_shrikhande_are_srg_16_6_2_2_and_not_isomorphic():
    rook, shrik = rook_graph(4), shrikhande_graph()
    assert _is_srg(rook, 6, 2, 2) and _is_srg(shrik, 6, 2, 2)
    assert not nx.is_isomorphic(rook, shrik)
    assert nx.is_isomorphic(rook, nx.line_graph(nx.complete_bipartite_graph(4, 4)))
    assert rook_graph(3).number_of_edges() == 18


@pytest.mark.parametrize("base", [nx.path_graph(3), nx.cycle_graph(5), nx.complete_graph(4),
                                  nx.petersen_graph()])
def test_cfi_sizes_and_gadget_structure(base):
    g, h = cfi_pair(base)
    expected = sum(2 ** (d - 1) + 2 * d for _, d in base.degree())
    assert g.number_of_nodes() == h.number_of_nodes() == expected
    assert g.number_of_edges() == h.number_of_edges()
    # Each outer-node pair of a gadget has exactly one cross edge per base edge.
    gadgets = nx.get_node_attributes(g, "gadget")
    cross = sum(1 for u, v in g.edges() if gadgets[u] != gadgets[v])
    assert cross == 2 * base.number_of_edges()
    # Inner nodes have the base degree; the inner nodes of a gadget do not touch.
    for node, data in g.nodes(data=True):
        nbrs = [gadgets[u] for u in g[node]]
        assert set(nbrs) <= {data["gadget"]} | set(base[data["gadget"]])


def test_cfi_twist_matters_only_up_to_isomorphism():
    base = nx.cycle_graph(4)
    g, h = cfi_pair(base)
    assert not nx.is_isomorphic(g, h)
    # Relabeling the base gives an isomorphic construction.
    g2, h2 = cfi_pair(nx.relabel_nodes(base, {0: 2, 1: 3, 2: 0, 3: 1}))
    assert nx.is_isomorphic(g, g2) and nx.is_isomorphic(h, h2)
    gc, _ = cfi_pair(base, colored=True)
    assert {c for _, c in gc.nodes(data="color")} == {(v, kind) for v in range(4) for kind in (0, 1)}


def test_classic_pairs_are_valid():
    pairs = classic_pairs()
    assert len({p.name for p in pairs}) == len(pairs)
    for p in pairs:
        assert isinstance(p, GraphPair) and p.category == "classic"
        g, h = p  # unpacks
        assert g.number_of_nodes() == h.number_of_nodes()
        assert g.number_of_edges() == h.number_of_edges()
        assert sorted(d for _, d in g.degree()) == sorted(d for _, d in h.degree())
        assert not nx.is_isomorphic(g, h)
        assert list(g.nodes()) == list(range(g.number_of_nodes()))


def test_random_regular_pair_deterministic_and_regular():
    g, h = random_regular_pair(14, 3, seed=5)
    g2, h2 = random_regular_pair(14, 3, seed=5)
    assert nx.utils.edges_equal(g.edges(), g2.edges()) and nx.utils.edges_equal(h.edges(), h2.edges())
    for x in (g, h):
        assert all(d == 3 for _, d in x.degree()) and nx.is_connected(x)
    assert not nx.is_isomorphic(g, h)


def test_to_data_round_trip():
    g = csl_graph(13, 3)
    g.graph["label"] = 2
    d = to_data(g)
    assert d.num_nodes == 13 and d.edge_index.size(1) == 2 * g.number_of_edges()
    assert torch.equal(d.x, torch.ones(13, 1)) and d.y.item() == 2
    assert nx.utils.edges_equal(to_networkx(d).edges(), g.edges())
    nx.set_node_attributes(g, {v: [v % 2, 1.5] for v in g}, "feat")
    assert to_data(g, node_attr="feat").x.shape == (13, 2)


def test_generator_bad_input():
    with pytest.raises(ValueError, match="skip"):
        csl_graph(10, 1)
    with pytest.raises(ValueError, match="n >= 3"):
        csl_graph(2, 1)
    with pytest.raises(ValueError, match="connected"):
        cfi_pair(nx.disjoint_union(nx.path_graph(2), nx.path_graph(2)))
    with pytest.raises(ValueError, match="at least one edge"):
        cfi_pair(nx.empty_graph(3))
    with pytest.raises(TypeError, match="undirected simple"):
        cfi_pair(nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="regular"):
        random_regular_pair(5, 3)
    with pytest.raises(ValueError, match="non-isomorphic"):
        random_regular_pair(4, 3)  # K4 is the only 3-regular graph on 4 nodes
    with pytest.raises(ValueError, match="m >= 2"):
        rook_graph(1)

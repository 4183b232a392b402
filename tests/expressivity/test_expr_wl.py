"""Exact WL oracles: known pairs, CFI/CSL families, brute-force references,
invariance, determinism across processes and bad input."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import graphequi.expressivity.wl as wl_module
from graphequi.expressivity import (
    CSL_SKIPS,
    cfi_pair,
    classic_pairs,
    csl_graph,
    random_regular_pair,
    rook_graph,
    shrikhande_graph,
    to_data,
    wl_colors,
    wl_equivalent,
    wl_hash,
)
from graphequi.datasets import default_source
from graphequi.testing import assert_permutation_equivariant

REPO = Path(__file__).resolve().parents[2]



def _relabel(g: nx.Graph, seed: int) -> nx.Graph:
    perm = np.random.default_rng(seed).permutation(g.number_of_nodes())
    return nx.relabel_nodes(g, dict(zip(g.nodes(), perm.tolist())))


# --- brute-force references --------------------------------------------------------

def _ref_equivalent(g: nx.Graph, h: nx.Graph, k: int) -> bool:
    """Textbook lock-step refinement with dicts and sorted tuples."""
    graphs = [nx.convert_node_labels_to_integers(x) for x in (g, h)]
    if len({x.number_of_nodes() for x in graphs}) > 1:
        return False
    n = graphs[0].number_of_nodes()
    if k == 1:
        items = [(a, v) for a in range(2) for v in range(n)]
        col = {item: 0 for item in items}

        def signature(a, v):
            return (col[a, v], tuple(sorted(col[a, u] for u in graphs[a][v])))
    else:
        items = [(a, i, j) for a in range(2) for i in range(n) for j in range(n)]
        col = {(a, i, j): (i == j, graphs[a].has_edge(i, j)) for a, i, j in items}

        def signature(a, i, j):
            return (col[a, i, j], tuple(sorted((col[a, i, w], col[a, w, j]) for w in range(n))))
    classes = -1
    while True:
        sigs = {item: signature(*item) for item in items}
        ranks = {s: r for r, s in enumerate(sorted(set(sigs.values())))}
        col = {item: ranks[s] for item, s in sigs.items()}
        hist = [sorted(c for item, c in col.items() if item[0] == a) for a in range(2)]
        if hist[0] != hist[1]:
            return False
        if len(ranks) == classes:
            return True
        classes = len(ranks)


# --- known pairs ---------------------------------------------------------------------

def test_two_triangles_vs_hexagon():
    g = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    h = nx.cycle_graph(6)
    assert wl_equivalent(g, h, k=1)
    assert not wl_equivalent(g, h, k=2)
    assert wl_hash(g, 1) == wl_hash(h, 1)
    assert wl_hash(g, 2) != wl_hash(h, 2)


def test_rook_vs_shrikhande_defeats_both():
    rook, shrik = rook_graph(4), shrikhande_graph()
    assert not nx.is_isomorphic(rook, shrik)
    assert wl_equivalent(rook, shrik, k=1)
    assert wl_equivalent(rook, shrik, k=2)
    assert wl_hash(rook, 2) == wl_hash(shrik, 2)


@pytest.mark.parametrize("pair", classic_pairs(), ids=lambda p: p.name)
def test_classic_pairs_against_brute_force(pair):
    assert not nx.is_isomorphic(pair.first, pair.second)
    assert wl_equivalent(pair.first, pair.second, k=1)
    expected = _ref_equivalent(pair.first, pair.second, 2)
    assert wl_equivalent(pair.first, pair.second, k=2) == expected
    assert expected == (pair.name == "rook4x4/shrikhande")


def test_csl_1wl_fails_2fwl_separates_different_skips():
    graphs = {s: csl_graph(41, s) for s in CSL_SKIPS}
    for (s, g), (t, h) in itertools.combinations(graphs.items(), 2):
        assert wl_equivalent(g, h, k=1), (s, t)
        assert not wl_equivalent(g, h, k=2), (s, t)
    # Same skip, relabeled: equivalent at both levels.
    assert wl_equivalent(graphs[5], _relabel(graphs[5], 0), k=2)


# --- CFI: treewidth decides which level separates ----------------------------------

@pytest.mark.parametrize("name, base, treewidth", [
    ("path4", nx.path_graph(4), 1),
    ("star3", nx.star_graph(3), 1),
    ("C5", nx.cycle_graph(5), 2),
    ("diamond", nx.diamond_graph(), 2),
    ("K4", nx.complete_graph(4), 3),
    ("prism", nx.circular_ladder_graph(3), 3),
])
def test_cfi_separated_exactly_when_k_reaches_treewidth(name, base, treewidth):
    g, h = cfi_pair(base)
    assert not nx.vf2pp_is_isomorphic(g, h)
    assert nx.vf2pp_is_isomorphic(g, _relabel(g, 1))
    for k in (1, 2):
        assert wl_equivalent(g, h, k=k) == (k < treewidth), (name, k)
    if g.number_of_nodes() <= 30:  # brute force is O(n^3) per round in Python
        assert _ref_equivalent(g, h, 2) == (treewidth > 2)


def test_cfi_colored_variant_uses_node_colors():
    g, h = cfi_pair(nx.cycle_graph(4), colored=True)
    assert wl_equivalent(g, h, k=1, node_attr="color")
    assert not wl_equivalent(g, h, k=2, node_attr="color")


# --- agreement with references on random graphs ---------------------------------------

@pytest.mark.filterwarnings("ignore:The hashes produced:UserWarning")
def test_1wl_matches_networkx_wl_hash_on_random_pairs():
    rng = np.random.default_rng(0)
    agree = 0
    for trial in range(40):
        n = int(rng.integers(5, 10))
        m = int(rng.integers(n - 1, 2 * n))
        g = nx.gnm_random_graph(n, m, seed=int(rng.integers(1 << 30)))
        h = nx.gnm_random_graph(n, m, seed=int(rng.integers(1 << 30))) if trial % 2 else _relabel(g, trial)
        ref = (nx.weisfeiler_lehman_graph_hash(g, iterations=n)
               == nx.weisfeiler_lehman_graph_hash(h, iterations=n))
        assert wl_equivalent(g, h, k=1) == ref
        assert (wl_hash(g, 1) == wl_hash(h, 1)) == ref
        agree += ref
    assert 0 < agree < 40  # both outcomes exercised


def test_2fwl_matches_brute_force_on_regular_graphs():
    # All 3-regular graphs on 8 nodes are 1-WL-equivalent; 2-FWL splits them.
    graphs = [nx.random_regular_graph(3, 8, seed=s) for s in range(8)]
    outcomes = set()
    for g, h in itertools.combinations(graphs, 2):
        ref = _ref_equivalent(g, h, 2)
        assert wl_equivalent(g, h, k=2) == ref
        assert (wl_hash(g, 2) == wl_hash(h, 2)) == ref
        assert wl_equivalent(g, h, k=1)
        outcomes.add(ref)
    assert outcomes == {True, False}


def test_random_regular_pairs_are_1wl_equivalent():
    g, h = random_regular_pair(12, 3, seed=3)
    assert wl_equivalent(g, h, k=1) and not nx.is_isomorphic(g, h)


def test_hash_collision_fallback_is_exact(monkeypatch):
    # A constant hash makes every multiset collide; the exact
    # verification must still produce the true refinement.
    cases = [(rook_graph(4), shrikhande_graph())] + [cfi_pair(nx.cycle_graph(4))]
    cases += [(p.first, p.second) for p in classic_pairs()[:3]]
    expected = [(wl_equivalent(g, h, k=2), wl_colors(g, k=2)) for g, h in cases]
    monkeypatch.setattr(wl_module, "_pair_multiset_hash",
                        lambda C, K: np.zeros(C.shape, dtype=np.uint64))
    for (g, h), (equiv, colors) in zip(cases, expected):
        assert wl_equivalent(g, h, k=2) == equiv
        got = wl_colors(g, k=2).reshape(-1)
        # Color names depend on the hash values; the partition must not.
        joint = torch.unique(torch.stack([got, colors.reshape(-1)]), dim=1).size(1)
        assert joint == got.unique().numel() == colors.unique().numel()


def test_1wl_hash_collision_fallback_is_exact(monkeypatch):
    graphs = [nx.gnm_random_graph(12, 20, seed=s) for s in range(6)]
    graphs += [p.first for p in classic_pairs()]
    expected = [(wl_colors(g, k=1), [wl_equivalent(g, h, k=1) for h in graphs]) for g in graphs]
    monkeypatch.setattr(wl_module, "_node_multiset_hash",
                        lambda rows, nbr, n, K: np.zeros(n, dtype=np.uint64))
    for g, (colors, equivalences) in zip(graphs, expected):
        got = wl_colors(g, k=1)
        joint = torch.unique(torch.stack([got, colors]), dim=1).size(1)
        assert joint == got.unique().numel() == colors.unique().numel()
        assert [wl_equivalent(g, h, k=1) for h in graphs] == equivalences


# --- invariance, inputs, colors -----------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2])
def test_hash_invariant_and_data_agrees_with_networkx(k):
    g = nx.gnm_random_graph(12, 20, seed=4)
    ref = wl_hash(g, k)
    for seed in range(3):
        assert wl_hash(_relabel(g, seed), k) == ref
    assert wl_hash(to_data(g), k) == ref
    # Directed duplicates, self-loops and a shuffled edge order change nothing.
    data = to_data(g)
    ei = data.edge_index[:, torch.randperm(data.edge_index.size(1))]
    ei = torch.cat([ei, torch.tensor([[0, 3], [0, 3]])], dim=1)
    assert wl_hash(Data(edge_index=ei, num_nodes=12), k) == ref


@pytest.mark.parametrize("k, output", [(1, "node"), (2, "pair")])
def test_colors_are_canonical_and_equivariant(k, output):
    data = to_data(nx.gnm_random_graph(10, 16, seed=7))
    assert_permutation_equivariant(lambda d: wl_colors(d, k=k).float(), data, output=output)


def test_2fwl_colors_refine_1wl_and_diagonal():
    g = nx.gnm_random_graph(9, 14, seed=2)
    c1, c2 = wl_colors(g, 1), wl_colors(g, 2)
    diag = c2.diagonal()
    # Nodes with equal 2-FWL diagonal color have equal 1-WL color.
    for i, j in itertools.combinations(range(9), 2):
        if diag[i] == diag[j]:
            assert c1[i] == c1[j]
    assert set(diag.tolist()).isdisjoint(set(c2[~torch.eye(9, dtype=torch.bool)].tolist()))


def test_node_attributes_as_initial_colors():
    g, h = nx.cycle_graph(6), nx.cycle_graph(6)
    nx.set_node_attributes(g, {v: int(v == 0) for v in g}, "label")
    nx.set_node_attributes(h, {v: int(v == 3) for v in h}, "label")
    assert wl_equivalent(g, h, k=1, node_attr="label")  # rotation
    nx.set_node_attributes(h, {v: int(v in (0, 1)) for v in h}, "label")
    assert not wl_equivalent(g, h, k=1, node_attr="label")
    assert wl_equivalent(g, h, k=1)  # features ignored by default
    # Data.x works the same way and matches the networkx attribute.
    d = to_data(g, node_attr="label")
    assert wl_hash(d, 1, node_attr="x") == wl_hash(g, 1, node_attr="label")
    assert wl_hash(d, 1, node_attr="x") != wl_hash(d, 1)


def test_hash_stable_across_processes():
    code = ("import networkx as nx\n"
            "from graphequi.expressivity import wl_hash, cfi_pair\n"
            "g, _ = cfi_pair(nx.cycle_graph(5))\n"
            "print(wl_hash(g, 1), wl_hash(g, 2))\n")
    g, _ = cfi_pair(nx.cycle_graph(5))
    expected = f"{wl_hash(g, 1)} {wl_hash(g, 2)}"
    for seed in ("12345",):  # the test process itself runs with another seed
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, cwd=str(REPO))
        assert out.stdout.strip() == expected


def test_different_sizes_are_not_equivalent():
    assert not wl_equivalent(nx.cycle_graph(5), nx.cycle_graph(6), k=2)
    assert not wl_equivalent(nx.path_graph(4), nx.star_graph(3), k=1)


# --- bad input ------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    g = nx.cycle_graph(4)
    with pytest.raises(ValueError, match="k must be 1"):
        wl_hash(g, k=3)
    with pytest.raises(ValueError, match="no nodes"):
        wl_hash(nx.Graph())
    with pytest.raises(ValueError, match="outside"):
        wl_hash(Data(edge_index=torch.tensor([[0, 5], [1, 0]]), num_nodes=3))
    with pytest.raises(TypeError, match="integer dtype"):
        wl_hash(Data(edge_index=torch.tensor([[0.0], [1.0]]), num_nodes=2))
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        wl_hash(Data(edge_index=torch.tensor([[0, 1, 2]]), num_nodes=3))
    with pytest.raises(TypeError, match="networkx graph or a PyG Data"):
        wl_hash([(0, 1)])
    with pytest.raises(ValueError, match="missing"):
        wl_hash(g, node_attr="label")
    d = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2, x=torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(ValueError, match="NaN"):
        wl_hash(d, node_attr="x")
    with pytest.raises(ValueError, match="rows"):
        wl_hash(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2, x=torch.ones(3, 1)), node_attr="x")


@pytest.mark.skipif(not (default_source() / "exp" / "GRAPHSAT.txt").exists(), reason="shared EXP absent")
def test_exp_all_600_pairs_1wl_identical():
    from graphequi.expressivity.loaders import load_exp

    pairs = load_exp(default_source() / "exp")
    assert len(pairs) == 600
    for p in pairs:
        assert p.first.graph["label"] != p.second.graph["label"]  # SAT vs UNSAT
        assert wl_equivalent(p.first, p.second, k=1, node_attr="label"), p.name
    # ... and 2-FWL separates them (spot check: the first ten pairs).
    assert not any(wl_equivalent(p.first, p.second, k=2) for p in pairs[:10])

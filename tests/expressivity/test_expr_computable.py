"""Contraction banks (graphequi.expressivity.computable): counts from the
paper, independent characterizations, replayed certificates, and the
soundness / non-triviality cross-checks against the WL oracles."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch

from graphequi.expressivity import computable as C
from graphequi.expressivity.generators import (cfi_pair, classic_pairs, csl_graph, random_regular_pair,
                                               rook_graph, shrikhande_graph)
from graphequi.expressivity.wl import wl_equivalent
from graphequi.datasets import default_source
from graphequi.poly import Multigraph, evaluate, select

BUILTIN = ("mpnn", "ppgn", "subgraph", "spen")


def family(max_degree, marks=(0, 1, 2)):
    return [p for d in range(1, max_degree + 1) for m in marks for p in C.polynomial_family(d, m)]


def computable_set(bank, polys):
    return {p for p in polys if C.certify(p, bank) is not None}


def to_nx(poly: Multigraph) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(poly.num_nodes))
    g.add_edges_from(poly.edges)
    return g


# ---------------------------------------------------------------------------
# Counts and characterizations
# ---------------------------------------------------------------------------
def test_ppgn_misses_1_at_degree_5_and_11_at_degree_6():
    table = C.analyze(["ppgn"], max_degree=6)
    missing = {d: len(table.missing("ppgn", d)) for d in range(1, 7)}
    assert missing == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 11}
    # the degree-5 one is the diamond K4 - e marked on the ends of its missing edge
    (diamond,) = table.missing("ppgn", 5)
    assert diamond == Multigraph(4, [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], marked=(0, 1))


def test_ppgn_missing_equals_select_and_ppgn_plus_plus_computes_all():
    polys = family(6)
    missing = {p for p in polys if C.certify(p, "ppgn") is None}
    assert missing == set(select("ppgn++", max_degree=6))
    assert all(C.certify(p, "ppgn++(6)") is not None for p in polys)
    # with only the degree-5 feature, the degree-6 pair-level 5-node ones stay out of reach
    assert any(C.certify(p, "ppgn++(5)") is None for p in missing)


def _elimination_width_ok(poly: Multigraph, width: int) -> bool:
    """Brute force over all elimination orders of the unmarked nodes (networkx
    graph with fill-in edges): is there one where every eliminated node has at
    most ``width`` neighbors?"""
    base = to_nx(poly)
    free = [v for v in base if v not in poly.marked]
    for order in itertools.permutations(free):
        g = base.copy()
        ok = True
        for v in order:
            nbrs = list(g.neighbors(v))
            if len(nbrs) > width:
                ok = False
                break
            g.add_edges_from(itertools.combinations(nbrs, 2))
            g.remove_node(v)
        if ok:
            return True
    return False


def test_ppgn_equals_bruteforce_elimination_orders():
    for p in family(5) + list(C.polynomial_family(6, 0)) + list(C.polynomial_family(6, 1)):
        assert (C.certify(p, "ppgn") is not None) == _elimination_width_ok(p, 2), p


def test_mpnn_computes_exactly_forests():
    for p in family(6):
        g = to_nx(p)
        if p.num_marks < 2:
            expected = nx.is_forest(g)
        else:  # pair outputs f(h_a, h_b, X_ab): a, b in different trees once a--b edges are cut
            a, b = p.marked
            g.remove_edges_from([(a, b)])
            expected = nx.is_forest(g) and not nx.has_path(g, a, b)
        assert (C.certify(p, "mpnn") is not None) == expected, p


def test_subgraph_invariants_are_forest_plus_one_node():
    # Zhang et al. (ICLR 2024): node-marking subgraph GNNs count homomorphisms
    # of exactly the graphs with a node whose removal leaves a forest.
    for p in family(6, marks=(0,)):
        g = to_nx(p)
        expected = any(nx.is_forest(nx.restricted_view(g, [w], [])) for w in g)
        assert (C.certify(p, "subgraph") is not None) == expected, p


def test_bank_hierarchy():
    polys = family(5) + list(C.polynomial_family(6, 0)) + list(C.polynomial_family(6, 1))
    sets = {b: computable_set(b, polys) for b in BUILTIN}
    assert sets["mpnn"] < sets["subgraph"] < sets["ppgn"]
    assert sets["mpnn"] < sets["spen"] < sets["ppgn"]
    # SPEN counts 4-cycles and triangles, which MPNNs cannot
    c4 = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    tri = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
    assert {c4, tri} <= sets["spen"] - sets["mpnn"]


def test_table_format_json_plot(tmp_path):
    table = C.analyze(["mpnn", "ppgn"], max_degree=3)
    text = table.format()
    assert "mpnn" in text and "5/10" in text  # pair-level degree 3: mpnn 5 of 10
    assert table.row("ppgn", 3, 2).computable == table.row("ppgn", 3, 2).total == 10
    table.to_json(tmp_path / "t.json")
    table.plot(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    import json
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert len(rows) == 2 * 3 * 3


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------
def _independent_step_check(bank: str, cert: C.Certificate) -> None:
    """Re-derive the elimination semantics with plain sets: neighbor sets
    with fill-in, and which pairs are still joined by input edges."""
    poly = cert.poly
    nbrs = {v: set() for v in range(poly.num_nodes)}
    input_edge = set()
    for u, v in poly.edges:
        if u != v:
            nbrs[u].add(v)
            nbrs[v].add(u)
            input_edge.add(frozenset((u, v)))
    computed = set()
    root = None
    for step in cert.steps:
        if step.action == "root":
            root = step.node
            continue
        if step.action != "eliminate":
            continue
        x = step.node
        assert x not in poly.marked
        near = nbrs.pop(x)
        assert tuple(sorted(near)) == step.scope
        if bank == "mpnn":
            assert len(near) <= 1
            assert all(frozenset((x, u)) not in computed for u in near)
        elif bank == "ppgn":
            assert len(near) <= 2
        elif bank == "subgraph":
            assert len(near - {root}) <= 1 or x == root
        elif bank == "spen":
            assert len(near) <= 2
            members = near | {x}
            assert any(all(frozenset((r, y)) in input_edge for y in members - {r}) for r in members)
        for u in near:
            nbrs[u].discard(x)
        input_edge = {e for e in input_edge if x not in e}
        computed = {e for e in computed if x not in e}
        if len(near) == 2:
            a, b = near
            nbrs[a].add(b)
            nbrs[b].add(a)
            computed.add(frozenset(near))
    assert set(nbrs) <= set(poly.marked) | ({root} if root in poly.marked else set())


@pytest.mark.parametrize("bank", BUILTIN + ("ppgn++(6)",))
def test_certificates_replay(bank):
    gen = np.random.default_rng(0)
    n = 6
    X = gen.standard_normal((n, n))
    X = X + X.T
    by_marks = {0: [], 1: [], 2: []}
    for p in family(6)[::5]:
        cert = C.certify(p, bank)
        if cert is None:
            continue
        C.verify(cert)
        if bank != "ppgn++(6)":
            _independent_step_check(bank, cert)
        by_marks[p.num_marks].append(cert)
    for m, certs in by_marks.items():
        assert certs, f"no computable polynomial with {m} marks sampled"
        ref = evaluate([c.poly for c in certs], torch.tensor(X)).numpy()
        for k, cert in enumerate(certs):
            got = cert.evaluate(X)
            np.testing.assert_allclose(got, ref[..., k], rtol=1e-9, atol=1e-6 * max(1.0, np.abs(ref[..., k]).max()),
                                       err_msg=str(cert))


@pytest.mark.parametrize("directed", [False, True])
def test_certificates_replay_on_multigraphs(directed):
    """Loops (diagonal entries), parallel edges and directed edges, on a
    non-symmetric X with a non-zero diagonal."""
    from graphequi.poly import basis

    X = np.random.default_rng(1).standard_normal((5, 5))
    if not directed:
        X = X + X.T
    for marks in (0, 1, 2):
        polys = [p for p in basis(3, marks, directed=directed) if not p.is_simple()][::3]
        certs = [c for c in (C.certify(p, "ppgn") for p in polys) if c is not None]
        assert certs
        ref = evaluate([c.poly for c in certs], torch.tensor(X)).numpy()
        for k, cert in enumerate(certs):
            C.verify(cert)
            np.testing.assert_allclose(cert.evaluate(X), ref[..., k], rtol=1e-9, atol=1e-8, err_msg=str(cert))


def test_feature_certificates_use_features_and_replay():
    k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    cert = C.certify(k4, "ppgn++(6)")
    assert any(s.action == "feature" for s in cert.steps)
    C.verify(cert)
    with pytest.raises(C.CertificateError):
        C.verify(cert, "ppgn")  # the same steps are not PPGN steps
    X = np.ones((5, 5)) - np.eye(5)  # K5: 5*4*3*2 = 120 labeled K4 homomorphisms
    assert cert.evaluate(X) == pytest.approx(120.0)


def test_tampered_certificates_are_rejected():
    c4 = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    cert = C.certify(c4, "ppgn")
    C.verify(cert)
    with pytest.raises(C.CertificateError):
        C.verify(C.Certificate(cert.poly, cert.bank, cert.steps[1:]))  # skipped a step
    with pytest.raises(C.CertificateError):
        C.verify(cert, "mpnn")  # a 2-neighbor elimination is no message
    first = cert.steps[0]
    wrong_scope = C.Step(first.action, first.rule, first.node, (0,), first.detail)
    with pytest.raises(C.CertificateError):
        C.verify(C.Certificate(cert.poly, cert.bank, (wrong_scope,) + cert.steps[1:]))


def test_user_defined_bank():
    @C.elimination_rule("three_way", "a 3-tensor contraction (3-FWL-like)")
    def three_way(state, x):
        return () if len(state.neighbors(x)) <= 3 else None

    bank = C.ContractionBank("order3", (three_way,), max_order=3)
    k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], marked=(0, 1))
    assert C.certify(k4, "ppgn") is None
    cert = C.certify(k4, bank)
    C.verify(cert, bank)
    assert [s.rule for s in cert.steps] == ["three_way", "three_way"]

    C.register_bank("order3-test")(lambda: bank)
    assert C.get_bank("order3-test") is bank
    assert "order3-test" in C.available_banks()


def test_register_bank_is_found_whatever_the_case():
    bank = C.ContractionBank("MyBank", (C.elimination_rule("leaf")(lambda s, x: ()),), max_order=1)
    C.register_bank("MyBank")(lambda: bank)
    assert C.get_bank("MyBank") is bank
    assert C.get_bank(" mybank ") is bank
    assert "mybank" in C.available_banks()
    with pytest.raises(ValueError, match="non-empty"):
        C.register_bank("  ")


def test_ppgn_plus_plus_bank_is_ppgn_plus_features():
    ppgn, plus = C.get_bank("ppgn"), C.get_bank("PPGN++(5)")
    assert plus.name == "ppgn++(5)"
    assert (plus.rules, plus.max_order, plus.rooted, plus.output) == \
        (ppgn.rules, ppgn.max_order, ppgn.rooted, ppgn.output)
    assert plus.features == select("ppgn++", max_degree=5)
    assert "features of degree <= 5" in plus.description and "PPGN++" in plus.source
    assert C.get_bank("ppgn++") is C.get_bank("ppgn++(6)")


def test_ppgn_bank_is_built_from_the_selection_rule():
    from graphequi.poly.selection import PPGN_ELIMINATIONS, ppgn_computable

    assert tuple(r.name for r in C.get_bank("ppgn").rules) == PPGN_ELIMINATIONS
    for p in family(5):
        assert (C.certify(p, "ppgn") is not None) == ppgn_computable(p), p


def test_verify_needs_the_root_step_of_a_rooted_bank():
    tri = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
    cert = C.certify(tri, "subgraph")
    assert cert.steps[0].action == "root"
    C.verify(cert)
    with pytest.raises(C.CertificateError, match="root step"):
        C.verify(C.Certificate(cert.poly, cert.bank, cert.steps[1:]))


def test_compat_names_and_deprecated_aliases():
    import graphequi.expressivity as E
    from graphequi.expressivity import analysis, banks, certificates, search, separation

    assert C.certify is search.certify is E.certify
    assert C.verify is certificates.verify and C.get_bank is banks.get_bank
    assert C.separating_polynomials is separation.separating_polynomials is E.separating_polynomials
    assert C.ExpressivityTable is analysis.ExpressivityTable
    with pytest.warns(DeprecationWarning, match="analyze"):
        old = C.analyse(["mpnn"], 2, marks=(0,))
    with pytest.warns(DeprecationWarning, match="banks"):
        by_keyword = E.analyze(archs=["mpnn"], max_degree=2, marks=(0,))
    assert old == by_keyword == E.analyze(["mpnn"], 2, marks=(0,))
    with pytest.warns(DeprecationWarning):
        assert old.archs == old.banks == ["mpnn"]
    with pytest.warns(DeprecationWarning):
        assert old.rows[0].arch == "mpnn"
    state = C.State.of(Multigraph(3, [(0, 1), (1, 2)]))
    with pytest.warns(DeprecationWarning, match="neighbors"):
        assert state.neighbours(1) == state.neighbors(1) == {0, 2}


def test_max_order_is_enforced():
    @C.elimination_rule("any")
    def any_node(state, x):
        return ()

    k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    assert C.certify(k4, C.ContractionBank("order2-any", (any_node,), max_order=2)) is None
    assert C.certify(k4, C.ContractionBank("order3-any", (any_node,), max_order=3)) is not None


def test_bad_input():
    with pytest.raises(TypeError, match="EliminationRule"):
        C.ContractionBank("bad", (lambda s, x: (),))
    rule = C.elimination_rule("r")(lambda s, x: ())
    with pytest.raises(ValueError, match="unique"):
        C.ContractionBank("bad", (rule, rule))
    with pytest.raises(ValueError, match="max_order"):
        C.ContractionBank("bad", (rule,), max_order=-1)
    with pytest.raises(ValueError, match="unknown bank"):
        C.get_bank("gat9000")
    with pytest.raises(TypeError):
        C.certify([(0, 1)], "ppgn")
    with pytest.raises(ValueError, match="max_degree"):
        C.analyze(["ppgn"], max_degree=0)
    cert = C.certify(Multigraph(2, [(0, 1)], marked=(0,)), "mpnn")
    with pytest.raises(ValueError, match="shape"):
        cert.evaluate(np.zeros((3, 4)))


# ---------------------------------------------------------------------------
# Soundness and non-triviality against the WL oracles
# ---------------------------------------------------------------------------
def _exp_pairs(limit: int):
    try:
        from graphequi.expressivity import load_exp
    except ImportError:
        return []
    path = default_source() / "exp"
    if not path.exists():
        return []
    small = [tuple(p) for p in load_exp(path) if p.first.number_of_nodes() <= 40]
    return small[:limit]


def _pool(k: int):
    """Non-isomorphic pairs that k-WL (k=1: color refinement, k=2: 2-FWL)
    cannot separate."""
    if k == 1:
        pairs = [tuple(p) for p in classic_pairs()]
        pairs += [(csl_graph(41, 2), csl_graph(41, 3)), cfi_pair(nx.cycle_graph(4)),
                  random_regular_pair(12, 3, seed=0)]
        pairs += _exp_pairs(3)
    else:
        pairs = [(rook_graph(4), shrikhande_graph()), cfi_pair(nx.complete_graph(4))]
    pairs = [p for p in pairs if wl_equivalent(p[0], p[1], k=k)]
    assert len(pairs) >= 2
    return pairs


def _values(pairs, polys, marks):
    """Per pair, the multiset (sorted) of each polynomial's values on both graphs."""
    graphs = [g for pair in pairs for g in pair]
    n = max(g.number_of_nodes() for g in graphs)
    X = torch.zeros(len(graphs), n, n, dtype=torch.float64)
    mask = torch.zeros(len(graphs), n, dtype=torch.bool)
    for i, g in enumerate(graphs):
        m = g.number_of_nodes()
        X[i, :m, :m] = torch.tensor(nx.to_numpy_array(g, nodelist=sorted(g)))
        mask[i, :m] = True
    vals = evaluate(list(polys), X, mask=mask).numpy()
    out = []
    for i, g in enumerate(graphs):
        m = g.number_of_nodes()
        v = vals[i]
        if marks == 1:
            v = v[:m]
        elif marks == 2:
            v = v[:m, :m].reshape(m * m, -1)
        out.append(np.sort(v.reshape(-1, len(polys)), axis=0))
    return [(out[2 * j], out[2 * j + 1]) for j in range(len(pairs))]


def _separating(pair_values):
    """Indices of polynomials whose value multisets differ on some pair."""
    sep = set()
    for a, b in pair_values:
        if a.shape != b.shape:
            return set(range(a.shape[1]))
        close = np.isclose(a, b, rtol=1e-9, atol=1e-9).all(axis=0)
        sep |= set(np.flatnonzero(~close).tolist())
    return sep


@pytest.fixture(scope="module")
def oracle_checks():
    """For each pool, every family polynomial up to the degree below, and the
    ones that separate some pair of the pool."""
    results = {}
    for k, max_degree in ((1, 5), (2, 6)):
        pairs = _pool(k)
        for marks in (0, 1, 2):
            polys = [p for d in range(1, max_degree + 1) for p in C.polynomial_family(d, marks)]
            # pair-level values cost n^2 per polynomial: large graphs (CSL(41), EXP, CFI over K4)
            # are compared at 0 and 1 marks only
            used = pairs if marks < 2 else [p for p in pairs if p[0].number_of_nodes() <= 24]
            sep = _separating(_values(used, polys, marks))
            results[(k, marks)] = (polys, {polys[i] for i in sep})
    return results


@pytest.mark.parametrize("bank,k", [("mpnn", 1), ("ppgn", 2), ("subgraph", 2), ("spen", 2)])
def test_soundness_and_nontriviality(oracle_checks, bank, k):
    """Computable polynomials never separate a pair the oracle cannot; some
    non-computable one does (so the pools test something)."""
    nontrivial = []
    for marks in (0, 1, 2):
        polys, separating = oracle_checks[(k, marks)]
        computed = computable_set(bank, polys)
        unsound = computed & separating
        assert not unsound, f"{bank}: computable yet separating a {k}-WL-equivalent pair: {sorted(unsound)[:3]}"
        nontrivial += sorted(separating - computed)
    assert nontrivial, f"no non-computable polynomial of {bank} separates a pair of the pool"
    if k == 2:
        k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
        assert k4 in nontrivial  # rook's graph has 4-cliques, Shrikhande's none


def test_separating_polynomials_against_numpy():
    gen = np.random.default_rng(3)
    tri = Multigraph(3, [(0, 1), (1, 2), (2, 0)])              # tr(A^3)
    deg = Multigraph(2, [(0, 1)], marked=(0,))                 # A 1
    walk2 = Multigraph(3, [(0, 2), (2, 1)], marked=(0, 1))     # A^2
    for trial in range(6):
        n = 7
        graphs = [nx.gnp_random_graph(n, 0.4, seed=int(gen.integers(1 << 30))) for _ in range(2)]
        As = [nx.to_numpy_array(g) for g in graphs]
        expected = set()
        if np.trace(As[0] @ As[0] @ As[0]) != np.trace(As[1] @ As[1] @ As[1]):
            expected.add(tri)
        if sorted(As[0].sum(1)) != sorted(As[1].sum(1)):
            expected.add(deg)
        if sorted((As[0] @ As[0]).ravel()) != sorted((As[1] @ As[1]).ravel()):
            expected.add(walk2)
        got = C.separating_polynomials([tuple(graphs)], [tri, deg, walk2])
        assert got == {0: expected}

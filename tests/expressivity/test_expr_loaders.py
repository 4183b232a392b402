"""Loaders: BREC raw/processed layouts, graph6, EXP/CEXP, CSL; corrupt files."""
from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from graphequi.datasets import default_source
from graphequi.expressivity import (
    CSL_SKIPS,
    cfi_pair,
    classic_pairs,
    csl_graph,
    random_regular_pair,
    wl_equivalent,
)
from graphequi.expressivity.loaders import (
    BREC_CATEGORIES,
    BREC_FILES,
    csl_pairs,
    load_brec,
    load_cexp,
    load_csl,
    load_exp,
    load_graph6,
    make_pairs,
)



def _g6(g: nx.Graph) -> str:
    return nx.to_graph6_bytes(g, header=False).strip().decode()


def _small_pairs(count: int, offset: int = 0) -> list[tuple[nx.Graph, nx.Graph]]:
    pool = [(p.first, p.second) for p in classic_pairs()]
    pool += [random_regular_pair(10, 3, seed=s) for s in range(3)]
    pool += [cfi_pair(nx.cycle_graph(3))]
    return [pool[(offset + i) % len(pool)] for i in range(count)]


def _write_brec_raw(folder: Path, counts: dict[str, int]) -> list[tuple[nx.Graph, nx.Graph]]:
    """Write the seven raw files in BREC's layouts; return the pairs in id order."""
    expected = []
    for k, (stem, (_, layout)) in enumerate(BREC_FILES.items()):
        pairs = _small_pairs(counts[stem], offset=k)
        expected += pairs
        strings = [(_g6(a), _g6(b)) for a, b in pairs]
        if layout == "flat":
            arr = np.array([s for pair in strings for s in pair])
            if stem == "dr":  # BREC's dr.npy holds bytes, the others str
                arr = arr.astype("S")
        else:
            arr = np.array(strings, dtype="S" if stem != "extension" else "U")
        np.save(folder / f"{stem}.npy", arr)
    return expected


def _same_pairs(got, expected):
    assert len(got) == len(expected)
    for pair, (a, b) in zip(got, expected):
        assert nx.utils.edges_equal(pair.first.edges(), a.edges())
        assert nx.utils.edges_equal(pair.second.edges(), b.edges())


def test_load_brec_raw_directory(tmp_path):
    counts = {"basic": 3, "regular": 2, "str": 2, "extension": 2, "cfi": 2, "4vtx": 1, "dr": 1}
    expected = _write_brec_raw(tmp_path, counts)
    pairs = load_brec(tmp_path)
    _same_pairs(pairs, expected)
    cats = [p.category for p in pairs]
    assert cats == ["Basic"] * 3 + ["Regular"] * 4 + ["Extension"] * 2 + ["CFI"] * 2 + ["4-Vertex", "DR"]
    assert [p.name for p in pairs] == [f"brec-{i}" for i in range(13)]


def test_load_brec_single_family_file_keeps_published_ids(tmp_path):
    _write_brec_raw(tmp_path, {s: 2 for s in BREC_FILES})
    cfi = load_brec(tmp_path / "cfi.npy")
    assert [p.name for p in cfi] == ["brec-260", "brec-261"]
    assert all(p.category == "CFI" for p in cfi)
    assert load_brec(tmp_path / "str.npy")[0].name == "brec-110"


def test_load_brec_processed_v3(tmp_path):
    # 400 pairs x 64 entries would be large; BREC's ids are positional, so a
    # short file with 3 blocks exercises the same indexing.
    pairs = _small_pairs(3)
    flat = []
    for a, b in pairs:
        for r in range(32):
            perm = np.random.default_rng(r).permutation(a.number_of_nodes())
            a_r = a if r == 0 else nx.relabel_nodes(a, dict(enumerate(perm.tolist())))
            b_r = b if r == 0 else nx.relabel_nodes(b, dict(enumerate(perm.tolist())))
            flat += [_g6(a_r), _g6(b_r)]
    np.save(tmp_path / "brec_v3.npy", np.array(flat))
    got = load_brec(tmp_path / "brec_v3.npy")
    _same_pairs(got, pairs)
    assert [p.category for p in got] == ["Basic"] * 3


def test_brec_category_ranges_cover_400_pairs():
    spans = sorted(BREC_CATEGORIES.values())
    assert spans[0][0] == 0 and spans[-1][1] == 400
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_load_brec_bad_files(tmp_path):
    _write_brec_raw(tmp_path, {s: 1 for s in BREC_FILES})
    (tmp_path / "dr.npy").unlink()
    with pytest.raises(ValueError, match="lacks dr.npy"):
        load_brec(tmp_path)
    np.save(tmp_path / "dr.npy", np.array(["C~", "C~", "C~"]))  # odd length
    with pytest.raises(ValueError, match=r"dr\.npy.*even number"):
        load_brec(tmp_path)
    np.save(tmp_path / "dr.npy", np.array(["C~", "not graph6!"]))
    with pytest.raises(ValueError, match=r"dr\.npy, pair 6: invalid graph6"):
        load_brec(tmp_path)
    np.save(tmp_path / "cfi.npy", np.array(["C~", "C~"]))  # flat where (k, 2) is expected
    with pytest.raises(ValueError, match=r"cfi\.npy: expected shape \(k, 2\)"):
        load_brec(tmp_path / "cfi.npy")
    np.save(tmp_path / "basic.npy", np.array([object(), object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_brec(tmp_path / "basic.npy")
    (tmp_path / "junk.npy").write_bytes(b"definitely not numpy")
    with pytest.raises(ValueError, match="junk.npy is not a readable numpy array"):
        load_brec(tmp_path / "junk.npy")
    with pytest.raises(ValueError, match="does not exist"):
        load_brec(tmp_path / "nope.npy")


def test_load_graph6_and_make_pairs(tmp_path):
    graphs = [csl_graph(13, s) for s in (2, 3, 5)]
    text = ">>graph6<<" + _g6(graphs[0]) + "\n\n" + "\n".join(_g6(g) for g in graphs[1:]) + "\n"
    text += nx.to_sparse6_bytes(nx.cycle_graph(5), header=False).decode()
    (tmp_path / "fam.g6").write_text(text)
    loaded = load_graph6(tmp_path / "fam.g6")
    assert len(loaded) == 4
    for g, h in zip(loaded, graphs):
        assert nx.utils.edges_equal(g.edges(), h.edges())
    assert nx.is_isomorphic(loaded[3], nx.cycle_graph(5))
    assert [p.name for p in make_pairs(loaded[:3], "all", "SR", "sr")] == ["sr-0-1", "sr-0-2", "sr-1-2"]
    assert len(make_pairs(loaded, "consecutive")) == 2
    with pytest.raises(ValueError, match="even number"):
        make_pairs(loaded[:3], "consecutive")
    (tmp_path / "bad.g6").write_text(_g6(graphs[0]) + "\n$$$garbage\n")
    with pytest.raises(ValueError, match=r"bad\.g6, line 2"):
        load_graph6(tmp_path / "bad.g6")
    (tmp_path / "empty.g6").write_text("\n")
    with pytest.raises(ValueError, match="no graphs"):
        load_graph6(tmp_path / "empty.g6")


def _write_ppgn(path: Path, graphs: list[nx.Graph]) -> None:
    lines = [str(len(graphs))]
    for g in graphs:
        lines.append(f"{g.number_of_nodes()} {g.graph.get('label', 0)}")
        for v in range(g.number_of_nodes()):
            nbrs = sorted(g[v])
            lines.append(" ".join(map(str, [v % 2, len(nbrs), *nbrs])))
    path.write_text("\n".join(lines) + "\n")


def test_load_exp_format_round_trip(tmp_path):
    pairs = _small_pairs(4)
    graphs = [g for pair in pairs for g in pair]
    _write_ppgn(tmp_path / "GRAPHSAT.txt", graphs)
    got = load_exp(tmp_path)
    _same_pairs(got, pairs)
    assert got[0].first.nodes[1]["label"] == 1 and got[0].category == "EXP"
    assert load_cexp(tmp_path / "GRAPHSAT.txt")[3].name == "cexp-3"


@pytest.mark.parametrize("text, match", [
    ("2\n3 0\n0 1 1\n1 1 0\n", "ends early"),
    ("1\n2 0\n0 2 1\n1 1 0\n", "'degree' neighbors"),
    ("1\n2 0\n0 1 7\n1 1 0\n", "outside"),
    ("1\n2 x\n", "expected integers"),
    ("1\n2 0\n0 1 1\n1 1 0\n", "odd number of graphs"),
])
def test_load_exp_corrupt(tmp_path, text, match):
    (tmp_path / "GRAPHSAT.txt").write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_exp(tmp_path)
    assert "GRAPHSAT.txt" in str(info.value)


def test_load_csl_rejects_foreign_pickle(tmp_path):
    import pickle

    import torch

    (tmp_path / "graphs_Kary_Deterministic_Graphs.pkl").write_bytes(pickle.dumps([os.getcwd]))
    torch.save(torch.zeros(1, dtype=torch.long), tmp_path / "y_Kary_Deterministic_Graphs.pt")
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load_csl(tmp_path)
    with pytest.raises(ValueError, match="lacks"):
        load_csl(tmp_path / "missing")


def test_load_csl_synthetic(tmp_path):
    import pickle

    import scipy.sparse as sp
    import torch

    graphs = [csl_graph(11, s) for s in (2, 3, 2)]
    mats = [sp.coo_matrix(nx.to_scipy_sparse_array(g) + sp.eye(11)) for g in graphs]
    (tmp_path / "graphs_Kary_Deterministic_Graphs.pkl").write_bytes(pickle.dumps(mats))
    torch.save(torch.tensor([0, 1, 0]), tmp_path / "y_Kary_Deterministic_Graphs.pt")
    got = load_csl(tmp_path)
    assert [g.graph["skip"] for g in got] == [2, 3, 2]
    assert all(nx.number_of_selfloops(g) == 0 and g.number_of_edges() == 22 for g in got)
    assert [p.name for p in csl_pairs(got)] == ["csl-0-1"]


@pytest.mark.skipif(not (default_source() / "csl_benchmarking_gnns").exists(), reason="shared CSL absent")
def test_real_csl():
    graphs = load_csl(default_source() / "csl_benchmarking_gnns")
    assert len(graphs) == 150
    assert all(g.number_of_nodes() == 41 and g.number_of_edges() == 82 for g in graphs)
    # Class c is the skip CSL_SKIPS[c], and every graph is isomorphic to the generator's.
    for g in graphs[::15]:
        assert g.graph["skip"] == CSL_SKIPS[g.graph["label"]]
        assert nx.vf2pp_is_isomorphic(g, csl_graph(41, g.graph["skip"]))
    pairs = csl_pairs(graphs)
    assert len(pairs) == 45
    assert all(wl_equivalent(p.first, p.second, k=1) for p in pairs)


@pytest.mark.skipif(not (default_source() / "cexp").exists(), reason="shared CEXP absent")
def test_real_cexp_half_1wl_identical():
    pairs = load_cexp(default_source() / "cexp")
    assert len(pairs) == 600
    assert sum(wl_equivalent(p.first, p.second, k=1, node_attr="label") for p in pairs) == 300

"""Resumable BREC runs (run_brec / run_oracle), the BREC table and the CLI on
a small folder in BREC's raw layout. Mechanics only: which pairs run, what
is recorded and counted, never whether a trained model separates a pair."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn import global_add_pool
from torch_geometric.utils import to_dense_adj

from graphequi.cli.main import main
from graphequi.expressivity import (BREC_REFERENCE, BRECConfig, BRECTable, GraphPair, classic_pairs,
                                    load_brec, read_records, rook_graph, run_brec, run_oracle,
                                    shrikhande_graph, stable_pair_id, wl_equivalent,
                                    with_polynomial_colors)
from graphequi.expressivity._graphs import SimpleGraph, as_simple_graph
from graphequi.expressivity.loaders import BREC_FILES
from graphequi.poly import triangle_count

FAST = BRECConfig(num_relabel=4, epochs=1, batch_size=8, ridge=0.0)


class TriangleModel(nn.Module):
    """An exact invariant beyond 1-WL: the triangle count along a fixed
    direction, scaled by one trained weight."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, batch):
        counts = triangle_count(to_dense_adj(batch.edge_index, batch.batch))
        return self.scale * (counts.unsqueeze(-1) + 1.0) * torch.linspace(-1.0, 2.0, 16)


class DriftingModel(nn.Module):
    """Nondeterministic: state updated at inference (a counter of the graphs
    seen), so the same graph gives a different output each time it is seen.
    Independent zero-mean noise would not do: BREC's statistic is built to
    accept it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 16)
        self.seen = 0

    def forward(self, batch):
        h = global_add_pool(self.lin(batch.x), batch.batch)
        step = self.seen + torch.arange(batch.num_graphs, dtype=h.dtype).unsqueeze(1)
        self.seen += batch.num_graphs
        return h + 0.01 * step * torch.linspace(1.0, 2.0, 16)


class CountingFactory:
    def __init__(self, cls):
        self.cls, self.calls = cls, 0

    def __call__(self, seed):
        self.calls += 1
        return self.cls()

    @property
    def pairs_run(self) -> int:
        """Models trained: every call but the one run_brec makes to read the
        batch-norm settings for the fingerprint."""
        return self.calls - 1


def _pairs():
    by_name = {p.name: p for p in classic_pairs()}
    keep = ["two_triangles/hexagon", "decalin/bicyclopentyl", "rook4x4/shrikhande"]
    cats = ["Basic", "Basic", "Regular"]
    return [GraphPair(by_name[n].first, by_name[n].second, c, f"brec-{i}")
            for i, (n, c) in enumerate(zip(keep, cats))]


def _write_brec_folder(folder):
    """Seven raw files in BREC's layouts (flat / rows, str / bytes entries)."""
    folder.mkdir(parents=True, exist_ok=True)
    classic = [(p.first, p.second) for p in classic_pairs()]
    content = {"basic": classic[:2], "regular": [classic[4]], "str": [classic[2]],
               "extension": [classic[3]], "cfi": [classic[0]], "4vtx": [classic[4]], "dr": [classic[1]]}
    g6 = lambda g: nx.to_graph6_bytes(g, header=False).strip()  # noqa: E731
    for k, (stem, (_, layout)) in enumerate(BREC_FILES.items()):
        strings = [(g6(a), g6(b)) for a, b in content[stem]]
        if k % 2:  # some published files hold str, others bytes
            strings = [(a.decode(), b.decode()) for a, b in strings]
        arr = np.array([s for p in strings for s in p]) if layout == "flat" else np.array(strings)
        np.save(folder / f"{stem}.npy", arr)
    return folder


# --- resumable runner ---------------------------------------------------------------

def test_resume_skips_finished_pairs(tmp_path):
    records = tmp_path / "r.jsonl"
    pairs = _pairs()
    first = CountingFactory(TriangleModel)
    run_brec(first, pairs[:2], records, method="tri", config=FAST, progress=False)
    assert first.pairs_run == 2 and len(read_records(records)) == 2
    again = CountingFactory(TriangleModel)
    report = run_brec(again, pairs, records, method="tri", config=FAST, progress=False)
    assert again.pairs_run == 1  # only the new pair
    assert [r["name"] for r in read_records(records)] == ["brec-0", "brec-1", "brec-2"]
    assert report.overall.total == 3
    # a finished run does nothing, and gives the same verdicts
    none = CountingFactory(TriangleModel)
    same = run_brec(none, pairs, records, method="tri", config=FAST, progress=False)
    assert none.pairs_run == 0 and same.verdicts == report.verdicts


def test_same_pair_same_verdict_alone_or_in_a_list(tmp_path):
    pairs = _pairs()
    alone = run_brec(lambda s: TriangleModel(), pairs[1:2], tmp_path / "a.jsonl", method="tri",
                     config=FAST, progress=False)
    full = run_brec(lambda s: TriangleModel(), pairs, tmp_path / "b.jsonl", method="tri",
                    config=FAST, progress=False)
    assert alone.verdicts[0] == next(v for v in full.verdicts if v.name == "brec-1")
    assert stable_pair_id("brec-17") == 17 and stable_pair_id("x") == stable_pair_id("x")


def test_interrupted_line_is_ignored_and_rerun(tmp_path):
    records = tmp_path / "r.jsonl"
    pairs = _pairs()[:2]
    run_brec(lambda s: TriangleModel(), pairs, records, method="tri", config=FAST, progress=False)
    lines = records.read_text().splitlines()
    records.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
    factory = CountingFactory(TriangleModel)
    run_brec(factory, pairs, records, method="tri", config=FAST, progress=False)
    assert factory.pairs_run == 1 and len(read_records(records)) == 2
    records.write_text("not json\n" + records.read_text())
    with pytest.raises(ValueError, match="line 1"):
        read_records(records)


def test_other_configuration_is_refused(tmp_path):
    records = tmp_path / "r.jsonl"
    run_brec(lambda s: TriangleModel(), _pairs()[:1], records, method="tri", config=FAST, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        run_brec(lambda s: TriangleModel(), _pairs()[:1], records, method="tri",
                 config=BRECConfig(num_relabel=4, epochs=2, batch_size=8), progress=False)


def test_time_limit_stops_starting_pairs(tmp_path):
    factory = CountingFactory(TriangleModel)
    report = run_brec(factory, _pairs(), tmp_path / "r.jsonl", method="tri", config=FAST,
                      progress=False, time_limit_s=0.0)
    assert factory.pairs_run == 0 and report.overall.total == 0


def test_reliability_fails_on_a_nondeterministic_model(tmp_path):
    records = tmp_path / "r.jsonl"
    cfg = BRECConfig(num_relabel=32, epochs=0, batch_size=8, ridge=1e-7)
    run_brec(lambda s: DriftingModel(), _pairs(), records, method="drift", config=cfg, progress=False)
    recs = read_records(records)
    assert recs and all(not r["reliable"] for r in recs)
    assert not any(r["separated"] for r in recs)
    for r in recs:  # a pair failing reliability is never counted
        assert r["separated"] == (bool(r["candidate"]) and r["reliable"])
        assert r["reliable"] == (r["t2_reliability"] < cfg.threshold)
    table = BRECTable.from_records(records, _pairs(), bounds={})
    failures = {c: cell.reliability_failures for c, cell in table.cells["drift"].items()}
    assert failures == {c: sum(1 for r in recs if r["category"] == c and not r["reliable"])
                        for c in ("Basic", "Regular")}


# --- table -------------------------------------------------------------------------

def test_table_sums_match_records_and_violations_are_found(tmp_path):
    records = tmp_path / "r.jsonl"
    pairs = _pairs()
    for oracle in ("1-WL", "2-FWL"):
        run_oracle(pairs, records, oracle, progress=False)
    # exactly invariant outputs (S = 0): pinv(S) alone gives T^2 = 0, the ridge keeps the signal
    ridged = BRECConfig(num_relabel=4, epochs=1, batch_size=8, ridge=1e-7)
    run_brec(lambda s: TriangleModel(), pairs, records, method="tri", config=ridged, progress=False)
    # declared 1-WL-bounded, a triangle model is a deliberate violation wherever it separates
    table = BRECTable.from_records(records, pairs, bounds={"tri": "1-WL"})
    recs = read_records(records)
    for method, row in table.cells.items():
        mine = [r for r in recs if r["method"] == method]
        for c, cell in row.items():
            in_c = [r for r in mine if r["category"] == c]
            assert cell.evaluated == len(in_c) and cell.total == sum(p.category == c for p in pairs)
            assert cell.separated == sum(r["separated"] for r in in_c)
        assert table.overall(method).separated == sum(r["separated"] for r in mine)
    separated_by_tri = {r["name"] for r in recs if r["method"] == "tri" and r["separated"]}
    assert "brec-0" in separated_by_tri  # two triangles vs hexagon: 2 triangles vs 0
    assert set(table.violating["tri"]) == separated_by_tri  # 1-WL separates none of these
    assert table.overall("tri").violations == len(separated_by_tri)
    assert table.violating["1-WL"] is None
    # 2-FWL separates the first two only
    assert [c.separated for c in table.cells["2-FWL"].values()] == [2, 0]
    data = table.to_dict()
    assert data["methods"]["tri"]["overall"]["separated"] == len(separated_by_tri)
    path = table.save(tmp_path / "t.json")
    assert json.loads(path.read_text()) == data
    assert path.with_suffix(".png").stat().st_size > 1000
    assert "violations" in path.with_suffix(".md").read_text()


def test_partial_rows_are_marked(tmp_path):
    records = tmp_path / "r.jsonl"
    pairs = _pairs()
    run_brec(lambda s: TriangleModel(), pairs[:1], records, method="tri", config=FAST, progress=False)
    table = BRECTable.from_records(records, pairs, bounds={"tri": "2-FWL"})
    basic = table.cells["tri"]["Basic"]
    assert (basic.evaluated, basic.total, basic.complete) == (1, 2, False)
    assert "(of 2)" in basic.label() and table.cells["tri"]["Regular"].label() == "-"
    assert table.violating["tri"] is None  # its bound was not run
    assert "n/a (run 2-FWL)" in table.format(markdown=False)


# --- polynomial oracles --------------------------------------------------------------

def test_polynomial_pair_colors_separate_rook_and_shrikhande():
    rook, shrikhande = rook_graph(4), shrikhande_graph()
    # brute force: the rook's graph has K4s (its rows), Shrikhande none; K4 is a ppgn++ polynomial
    assert max(len(c) for c in nx.find_cliques(rook)) == 4
    assert max(len(c) for c in nx.find_cliques(shrikhande)) == 3
    assert wl_equivalent(rook, shrikhande, k=2)
    a, b = with_polynomial_colors(rook), with_polynomial_colors(shrikhande)
    assert a.pair_features.shape == (16, 16, 12)
    assert not wl_equivalent(a, b, k=2)


def test_polynomial_colors_are_invariant_to_relabeling():
    g = nx.random_regular_graph(3, 12, seed=3)
    perm = np.random.default_rng(0).permutation(12)
    h = nx.relabel_nodes(g, {i: int(perm[i]) for i in range(12)})
    h = nx.Graph(sorted(h.edges()))
    h.add_nodes_from(range(12))
    h = nx.relabel_nodes(h, {v: i for i, v in enumerate(sorted(h.nodes()))})
    for level, k in (("pair", 2), ("node", 1), ("node", 2)):
        assert wl_equivalent(with_polynomial_colors(g, level=level), with_polynomial_colors(h, level=level),
                             k=k)


def test_pair_feature_errors():
    g = as_simple_graph(nx.path_graph(3))
    with pytest.raises(ValueError, match=r"\[n, n, q\]"):
        SimpleGraph(3, g.edges, g.features, np.zeros((3, 2, 1)))
    with pytest.raises(ValueError, match="NaN"):
        SimpleGraph(3, g.edges, g.features, np.full((3, 3, 1), np.nan))
    a = SimpleGraph(3, g.edges, g.features, np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="same pair features"):
        wl_equivalent(a, g, k=2)
    with pytest.raises(ValueError, match="need k=2"):
        wl_equivalent(a, a, k=1)
    with pytest.raises(ValueError, match="level"):
        with_polynomial_colors(g, level="edge")
    with pytest.raises(ValueError, match="unknown oracle"):
        run_oracle(_pairs(), "unused.jsonl", "3-WL")


def test_runner_bad_input(tmp_path):
    records = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match="no pairs"):
        run_brec(lambda s: TriangleModel(), [], records, method="tri", config=FAST, progress=False)
    with pytest.raises(ValueError, match="unique"):
        run_brec(lambda s: TriangleModel(), _pairs()[:1] * 2, records, method="tri", config=FAST,
                 progress=False)
    with pytest.raises(ValueError, match="seeds"):
        run_brec(lambda s: TriangleModel(), _pairs(), records, method="tri", seeds=(), progress=False)
    with pytest.raises(ValueError, match="time_limit_s"):
        run_brec(lambda s: TriangleModel(), _pairs(), records, method="tri", time_limit_s=-1.0,
                 progress=False)
    records.write_text(json.dumps({"method": "tri"}) + "\n")
    with pytest.raises(ValueError, match="method, name and category"):
        read_records(records)
    with pytest.raises(SystemExit, match="does not exist"):
        main(["expressivity", "--skip-symbolic", "--pairs", f"brec:{tmp_path / 'none'}", "--out",
              str(tmp_path), "--no-progress"])
    with pytest.raises(SystemExit, match="lacks"):
        main(["expressivity", "--skip-symbolic", "--pairs", f"brec:{tmp_path}", "--out",
              str(tmp_path / "o"), "--no-progress"])
    with pytest.raises(SystemExit, match="batch_size"):
        main(["expressivity", "--skip-symbolic", "--pairs", f"brec:{_write_brec_folder(tmp_path / 'b')}",
              "--batch-size", "3", "--out", str(tmp_path / "o"), "--no-progress"])


# --- CLI end to end -------------------------------------------------------------------

def test_cli_on_a_brec_folder_resumes(tmp_path, capsys):
    folder = _write_brec_folder(tmp_path / "brec")
    pairs = load_brec(folder)
    out = tmp_path / "out"
    argv = ["expressivity", "--skip-symbolic", "--pairs", f"brec:{folder}", "--model", "gin",
            "--model", "ppgn", "--epochs", "1", "--hidden", "4", "--layers", "1", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "violations" in text and "Basic" in text
    records = read_records(out / "pairs_records.jsonl")
    methods = {r["method"] for r in records}
    assert methods == {"1-WL", "2-FWL", "1-WL+ppgn++(6)", "2-FWL+ppgn++(6)", "gin", "ppgn"}
    assert all(sum(r["method"] == m for r in records) == len(pairs) for m in methods)
    table = json.loads((out / "brec_table.json").read_text())
    assert table["totals"] == {"Basic": 2, "Regular": 2, "Extension": 1, "CFI": 1, "4-Vertex": 1, "DR": 1}
    assert table["methods"]["1-WL"]["overall"]["separated"] == 0
    assert table["bounds"] == {"gin": "1-WL", "ppgn": "2-FWL"}
    assert (out / "brec_table.png").stat().st_size > 1000
    # the rerun runs nothing new
    assert main(argv) == 0
    assert len(read_records(out / "pairs_records.jsonl")) == len(records)
    # one category only; another configuration under the same records is refused
    sub = tmp_path / "sub"
    assert main(argv[:-3] + ["--out", str(sub), "--category", "Basic", "--oracles", "", "--no-progress"]) == 0
    assert {r["category"] for r in read_records(sub / "pairs_records.jsonl")} == {"Basic"}
    with pytest.raises(SystemExit, match="another configuration"):
        main(argv[:-3] + ["--out", str(sub), "--category", "Basic", "--oracles", "", "--no-progress",
                          "--batch-size", "16"])
    with pytest.raises(SystemExit, match="category 'Nope'"):
        main(argv + ["--category", "Nope"])
    with pytest.raises(SystemExit, match="unknown --model"):
        main(argv + ["--model", "transformer"])
    with pytest.raises(SystemExit, match="unknown oracle"):
        main(argv + ["--oracles", "5-WL"])


def test_reference_preset_is_brecs():
    assert (BREC_REFERENCE.batch_size, BREC_REFERENCE.ridge, BREC_REFERENCE.statistic) == (32, 0.0, "brec")
    assert (BREC_REFERENCE.num_relabel, BREC_REFERENCE.epochs, BREC_REFERENCE.lr) == (32, 20, 1e-4)


def test_registered_model_gets_cli_row_and_bound(tmp_path, monkeypatch):
    from graphequi.expressivity import models

    for name in ("_BUILDERS", "MODEL_BOUNDS", "MODEL_DEFAULTS"):
        monkeypatch.setattr(models, name, dict(getattr(models, name)))
    monkeypatch.setattr(models, "MODELS", list(models.MODELS))
    models.register_model("triangles", lambda hidden, layers, dim: (lambda seed: TriangleModel(), None),
                          bound="1-WL")
    assert "triangles" in models.MODELS and models.MODEL_BOUNDS["triangles"] == "1-WL"
    folder = _write_brec_folder(tmp_path / "brec")
    out = tmp_path / "out"
    assert main(["expressivity", "--skip-symbolic", "--pairs", f"brec:{folder}", "--model", "triangles",
                 "--oracles", "1-WL", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    table = json.loads((out / "brec_table.json").read_text())
    assert table["bounds"] == {"triangles": "1-WL"}
    assert table["methods"]["triangles"]["violating_pairs"] is not None
    with pytest.raises(TypeError, match="callable"):
        models.register_model("broken", None, bound=None)


def test_built_in_models_keep_cumulative_norm_statistics():
    from torch.nn.modules.batchnorm import _BatchNorm

    from graphequi.expressivity import models

    for name in models.MODELS:
        model = models.model_factory(name, hidden=8, layers=2)[0](0)
        norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        assert norms and all(m.momentum is None for m in norms), name
    # after k steps the running mean is the plain mean of the k batch means
    bn = models.with_cumulative_norm_statistics(torch.nn.Sequential(torch.nn.BatchNorm1d(3)))[0]
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, generator=gen) + 5.0 * k for k in range(4)]
    for x in batches:
        bn(x)
    torch.testing.assert_close(bn.running_mean, torch.stack([x.mean(0) for x in batches]).mean(0))


def test_norm_momentum_enters_the_fingerprint(tmp_path):
    from graphequi.expressivity import models, norm_statistics_marker

    class NormedTriangles(TriangleModel):
        def __init__(self, momentum):
            super().__init__()
            self.norm = nn.BatchNorm1d(16, momentum=momentum)

    assert norm_statistics_marker(torch.nn.Linear(2, 2)) == ""
    ema = NormedTriangles(0.1)
    assert norm_statistics_marker(ema) == " batch-norm momentum 0.1"
    assert norm_statistics_marker(models.with_cumulative_norm_statistics(ema)) == " batch-norm momentum None"
    # the same method and description, other batch-norm statistics: refused, not mixed
    records = tmp_path / "r.jsonl"
    run_brec(lambda s: NormedTriangles(0.1), _pairs()[:1], records, method="tri", model="triangles",
             config=FAST, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        run_brec(lambda s: NormedTriangles(None), _pairs()[:1], records, method="tri", model="triangles",
                 config=FAST, progress=False)
    # building the model to read its norms leaves the global random state alone
    state = torch.random.get_rng_state()
    run_brec(lambda s: (torch.manual_seed(s + 123), NormedTriangles(0.1))[1], _pairs()[:1], records,
             method="tri", model="triangles", config=FAST, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_model_factory_dtype_casts_the_model_and_its_inputs():
    from torch_geometric.data import Batch

    from graphequi.expressivity import models
    from graphequi.expressivity.brec import to_data

    pair = classic_pairs()[0]
    model_fn, transform = models.model_factory("ppgn++", hidden=8, layers=2, dtype=torch.float64)
    assert repr(transform) == repr(models.model_factory("ppgn++", hidden=8, layers=2, dtype=torch.float64)[1])
    assert "float64" in repr(transform)
    model = model_fn(0).eval()
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    batch = Batch.from_data_list([transform(to_data(g, None)) for g in (pair.first, pair.second)])
    assert model(batch).dtype == torch.float64
    with pytest.raises(TypeError, match="floating torch.dtype"):
        models.model_factory("gin", dtype=torch.int64)


def test_cli_max_nodes_and_dtype(tmp_path):
    folder = _write_brec_folder(tmp_path / "brec")
    pairs = load_brec(folder)
    sizes = {p.name: max(p.first.number_of_nodes(), p.second.number_of_nodes()) for p in pairs}
    cut = sorted(sizes.values())[len(sizes) // 2]
    out = tmp_path / "out"
    argv = ["expressivity", "--skip-symbolic", "--pairs", f"brec:{folder}", "--model", "gin", "--oracles", "",
            "--epochs", "1", "--hidden", "4", "--layers", "1", "--out", str(out), "--no-progress",
            "--max-nodes", str(cut)]
    assert main(argv) == 0
    names = {r["name"] for r in read_records(out / "pairs_records.jsonl")}
    assert names == {name for name, n in sizes.items() if n <= cut} and len(names) < len(pairs)
    # float64 is another configuration: refused under the same row name, accepted under a tag
    with pytest.raises(SystemExit, match="another configuration"):
        main(argv + ["--dtype", "float64"])
    assert main(argv + ["--dtype", "float64", "--tag", "@float64"]) == 0
    records = read_records(out / "pairs_records.jsonl", "gin@float64")
    assert {r["name"] for r in records} == names
    with pytest.raises(SystemExit, match="at most 0 nodes"):
        main(argv[:-1] + ["0"])

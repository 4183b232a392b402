"""BREC protocol (separates) and exact oracle counts (oracle_separation)."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn import GIN, global_add_pool
from torch_geometric.utils import degree, to_dense_adj

from graphequi.expressivity import GraphPair, cfi_pair, classic_pairs, csl_graph
from graphequi.expressivity.brec import (
    BREC_THRESHOLD,
    BRECConfig,
    SeparationReport,
    hotelling_t2,
    oracle_separation,
    separates,
)
from graphequi.expressivity.loaders import BREC_FILES, load_brec
from graphequi.poly import triangle_count


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: intra-op threads only add contention on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TriangleModel(nn.Module):
    """Sees the triangle count of each graph (an exact invariant) via an MLP."""

    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16))

    def forward(self, batch):
        adj = to_dense_adj(batch.edge_index, batch.batch)
        return self.mlp(triangle_count(adj).unsqueeze(-1))


class DegreeSquaresModel(nn.Module):
    """Parameter-free invariant: the sum of squared degrees (path_4: 10,
    star_3: 12) along a fixed direction. Equal graphs give equal outputs
    exactly, different sums differ by a constant vector: T^2 ~ |d|^2 / ridge."""

    def forward(self, batch):
        deg = degree(batch.edge_index[0], batch.num_nodes)
        squares = global_add_pool((deg ** 2).unsqueeze(-1), batch.batch)
        return squares * torch.linspace(1.0, 2.0, 16)


class GINModel(nn.Module):
    """1-WL-bounded: GIN + sum pooling."""

    def __init__(self):
        super().__init__()
        self.gin = GIN(1, 16, num_layers=3, out_channels=16)

    def forward(self, batch):
        return global_add_pool(self.gin(batch.x, batch.edge_index), batch.batch)


class PositionModel(nn.Module):
    """Depends on the position of a graph inside the batch: not a graph function."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 16)

    def forward(self, batch):
        parity = torch.arange(batch.num_graphs) % 2
        return self.lin(nn.functional.one_hot(parity, 2).float())


def _pairs():
    by_name = {p.name: p for p in classic_pairs()}
    return [by_name["two_triangles/hexagon"], by_name["decalin/bicyclopentyl"],
            GraphPair(nx.path_graph(4), nx.star_graph(3), "degrees", "path/star")]


def test_threshold_is_31_f_quantile():
    from scipy.stats import f

    assert round(31 * f.ppf(0.95, 16, 16), 2) == BREC_THRESHOLD


def test_hotelling_t2_matches_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 4)) + 0.3
    d = x - y
    mean = d.mean(0)
    expected = mean @ np.linalg.inv(np.cov(d.T)) @ mean
    got = hotelling_t2(torch.tensor(x), torch.tensor(y), ridge=0.0)
    assert got == pytest.approx(expected, rel=1e-9)
    assert hotelling_t2(torch.tensor(x), torch.tensor(y), ridge=0.0, statistic="hotelling") == \
        pytest.approx(32 * expected, rel=1e-9)
    # Exactly constant differences: the reference pinv gives 0, the ridge does not.
    const = torch.ones(32, 16)
    assert hotelling_t2(const, torch.zeros(32, 16), ridge=0.0) == 0.0
    assert hotelling_t2(const, torch.zeros(32, 16)) > 1e6
    with pytest.raises(ValueError, match="x and y"):
        hotelling_t2(torch.ones(32, 3), torch.ones(31, 3))


def test_invariant_model_separates_the_pair_its_invariant_differs_on():
    report = separates(lambda seed: TriangleModel(), _pairs(), progress=False)
    verdicts = {v.name: v for v in report.verdicts}
    assert verdicts["two_triangles/hexagon"].separated  # 2 vs 0 triangles
    assert verdicts["two_triangles/hexagon"].t2 > 1e3 * BREC_THRESHOLD
    # No triangles on either side: identical invariant, not separated.
    assert not verdicts["decalin/bicyclopentyl"].separated
    assert not verdicts["path/star"].separated
    assert all(v.reliable and v.t2_reliability < 1.0 for v in report.verdicts)
    assert report.counts["classic"].separated == 1 and report.overall.separated == 1
    assert report.method == "brec:TriangleModel"


def test_gin_never_separates_1wl_equivalent_pairs():
    report = separates(lambda seed: GINModel(), _pairs(), progress=False)
    verdicts = {v.name: v for v in report.verdicts}
    # GIN is bounded by 1-WL whatever its weights: equal outputs up to rounding
    for name in ("two_triangles/hexagon", "decalin/bicyclopentyl"):
        assert not verdicts[name].separated and verdicts[name].t2 < 1.0
    # path/star: whether random weights separate it is luck; the verdict must
    # still be the statistic's, and the counts the verdicts'
    for v in report.verdicts:
        assert v.separated == (v.candidate and v.reliable)
        assert not v.candidate or v.t2 > BREC_THRESHOLD
        assert v.reliable == (v.t2_reliability < BREC_THRESHOLD)
    degrees = int(verdicts["path/star"].separated)
    assert report.counts == {
        "classic": type(report.overall)(2, 0, 0), "degrees": type(report.overall)(1, degrees, 0)}


def test_an_invariant_that_differs_separates_degree_sequences():
    report = separates(lambda seed: DegreeSquaresModel(), _pairs(), progress=False)
    verdicts = {v.name: v for v in report.verdicts}
    assert verdicts["path/star"].separated and verdicts["path/star"].t2 > 1e3 * BREC_THRESHOLD
    # 1-WL-equivalent graphs have equal degree sequences: identical outputs
    for name in ("two_triangles/hexagon", "decalin/bicyclopentyl"):
        assert not verdicts[name].separated and verdicts[name].t2 == 0.0
    assert report.reliability_failures == ()
    assert report.overall.separated == 1


def test_reliability_check_voids_position_dependent_models():
    report = separates(lambda seed: PositionModel(), _pairs()[:2], progress=False)
    assert report.overall.reliability_failures == 2 and report.overall.separated == 0
    assert all(v.t2 > BREC_THRESHOLD and not v.reliable for v in report.verdicts)
    assert set(report.reliability_failures) == {"two_triangles/hexagon", "decalin/bicyclopentyl"}
    assert "reliability failures" in report.table()


def test_deterministic_and_restores_global_rng():
    pairs = _pairs()[2:]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = separates(lambda seed: GINModel(), pairs, seeds=(0, 1), progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = separates(lambda seed: GINModel(), pairs, seeds=(0, 1), progress=False)
    assert [v.t2 for v in a.verdicts] == [v.t2 for v in b.verdicts]
    assert [v.seed for v in a.verdicts] == [0, 1]
    assert a.overall.total == 1  # one pair, counted once across seeds


def test_report_save_writes_json_and_plot(tmp_path):
    report = oracle_separation(classic_pairs(), k=2)
    path = report.save(tmp_path / "oracle.json")
    data = json.loads(path.read_text())
    assert data["overall"] == {"total": 5, "separated": 4, "reliability_failures": 0}
    assert (tmp_path / "oracle.png").stat().st_size > 1000


def test_oracle_separation_per_category():
    pairs = [GraphPair(*cfi_pair(base), "CFI", f"cfi-{name}") for name, base in
             [("C5", nx.cycle_graph(5)), ("diamond", nx.diamond_graph()), ("K4", nx.complete_graph(4))]]
    pairs += classic_pairs()
    pairs += [GraphPair(csl_graph(17, 2), csl_graph(17, 3), "CSL", "csl")]
    one, two = oracle_separation(pairs, k=1), oracle_separation(pairs, k=2)
    assert one.overall.separated == 0
    assert {c: str(k) for c, k in two.counts.items()} == {"CFI": "2/3", "classic": "4/5", "CSL": "1/1"}
    assert two.categories == ("CFI", "classic", "CSL")
    assert "cfi-K4" not in two.separated_names and "cfi-C5" in two.separated_names


def test_oracle_on_brec_format_files(tmp_path):
    # Files in BREC's raw layout, loaded and counted in BREC's category order.
    cfi = [cfi_pair(nx.cycle_graph(4)), cfi_pair(nx.complete_graph(4))]
    classic = [(p.first, p.second) for p in classic_pairs()]
    content = {"basic": classic[:2], "regular": [classic[4]], "str": [classic[2]], "extension": [classic[3]],
               "cfi": cfi, "4vtx": [classic[4]], "dr": [classic[4]]}
    g6 = lambda g: nx.to_graph6_bytes(g, header=False).strip().decode()  # noqa: E731
    for stem, (_, layout) in BREC_FILES.items():
        strings = [(g6(a), g6(b)) for a, b in content[stem]]
        arr = np.array([s for p in strings for s in p]) if layout == "flat" else np.array(strings)
        np.save(tmp_path / f"{stem}.npy", arr)
    report = oracle_separation(load_brec(tmp_path), k=2)
    assert report.categories == ("Basic", "Regular", "Extension", "CFI", "4-Vertex", "DR")
    assert {c: str(k) for c, k in report.counts.items()} == {
        "Basic": "2/2", "Regular": "1/2", "Extension": "1/1", "CFI": "1/2", "4-Vertex": "0/1", "DR": "0/1"}


def test_bad_input():
    pairs = _pairs()[:1]
    with pytest.raises(ValueError, match="unknown protocol"):
        separates(lambda s: GINModel(), pairs, protocol="other", progress=False)
    with pytest.raises(ValueError, match="no pairs"):
        separates(lambda s: GINModel(), [], progress=False)
    with pytest.raises(TypeError, match="nn.Module"):
        separates(lambda s: "model", pairs, progress=False)

    class Wrong(nn.Module):
        def forward(self, batch):
            return torch.zeros(batch.num_graphs, 3)

    with pytest.raises(ValueError, match=r"two_triangles/hexagon.*\[num_graphs, 16\]"):
        separates(lambda s: Wrong(), pairs, progress=False)

    class NaNModel(Wrong):
        def forward(self, batch):
            return torch.full((batch.num_graphs, 16), float("nan"))

    with pytest.raises(ValueError, match="NaN"):
        separates(lambda s: NaNModel(), pairs, progress=False)
    with pytest.raises(ValueError, match="batch_size must be even"):
        BRECConfig(batch_size=15)
    with pytest.raises(TypeError, match="pair 0"):
        oracle_separation([nx.path_graph(3)])
    with pytest.raises(ValueError, match="unique"):
        oracle_separation([GraphPair(nx.path_graph(3), nx.path_graph(3), "", "x")] * 2)
    assert isinstance(oracle_separation([(nx.path_graph(3), nx.path_graph(3))]), SeparationReport)

"""BREC's stored relabelings (brec_v3.npy layout): loading, use by the
protocol instead of drawn relabelings, fingerprints, the CLI flag and bad
input. Small files in the same layout stand in for BREC's 51,200 graphs."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.utils import degree

from graphequi.cli.main import main
from graphequi.expressivity import (BRECConfig, GraphPair, StoredRelabelings, classic_pairs,
                                    hotelling_t2, load_brec, load_brec_relabelings, read_records,
                                    run_brec, separates)

R = 4  # relabelings per graph in these files (BREC: 32)
CFG = BRECConfig(num_relabel=R, epochs=0, batch_size=8, ridge=0.0)


def _relabel(g: nx.Graph, rng: np.random.Generator) -> nx.Graph:
    perm = rng.permutation(g.number_of_nodes()).tolist()
    h = nx.relabel_nodes(g, dict(enumerate(perm)))
    out = nx.Graph()
    out.add_nodes_from(range(g.number_of_nodes()))
    out.add_edges_from(sorted(h.edges()))
    return out


def _g6(g: nx.Graph) -> bytes:
    return nx.to_graph6_bytes(g, header=False).strip()


def _pairs(count: int = 3) -> list[GraphPair]:
    classic = classic_pairs()
    return [GraphPair(classic[i].first, classic[i].second, "Basic", f"brec-{i}") for i in range(count)]


def _write_stored(path, pairs, seed: int = 0):
    """BREC's layout: P pair blocks (first/second interleaved), then P
    reliability blocks (here of the second graph). Returns the graphs written."""
    rng = np.random.default_rng(seed)
    blocks = [[g for _ in range(R) for g in (_relabel(p.first, rng), _relabel(p.second, rng))] for p in pairs]
    reliability = [[_relabel(p.second, rng) for _ in range(2 * R)] for p in pairs]
    flat = [_g6(g) for block in blocks + reliability for g in block]
    np.save(path, np.array(flat))
    return blocks, reliability


class FirstNodeDegree(nn.Module):
    """Not permutation invariant: reads the degree of each graph's node 0, so
    its outputs tell which relabelings it was given. Exact small integers
    times a fixed vector, so batching does not change a bit."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, batch):
        deg = degree(batch.edge_index[0], batch.num_nodes)
        return self.scale * (deg[batch.ptr[:-1]] + 1.0).unsqueeze(-1) * torch.linspace(-1.0, 2.0, 16)


def _expected_t2(graphs) -> float:
    out = torch.stack([(g.degree(0) + 1.0) * torch.linspace(-1.0, 2.0, 16) for g in graphs])
    return hotelling_t2(out[0::2], out[1::2], CFG.ridge, CFG.statistic)


def test_load_returns_the_blocks_in_brec_order(tmp_path):
    pairs = _pairs()
    blocks, reliability = _write_stored(tmp_path / "brec_v3.npy", pairs)
    stored = load_brec_relabelings(tmp_path / "brec_v3.npy", num_relabel=R)
    assert len(stored) == 3 and list(stored) == ["brec-0", "brec-1", "brec-2"]
    assert "brec-2" in stored and "brec-3" not in stored and "other-1" not in stored
    for i in range(3):
        got = stored[f"brec-{i}"]
        assert isinstance(got, StoredRelabelings)
        for graph, want in zip(got.pairs + got.reliability, blocks[i] + reliability[i]):
            assert nx.utils.edges_equal(graph.edges(), want.edges())
    with pytest.raises(KeyError):
        stored["brec-3"]
    assert "brec_v3.npy" in repr(stored) and stored.source == "brec_v3.npy"


def test_protocol_uses_the_stored_graphs(tmp_path):
    pairs = _pairs()
    blocks, reliability = _write_stored(tmp_path / "s.npy", pairs)
    stored = load_brec_relabelings(tmp_path / "s.npy", num_relabel=R)
    report = separates(lambda s: FirstNodeDegree(), pairs, config=CFG, progress=False, relabelings=stored)
    drawn = separates(lambda s: FirstNodeDegree(), pairs, config=CFG, progress=False)
    for i, verdict in enumerate(report.verdicts):
        assert verdict.t2 == _expected_t2(blocks[i])
        assert verdict.t2_reliability == _expected_t2(reliability[i])
    # the drawn relabelings start with the identity, the stored ones do not
    assert [v.t2 for v in report.verdicts] != [v.t2 for v in drawn.verdicts]


def test_run_brec_fingerprints_stored_relabelings_apart(tmp_path):
    pairs = _pairs(2)
    _write_stored(tmp_path / "s.npy", pairs)
    stored = load_brec_relabelings(tmp_path / "s.npy", num_relabel=R)
    records = tmp_path / "r.jsonl"
    run_brec(lambda s: FirstNodeDegree(), pairs, records, method="m", config=CFG, progress=False,
             relabelings=stored)
    first = read_records(records)
    again = run_brec(lambda s: FirstNodeDegree(), pairs, records, method="m", config=CFG, progress=False,
                     relabelings=stored)
    assert read_records(records) == first and again.overall.total == 2  # resumed: nothing new
    with pytest.raises(ValueError, match="another configuration"):
        run_brec(lambda s: FirstNodeDegree(), pairs, records, method="m", config=CFG, progress=False)


def test_stored_relabelings_bad_input(tmp_path):
    pairs = _pairs()
    _write_stored(tmp_path / "s.npy", pairs)
    stored = load_brec_relabelings(tmp_path / "s.npy", num_relabel=R)
    model_fn = lambda s: FirstNodeDegree()  # noqa: E731
    with pytest.raises(ValueError, match="num_relabel=8 needs 16 of each"):
        separates(model_fn, pairs[:1], config=BRECConfig(num_relabel=8, epochs=0), progress=False,
                  relabelings=stored)
    # a misaligned file: brec-0's graphs stored for another pair (of another size)
    misaligned = [GraphPair(pairs[1].first, pairs[1].second, "Basic", "brec-0")]
    with pytest.raises(ValueError, match="stored graph 0 is not a relabeling of the pair's first graph"):
        separates(model_fn, misaligned, config=CFG, progress=False, relabelings=stored)
    other = [GraphPair(pairs[0].first, pairs[0].second, "Basic", "pair-0")]
    with pytest.raises(ValueError, match="no entry for pair 'pair-0'"):
        separates(model_fn, other, config=CFG, progress=False, relabelings=stored)
    mixed = StoredRelabelings(stored["brec-0"].pairs, stored["brec-0"].reliability[:R] + stored["brec-1"].reliability[:R])
    with pytest.raises(ValueError, match="reliability graphs must all relabel one graph"):
        separates(model_fn, pairs[:1], config=CFG, progress=False, relabelings={"brec-0": mixed})
    np.save(tmp_path / "short.npy", np.array([_g6(pairs[0].first)] * (4 * R + 1)))
    with pytest.raises(ValueError, match=r"flat array of P \* 16 graph6 strings"):
        load_brec_relabelings(tmp_path / "short.npy", num_relabel=R)
    with pytest.raises(ValueError, match="does not exist"):
        load_brec_relabelings(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="num_relabel must be >= 1"):
        load_brec_relabelings(tmp_path / "s.npy", num_relabel=0)
    bad = np.array([_g6(pairs[0].first)] * (4 * R))
    bad[1] = b"~~~~"
    np.save(tmp_path / "corrupt.npy", bad)
    with pytest.raises(ValueError, match="corrupt.npy, pair 0, entry 1"):
        load_brec_relabelings(tmp_path / "corrupt.npy", num_relabel=R)["brec-0"]


def test_cli_relabelings_flag(tmp_path):
    folder = tmp_path / "brec"
    folder.mkdir()
    pairs = _pairs(2)
    np.save(folder / "basic.npy", np.array([_g6(g) for p in pairs for g in p]))
    _write_stored(tmp_path / "brec_v3.npy", pairs)
    assert [p.name for p in load_brec(folder / "basic.npy")] == ["brec-0", "brec-1"]
    out = tmp_path / "out"
    argv = ["expressivity", "--skip-symbolic", "--pairs", f"brec:{folder / 'basic.npy'}", "--model", "gin",
            "--epochs", "1", "--hidden", "4", "--layers", "1", "--oracles", "", "--out", str(out),
            "--no-progress", "--relabelings", str(tmp_path / "brec_v3.npy")]
    with pytest.raises(SystemExit, match=r"flat array of P \* 128"):  # the CLI keeps BREC's 32 relabelings
        main(argv)
    full = tmp_path / "full.npy"
    rng = np.random.default_rng(1)
    blocks = [[g for _ in range(32) for g in (_relabel(p.first, rng), _relabel(p.second, rng))] for p in pairs]
    rel = [[_relabel(p.first, rng) for _ in range(64)] for p in pairs]
    np.save(full, np.array([_g6(g) for b in blocks + rel for g in b]))
    assert main(argv[:-1] + [str(full)]) == 0
    records = read_records(out / "pairs_records.jsonl")
    assert [r["name"] for r in records] == ["brec-0", "brec-1"]
    with pytest.raises(SystemExit, match="does not exist"):
        main(argv[:-1] + [str(tmp_path / "nope.npy")])


def test_cli_lr_and_tag_give_their_own_rows(tmp_path):
    folder = tmp_path / "brec"
    folder.mkdir()
    pairs = _pairs(2)
    np.save(folder / "basic.npy", np.array([_g6(g) for p in pairs for g in p]))
    out = tmp_path / "out"
    argv = ["expressivity", "--skip-symbolic", "--pairs", f"brec:{folder / 'basic.npy'}", "--model", "gin",
            "--epochs", "1", "--hidden", "4", "--layers", "1", "--oracles", "1-WL", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    assert main(argv + ["--lr", "1e-3", "--tag", "@lr1e-3"]) == 0
    records = read_records(out / "pairs_records.jsonl")
    assert sorted({r["method"] for r in records}) == ["1-WL", "gin", "gin@lr1e-3"]
    table = json.loads((out / "brec_table.json").read_text())
    assert table["bounds"] == {"gin@lr1e-3": "1-WL"}
    with pytest.raises(SystemExit, match="another configuration"):  # the lr is part of the fingerprint
        main(argv + ["--lr", "3e-3", "--tag", "@lr1e-3"])
    with pytest.raises(SystemExit, match="--lr > 0"):
        main(argv + ["--lr", "0"])

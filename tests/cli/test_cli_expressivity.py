"""``graphequi expressivity`` run in-process at small sizes."""
from __future__ import annotations

import json

import networkx as nx
import pytest

from graphequi.cli.main import main
from graphequi.expressivity import analyze


def test_symbolic_table_png_json(tmp_path, capsys):
    out = tmp_path / "expr"
    assert main(["expressivity", "--banks", "mpnn,ppgn,ppgn++(6),subgraph,spen", "--max-degree", "3",
                 "--out", str(out), "--no-progress", "--show-missing"]) == 0
    text = capsys.readouterr().out
    assert "ppgn++(6)" in text and "cannot compute" in text
    rows = json.loads((out / "expressivity.json").read_text())["rows"]
    reference = analyze(["mpnn", "ppgn", "ppgn++(6)", "subgraph", "spen"], 3)
    assert [(r["bank"], r["degree"], r["marks"], r["computable"], r["total"]) for r in rows] == \
        [(r.bank, r.degree, r.marks, r.computable, r.total) for r in reference.rows]
    # the printed table is the same one
    assert reference.format() in text
    assert (out / "expressivity.png").stat().st_size > 1000


def test_marks_and_multigraph_options(tmp_path):
    out = tmp_path / "m"
    # --archs: the deprecated spelling of --banks still works
    assert main(["expressivity", "--archs", "ppgn", "--max-degree", "2", "--marks", "1", "--multigraphs",
                 "--out", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "expressivity.json").read_text())["rows"]
    assert {r["marks"] for r in rows} == {1}
    assert rows[-1]["total"] > 2  # loops and parallel edges are counted


@pytest.mark.parametrize("argv,match", [
    (["--banks", "gat9000"], "unknown bank"),
    (["--marks", "3"], "--marks"),
    (["--max-degree", "0"], "min-degree"),
    (["--skip-symbolic", "--pairs", "nope"], "unknown --pairs"),
    (["--skip-symbolic", "--pairs", "exp", "--data", "/nonexistent/exp"], "does not exist"),
])
def test_bad_arguments(tmp_path, argv, match):
    with pytest.raises(SystemExit, match=match):
        main(["expressivity", "--out", str(tmp_path), "--no-progress"] + argv)


def _write_pair_g6(g6):
    two_triangles = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    nx.write_graph6(two_triangles, g6, header=False)
    with open(g6, "ab") as fh:
        fh.write(nx.to_graph6_bytes(nx.cycle_graph(6), header=False))


def test_pairs_from_graph6_with_brec_protocol(tmp_path, capsys):
    g6 = tmp_path / "pair.g6"
    _write_pair_g6(g6)
    out = tmp_path / "pairs"
    assert main(["expressivity", "--skip-symbolic", "--pairs", f"g6:{g6}", "--model", "gin",
                 "--epochs", "1", "--hidden", "8", "--layers", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "pairs_summary.json").read_text())
    assert summary["1-WL"]["separated"] == 0 and summary["1-WL"]["total"] == 1
    assert summary["2-FWL"]["separated"] == 1
    assert summary["gin"]["separated"] == 0  # GIN is bounded by 1-WL
    assert "gin" in capsys.readouterr().out
    assert (out / "pairs_gin.png").exists() and (out / "brec_table.png").exists()


@pytest.mark.parametrize("model", ["polygin", "ppgn", "ppgn++"])
def test_feature_models_run(tmp_path, model):
    """The models that read polynomial features train and give a verdict."""
    g6 = tmp_path / "pair.g6"
    _write_pair_g6(g6)
    out = tmp_path / model
    assert main(["expressivity", "--skip-symbolic", "--pairs", f"g6:{g6}", "--model", model, "--epochs", "1",
                 "--hidden", "4", "--layers", "1", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "pairs_summary.json").read_text())
    assert summary[model]["total"] == 1


def test_cli_uses_the_library_model_factory():
    from graphequi.cli import expressivity as cli
    from graphequi.expressivity import model_factory

    assert cli.model_factory is model_factory

"""tutorials/polynomials.py runs end to end at its --tiny size."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_polynomials_tutorial_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("polynomials_tutorial", REPO / "tutorials" / "polynomials.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    summary = tutorial.main(["--tiny", "--out", str(tmp_path)])
    assert summary["maron_counts"] == {0: 2, 1: 5, 2: 10}
    assert summary["num_ppgn"] == 12
    assert Path(summary["figure"]).is_file()
    assert summary["node_shape"][1] == summary["edge_shape"][1] == summary["pair_shape"][1] == 12
    assert summary["per_graph_equal"]

"""tutorials/expressivity.py runs end to end at its --tiny size."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_expressivity_tutorial_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("expressivity_tutorial", REPO / "tutorials" / "expressivity.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    summary = tutorial.main(["--tiny", "--out", str(tmp_path / "run")])
    assert summary["ppgn_missing"] == 0  # nothing up to degree 4
    assert summary["order3_covers_ppgn_missing"]
    assert summary["rook_shrikhande_2fwl_equivalent"] is True
    assert summary["four_cliques"] == [8.0, 0.0]  # the rows/columns of rook's graph; Shrikhande has none
    assert summary["brec"]["gin"] == 0  # 1-WL-bounded on two 1-WL-equivalent pairs
    assert (tmp_path / "run" / "expressivity.png").is_file()

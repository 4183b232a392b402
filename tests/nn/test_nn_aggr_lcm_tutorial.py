"""tutorials/lcm.py runs end to end at its --tiny size."""
import importlib.util
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_lcm_tutorial_tiny():
    spec = importlib.util.spec_from_file_location("lcm_tutorial", REPO / "tutorials" / "lcm.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    summary = tutorial.main(["--tiny"])
    assert summary["empty_is_identity"] and summary["max_equals_scatter"]
    assert summary["ours_perm"] < 1e-5 and summary["ours_batch"] < 1e-5
    assert math.isfinite(summary["loss"]) and summary["assoc_before"] > 0

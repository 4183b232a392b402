"""tutorials/point_clouds.py runs end to end at its --tiny size."""
import importlib.util
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_point_clouds_tutorial_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("point_clouds_tutorial", REPO / "tutorials" / "point_clouds.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    summary = tutorial.main(["--tiny", "--root", str(tmp_path / "data"), "--out", str(tmp_path)])
    assert summary["max_degree"] <= 16
    assert Path(summary["figure"]).is_file()
    errors = summary["errors"]
    assert errors["lifted (num_ori=-1)"] < 1e-9 and errors["grid O=8 + frame averaging"] < 1e-9
    assert errors["grid O=8"] > 1e-6
    assert math.isfinite(summary["val_mse"])

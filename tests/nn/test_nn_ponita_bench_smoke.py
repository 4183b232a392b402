"""The PONITA speed benchmark stays runnable (tiny sizes)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ponita_speed_small_run_writes_json(tmp_path):
    out = tmp_path / "ponita_speed.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ponita_speed.py"), "--small", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert {r["model"] for r in result["rows"]} == {"ponita (separable)", "non-separable", "egnn"}
    fa = [r["rel_error"] for r in result["equivariance"] if "FA" in r["model"]]
    assert fa and max(fa) < 1e-9   # float64 frame averaging is exact up to rounding


def test_ponita_nbody_small_run_writes_json(tmp_path):
    out = tmp_path / "ponita_nbody.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ponita_nbody.py"), "--small", "--root",
                    str(tmp_path / "data"), "--out", str(out)], check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["sizes"] == {"train": 20, "valid": 10, "test": 10}
    assert result["best"]["test_mse"] >= 0 and len(result["history"]) == 2

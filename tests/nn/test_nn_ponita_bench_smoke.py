"""The PONITA benchmarks stay runnable (tiny sizes)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ponita_speed_small_run_writes_json(tmp_path):
    out = tmp_path / "ponita_speed.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ponita_speed.py"), "--small", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    expected = {"ponita (separable)", "non-separable", "egnn"}
    has_e3nn = importlib.util.find_spec("e3nn") is not None   # the optional bench extra
    assert {r["model"] for r in result["rows"]} == expected | ({"e3nn (NequIP-style)"} if has_e3nn else set())
    assert {r["layer"] for r in result["layers_table"]} == (
        {"ponita block", "ponita block (edge_index)", "e3nn conv"} if has_e3nn else set())
    fa = [r["rel_error"] for r in result["equivariance"] if "FA" in r["model"]]
    assert fa and max(fa) < 1e-9   # float64 frame averaging is exact up to rounding


@pytest.mark.parametrize("model", ["ponita", "fa-gnn"])
def test_ponita_nbody_small_run_writes_json(tmp_path, model):
    out = tmp_path / "ponita_nbody.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ponita_nbody.py"), "--small", "--root",
                    str(tmp_path / "data"), "--model", model, "--schedule", "cosine", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["sizes"] == {"train": 20, "valid": 10, "test": 10}
    assert result["best"]["test_mse"] >= 0 and len(result["history"]) == 2


def test_ponita_rmd17_small_run_writes_json(tmp_path, fake_rmd17):
    out = tmp_path / "ponita_rmd17.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ponita_rmd17.py"), "--small", "--molecule", "ethanol",
                    "--source", str(fake_rmd17(tmp_path)), "--root", str(tmp_path / "cache"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["sizes"] == {"train": 16, "val": 4, "test": 8} and len(result["history"]) == 2
    assert result["best"]["test_force_mae"] > 0 and result["best"]["test_energy_mae"] > 0

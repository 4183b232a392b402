"""The LCM benchmarks stay runnable (tiny sizes; the real figures live in benchmarks/RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_second_min_benchmark_small_run_writes_json(tmp_path):
    out = tmp_path / "lcm_second_min.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lcm_second_min.py"), "--small", "--models",
                    "graphequi-lcm-mlp+assoc,pyg-lcm,sum", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)
    summary = json.loads(out.read_text())["summary"]
    assert [e["model"] for e in summary] == ["graphequi-lcm-mlp+assoc", "pyg-lcm", "sum"]
    assert summary[0]["assoc_before"] > 0 and summary[1]["assoc_before"] is None
    assert all(0 <= e["acc_32"] <= 1 and 0 <= e["acc_64"] <= 1 for e in summary)


def test_speed_benchmark_small_run_writes_json(tmp_path):
    out = tmp_path / "lcm_speed.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lcm_speed.py"), "--small", "--no-memory",
                          "--out", str(out)], check=True, capture_output=True, text=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == ["uniform", "skewed"]
    assert set(rows[0]["ms"]) == {"graphequi-lcm-gru", "graphequi-lcm-ordered-gru", "graphequi-lcm-mlp", "pyg-gru",
                                  "pyg-lcm"}
    assert "pyg-lcm / lcm-gru" in run.stdout

"""Benchmarks stay runnable (tiny sizes; the real figures live in RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scatter_benchmark_small_run_writes_json(tmp_path):
    out = tmp_path / "scatter.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scatter.py"), "--small", "--repeats", "3",
                    "--reduces", "sum,max", "--out", str(out)], check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["rows"] and {"graphequi.scatter", "torch.scatter_reduce"} <= set(result["rows"][0]["ms"])

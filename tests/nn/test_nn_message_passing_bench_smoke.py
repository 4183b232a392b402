"""benchmarks/message_passing.py stays runnable (tiny sizes; the figures live in RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_message_passing_benchmark_small_run_writes_json(tmp_path):
    out = tmp_path / "mp.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "message_passing.py"), "--small", "--no-compile",
                    "--threads", "1", "--out", str(out)], check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "mp_small.json").read_text())
    assert [r["reduce"] for r in result["rows"]] == ["sum", "mean", "max"]
    assert {"pyg", "pyg-csr", "graphequi", "graphequi-csr", "floor"} <= set(result["rows"][0]["seconds"])
    assert result["meta"]["machine"]

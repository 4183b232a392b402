"""benchmarks/ppgn_precision.py stays runnable (tiny sizes; real figures live in RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_precision_benchmark_quick_run_writes_json(tmp_path):
    out = tmp_path / "ppgn_precision.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ppgn_precision.py"), "--quick",
                          "--threads", "1", "--nodes", "9", "--out", str(out)],
                         check=True, capture_output=True, text=True, timeout=600)
    rows = json.loads(out.read_text())["rows"]
    assert [r["threads"] for r in rows] == [1]
    assert all(r["float32_s"] > 0 and r["bf16_s"] > 0 for r in rows)
    assert "float32/bf16" in run.stdout

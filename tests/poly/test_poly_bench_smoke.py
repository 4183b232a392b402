"""benchmarks/poly.py stays runnable (tiny sizes; real figures live in RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_poly_benchmark_quick_run_writes_json(tmp_path):
    out = tmp_path / "poly.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "poly.py"), "--quick", "--threads", "1",
                    "--out", str(out)], check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    assert result and out.with_suffix(".png").exists()

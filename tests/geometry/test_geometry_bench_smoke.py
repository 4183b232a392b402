"""The radius-graph benchmark stays runnable (tiny sizes)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_radius_graph_benchmark_small_run_writes_json(tmp_path):
    out = tmp_path / "radius_graph.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "radius_graph.py"), "--small",
                    "--repeats", "1", "--out", str(out)], check=True, capture_output=True, text=True)
    rows = json.loads(out.read_text())["rows"]
    assert rows and {"graphequi", "dense cdist", "blocked cdist"} <= set(rows[0]["ms"])

"""benchmarks/spen_memory.py, benchmarks/spen_tu.py and tutorials/spen.py stay runnable (tiny sizes)."""
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load(relative):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak memory reads Linux /proc")
def test_memory_benchmark_small(tmp_path, capsys):
    out = tmp_path / "spen_memory.json"
    load("benchmarks/spen_memory.py").main(["--small", "--out", str(out)])
    result = json.loads(out.read_text())
    assert [r["n"] for r in result["rows"]] == [20, 40]
    for row in result["rows"]:
        assert all(row[f"{m}_s"] > 0 for m in ("spen", "spen-pad", "ppgn++", "loop"))
        assert row["loop_max_abs_diff"] < 1e-4  # the loop computes the same model
    assert "spen_memory_exponent" in result["fits"]
    assert "loop/spen time" in capsys.readouterr().out


def test_tu_benchmark_small_is_resumable(tmp_path, capsys):
    bench = load("benchmarks/spen_tu.py")
    argv = ["--small", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "tu.json")]
    first = bench.main(argv)["results"]["SYNTHETIC"]
    assert first["folds"] == 2 and len(first["per_fold"]) == 2
    fold0 = (tmp_path / "runs" / "SYNTHETIC" / "fold_0.json").read_text()
    assert len(json.loads(fold0)["curve"]) == 3
    capsys.readouterr()
    again = bench.main(argv)["results"]["SYNTHETIC"]
    assert again == first and "fold 0" not in capsys.readouterr().out  # finished folds are skipped
    assert bench.parse_folds("0-2,5") == [0, 1, 2, 5]


def test_tutorial_tiny():
    summary = load("tutorials/spen.py").main(["--tiny"])
    assert summary["sizes"] == [3, 3, 4, 2, 1]
    assert summary["members"] == [[0, 1, 2], [1, 0, 2], [2, 0, 1, 3], [3, 2], [4]]
    assert summary["buckets"] == [1, 2, 3, 4] and summary["padded_buckets"] == [1, 2, 4]
    assert summary["equivariance_error"] < 1e-12
    assert summary["spen_counts_triangles"] and not summary["mpnn_counts_triangles"]
    assert summary["triangles_vs_hexagon"] > 1e-6  # 1-WL-equivalent graphs told apart
    assert summary["pair_entries"] < summary["dense_entries"]

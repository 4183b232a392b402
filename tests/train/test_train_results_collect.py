"""benchmarks/train_results.py --collect: gathers finished runs without training."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from graphequi.train import TrainConfig, train

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_results.py"


@pytest.fixture
def script(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("train_results_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    return module


def test_collect_gathers_existing_summaries_and_skips_missing_runs(script, tmp_path, capsys):
    out = tmp_path / "runs" / "count-gin" / "triangle"
    summary = train(TrainConfig(dataset="synthetic-count", model="gin", epochs=2, batch_size=16, threads=1,
                                progress=False, root=str(tmp_path / "data"), out=str(out), seeds=(0, 1),
                                model_kwargs=dict(hidden_channels=8, num_layers=2)))
    assert script.main(["count-gin", "--targets", "triangle,star", "--collect"]) == 0
    assert "count-gin/star: no" in capsys.readouterr().out
    rows = json.loads((tmp_path / "results" / "train_results.json").read_text())
    assert list(rows) == ["count-gin/triangle"]
    row = rows["count-gin/triangle"]
    assert row["collected"] and row["seeds"] == [0, 1] and row["config"]["epochs"] == 2
    assert row["test_mean"] == summary["test_nmae_mean"]
    assert (tmp_path / "results" / "train_results.png").is_file()

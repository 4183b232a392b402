"""tutorials/train_zinc.py runs end to end (one tiny epoch on a ZINC subset)."""
import importlib.util
import json
import math
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def zinc_source_present() -> bool:
    from graphequi.datasets import default_source
    return (Path(default_source()) / "zinc12k").is_dir()


@pytest.mark.skipif(not zinc_source_present(), reason="ZINC-12k files (shared/data/zinc12k) absent")
def test_train_zinc_tutorial_tiny(tmp_path, request):
    # The processed ZINC cache (about a minute of RDKit work) is kept in pytest's cache
    # folder between pytest runs; GRAPHEQUI_TEST_DATA_ROOT can point elsewhere.
    root = os.environ.get("GRAPHEQUI_TEST_DATA_ROOT") or str(request.config.cache.mkdir("graphequi-data"))
    spec = importlib.util.spec_from_file_location("train_zinc_tutorial", REPO / "tutorials" / "train_zinc.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = tutorial.main(["--tiny", "--root", root, "--out", str(tmp_path / "run")])
    finally:
        torch.set_num_threads(threads)
    assert summary["split_sizes"] == [64, 64, 64]
    assert summary["result_name"].startswith("ZINC-12k")
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    # one tiny epoch: the figure is whatever the CPU's trajectory gives, but it is a real
    # MAE of the written model, so finite and non-negative, and the file says the same
    assert on_disk["test_mae_mean"] == summary["test_mae_mean"]
    assert math.isfinite(summary["test_mae_mean"]) and summary["test_mae_mean"] >= 0
    assert (tmp_path / "run" / "learning_curve.png").is_file()

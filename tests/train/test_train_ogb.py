"""ogbg-* runs are scored by the OGB Evaluator and leave a leaderboard JSON."""
import json
from pathlib import Path

import pytest
import torch

from graphequi.train import TrainConfig, train


def source_present(folder: str) -> bool:
    from graphequi.datasets import default_source
    return (Path(default_source()) / folder).is_dir()


@pytest.mark.skipif(not source_present("ogbg_molesol"), reason="shared/data/ogbg_molesol absent")
def test_ogb_run_writes_leaderboard_json(tmp_path, request):
    root = str(request.config.cache.mkdir("graphequi-data"))
    threads = torch.get_num_threads()
    try:
        summary = train(TrainConfig(dataset="ogbg-molesol", model="polygine", epochs=2, seeds=(0, 1),
                                    subset=48, batch_size=16, threads=1, progress=False, root=root,
                                    out=str(tmp_path), model_kwargs=dict(hidden_channels=16, num_layers=2)))
    finally:
        torch.set_num_threads(threads)
    board = json.loads((tmp_path / "ogb_leaderboard.json").read_text())
    assert board["dataset"] == "ogbg-molesol" and board["metric"] == "rmse"
    assert board["num_seeds"] == 2 and board["seeds"] == [0, 1]
    assert board["num_params"] == summary["num_params"] > 0 and board["hardware"]
    assert board["evaluator"] == "ogb.graphproppred.Evaluator"
    tests = [s["test"] for s in board["per_seed"]]
    assert board["test"]["mean"] == pytest.approx(sum(tests) / 2)
    assert board["valid"]["std"] >= 0 and board["test"]["std"] > 0
    for seed in (0, 1):  # test at the best validation epoch (lowest RMSE)
        records = [json.loads(l) for l in (tmp_path / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()]
        best = min(records, key=lambda r: r["val_rmse"])
        assert board["per_seed"][seed]["test"] == best["test_rmse"]

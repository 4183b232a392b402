"""Datasets of graphequi.datasets through the trainer (skipped without the shared files)."""
from pathlib import Path

import pytest
import torch

from graphequi.train import TrainConfig, load_task, train


def source_present(folder: str) -> bool:
    from graphequi.datasets import default_source
    return (Path(default_source()) / folder).is_dir()


@pytest.mark.skipif(not source_present("count_substructures"), reason="shared/data/count_substructures absent")
def test_counting_task_standardizes_the_target_and_reports_normalized_mae(tmp_path, request):
    from graphequi.datasets import get_dataset
    root = str(request.config.cache.mkdir("graphequi-data"))
    cfg = TrainConfig(dataset="count", target="4cycle", model="polygin", epochs=1, subset=40, batch_size=20,
                      threads=1, progress=False, root=root, out=str(tmp_path),
                      model_kwargs=dict(hidden_channels=8, num_layers=2))
    task = load_task(cfg)
    assert task.name == "count-4cycle" and task.sizes() == (40, 40, 40)
    assert task.train[0].poly_x.shape[1] == 12  # ppgn++ node features attached
    ys = torch.cat([g.y.view(-1) for g in task.train]).double()
    assert task.y_mean == pytest.approx(float(ys.mean())) and task.y_std == pytest.approx(float(ys.std()))
    target_std = get_dataset("count-4cycle", root, log=False).extra["target_std"]
    assert task.target_std == pytest.approx(target_std)
    summary = train(cfg)
    assert summary["test_nmae_mean"] == pytest.approx(summary["test_mae_mean"] / target_std)

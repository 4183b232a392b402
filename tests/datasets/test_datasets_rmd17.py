"""rMD17 reader: split sizes, units, errors."""
import numpy as np
import pytest
import torch

from graphequi.datasets import KCAL_PER_MOL_IN_MEV, RMD17
from graphequi.datasets._cache import DatasetFileError


def test_splits_and_units(tmp_path, fake_rmd17):
    source = fake_rmd17(tmp_path)
    train = RMD17(tmp_path / "cache", "ethanol", "train", source=source, log=False)
    val = RMD17(tmp_path / "cache", "ethanol", "val", source=source, log=False)
    test = RMD17(tmp_path / "cache", "ethanol", "test", source=source, log=False)
    assert (len(train), len(val), len(test)) == (950, 50, 1000)
    assert float(val[0].y) == pytest.approx(950 * KCAL_PER_MOL_IN_MEV)
    assert KCAL_PER_MOL_IN_MEV == pytest.approx(43.3641, rel=1e-5)
    g = train[1]
    assert g.pos.shape == (3, 3) and g.force.shape == (3, 3) and g.z.tolist() == [6, 1, 8]
    assert torch.equal(g.x, torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]]))   # elements 1, 6, 8


def test_errors(tmp_path, fake_rmd17):
    with pytest.raises(ValueError, match="unknown rMD17 molecule"):
        RMD17(tmp_path, "water")
    with pytest.raises(FileNotFoundError, match="rmd17_npz"):
        RMD17(tmp_path / "c", "ethanol", source=tmp_path / "nowhere", log=False)
    source = fake_rmd17(tmp_path)
    bad = source / "rmd17_npz" / "rmd17_ethanol_test_01.npz"
    bad.chmod(0o644)
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetFileError, match="rmd17_ethanol_test_01"):
        RMD17(tmp_path / "c2", "ethanol", source=source, log=False)


def test_real_aspirin(shared_data, tmp_path):
    shared_data("rmd17_npz", "rmd17_aspirin_train_01.npz")
    val = RMD17(tmp_path, "aspirin", "val", log=False)
    assert len(val) == 50 and val[0].pos.shape == (21, 3) and val[0].x.shape == (21, 3)


def test_get_dataset_entry_and_trainer_run(tmp_path, fake_rmd17, monkeypatch):
    """``rmd17-<molecule>``: energy regression on a 5 A radius graph, which the
    trainer's ``ponita`` row trains (positions present)."""
    from graphequi.datasets import RMD17_RADIUS, dataset_names, get_dataset
    from graphequi.train import TrainConfig, train

    source = fake_rmd17(tmp_path)
    splits = get_dataset("rMD17-ethanol", tmp_path / "cache", source=source, log=False)
    assert "rmd17-aspirin" in dataset_names() and splits.metric == "mae" and splits.num_tasks == 1
    g = splits.train[0]
    dist = (g.pos[g.edge_index[0]] - g.pos[g.edge_index[1]]).norm(dim=-1)
    full = torch.cdist(g.pos, g.pos)
    assert g.edge_index.size(1) == int(((full <= RMD17_RADIUS) & (full > 0)).sum()) and bool((dist <= RMD17_RADIUS).all())
    monkeypatch.setenv("GRAPHEQUI_SHARED_DATA", str(source))
    summary = train(TrainConfig(dataset="rmd17-ethanol", model="ponita", epochs=1, batch_size=8, subset=16,
                                threads=1, progress=False, root=str(tmp_path / "root"), out=str(tmp_path / "run"),
                                model_kwargs=dict(hidden=8, num_layers=1, num_ori=4)))
    assert summary["per_seed"][0]["epochs_run"] == 1

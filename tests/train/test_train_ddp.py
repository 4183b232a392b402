"""torchrun with 2 processes (gloo, CPU) gives the metrics of 1 process."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from graphequi.testing import free_port
from graphequi.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_two_processes_match_one_process(tmp_path):
    # no dropout and no batch norm: the only differences left are float summation orders
    # (the 2 per-process half batches of a step are exactly the 1-process batch)
    args = dict(dataset="synthetic-count", model="gin", epochs=3, batch_size=16, lr=3e-3, threads=1,
                progress=False, root=str(tmp_path / "data"),
                model_kwargs=dict(hidden_channels=16, num_layers=2, dropout=0.0, norm=False))
    single = train(TrainConfig(**args, out=str(tmp_path / "one")))

    out = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "graphequi.train", "--dataset", "synthetic-count", "--model", "gin", "--epochs", "3",
           "--batch-size", "16", "--lr", "0.003", "--threads", "1", "--no-progress",
           "--root", args["root"], "--out", str(out), "--device", "cpu",
           "--model-arg", "hidden_channels=16", "--model-arg", "num_layers=2",
           "--model-arg", "dropout=0.0", "--model-arg", "norm=false"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    double = json.loads((out / "summary.json").read_text())
    assert double["world_size"] == 2 and single["world_size"] == 1

    one = [json.loads(l) for l in (tmp_path / "one" / "seed0" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(l) for l in (out / "seed0" / "metrics.jsonl").read_text().splitlines()]
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        for key in ("train_loss", "val_mae", "test_mae", "val_rmse", "test_rmse"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (key, a["epoch"])
    # both took one optimizer step per global batch, so the agreement above is that of
    # two trained models at equal steps, not of two idle ones
    steps = 3 * math.ceil(single["split_sizes"][0] / 16)
    for run in (tmp_path / "one", out):
        state = torch.load(run / "seed0" / "checkpoint.pt", weights_only=False)["optimizer"]["state"]
        assert {int(s["step"]) for s in state.values()} == {steps}, run

"""A run killed with SIGKILL and resumed ends exactly like an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from graphequi.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 8

CONFIG = f"""\
dataset: synthetic-count
model: gin
epochs: {EPOCHS}
batch_size: 16
lr: 0.003
lr_patience: 1          # exercises the scheduler state across the restart
threads: 1
progress: false
model_kwargs: {{hidden_channels: 16, num_layers: 2, dropout: 0.5}}   # dropout: RNG state matters
"""


def history(out):
    lines = (Path(out) / "seed0" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "epoch_time_s"} for line in lines]


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    data = str(tmp_path / "data")
    killed_out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "graphequi.train", "--config", str(config),
                             "--root", data, "--out", str(killed_out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    jsonl = killed_out / "seed0" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    try:
        # metrics.jsonl gets its line right after the epoch's checkpoint is written
        while proc.poll() is None and time.monotonic() < deadline:
            if jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    saved_epoch = torch.load(killed_out / "seed0" / "checkpoint.pt", weights_only=False)["epoch"]
    assert 2 <= saved_epoch < EPOCHS, "the run was not interrupted mid-way"
    assert not (killed_out / "seed0" / "result.json").exists()

    cfg = dict(dataset="synthetic-count", model="gin", epochs=EPOCHS, batch_size=16, lr=0.003,
               lr_patience=1, threads=1, progress=False, root=data,
               model_kwargs=dict(hidden_channels=16, num_layers=2, dropout=0.5))
    resumed = train(TrainConfig(**cfg, out=str(killed_out), resume=True))
    reference = train(TrainConfig(**cfg, out=str(tmp_path / "reference")))

    assert len(history(killed_out)) == EPOCHS
    assert history(killed_out) == history(tmp_path / "reference")
    for key in ("best_epoch", "val", "test", "epochs_run"):
        assert resumed["per_seed"][0][key] == reference["per_seed"][0][key]
    # the learning rate was decayed during the run, so the scheduler state mattered
    assert len({rec["lr"] for rec in history(killed_out)}) > 1

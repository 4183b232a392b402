"""A run killed with SIGKILL and resumed ends exactly like an uninterrupted run;
the plateau scheduler's state survives a restart."""
import json
import math
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
min_lr: 0.0001
scheduler: cosine       # the rate changes every epoch: a lost scheduler state shows in the log
threads: 1
progress: false
model_kwargs: {{hidden_channels: 16, num_layers: 2, dropout: 0.5}}   # dropout: RNG state matters
"""


def history(out):
    lines = (Path(out) / "seed0" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "epoch_time_s"} for line in lines]


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
               min_lr=1e-4, scheduler="cosine", threads=1, progress=False, root=data,
               model_kwargs=dict(hidden_channels=16, num_layers=2, dropout=0.5))
    resumed = train(TrainConfig(**cfg, out=str(killed_out), resume=True))
    reference = train(TrainConfig(**cfg, out=str(tmp_path / "reference")))

    assert len(history(killed_out)) == EPOCHS
    assert history(killed_out) == history(tmp_path / "reference")
    for key in ("best_epoch", "val", "test", "epochs_run"):
        assert resumed["per_seed"][0][key] == reference["per_seed"][0][key]
    # the rate of every epoch, the resumed ones included, is the cosine formula's
    expected = [1e-4 + (0.003 - 1e-4) * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    assert [rec["lr"] for rec in history(killed_out)] == pytest.approx(expected, rel=1e-9)


def test_plateau_scheduler_state_survives_a_resume(tmp_path, monkeypatch):
    """A validation score that never improves makes the plateau rule decay at known
    epochs (patience 0: after every epoch but the first). The run is cut after epoch 1,
    before the first decay, so the resumed run decays on time only if the scheduler's
    best score and bad-epoch count were restored."""
    from graphequi.train import trainer

    real_score = trainer.score

    def flat_validation(task, y_true, y_pred):
        return real_score(task, y_true, y_pred) | {task.metric: 1.0}

    monkeypatch.setattr(trainer, "score", flat_validation)
    lr, factor, epochs = 0.004, 0.5, 4
    cfg = dict(dataset="synthetic-count", model="gin", epochs=epochs, batch_size=16, lr=lr,
               lr_factor=factor, lr_patience=0, min_lr=1e-6, threads=1, progress=False,
               root=str(tmp_path / "data"), model_kwargs=dict(hidden_channels=8, num_layers=2))
    split = str(tmp_path / "split")
    first = train(TrainConfig(**cfg, out=split, time_limit_h=1e-9))
    assert first["per_seed"][0]["epochs_run"] == 1
    train(TrainConfig(**cfg, out=split, resume=True))
    train(TrainConfig(**cfg, out=str(tmp_path / "reference")))
    # the rate logged for epoch e is the one it trained with: decays follow epochs 2, 3, ...
    expected = [lr * factor ** max(0, e - 2) for e in range(1, epochs + 1)]
    assert [rec["lr"] for rec in history(split)] == pytest.approx(expected, rel=1e-12)
    assert history(split) == history(tmp_path / "reference")

import argparse
import json
import math

import numpy as np
import pytest
import torch

from graphequi.cli.main import main as cli_main
from graphequi.train import TrainConfig, train
from graphequi.train.config import add_train_arguments
from graphequi.train.models import MODELS
from graphequi.train.sampling import BucketBatchSampler
from graphequi.train.schedules import SCHEDULE_NAMES, SCHEDULES
from graphequi.train.tasks import load_task


def tiny(out, **kw):
    base = dict(dataset="synthetic-count", model="gin", epochs=3, batch_size=16, lr=3e-3, threads=1,
                progress=False, root=str(out / "data"), out=str(out),
                model_kwargs=dict(hidden_channels=16, num_layers=2))
    return TrainConfig(**(base | kw))


def without_time(history):
    return [{k: v for k, v in rec.items() if k != "epoch_time_s"} for rec in history]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_runs_are_deterministic_under_a_seed(tmp_path):
    a = train(tiny(tmp_path / "a", seeds=(0,)))
    b = train(tiny(tmp_path / "b", seeds=(0,)))
    c = train(tiny(tmp_path / "c", seeds=(1,)))
    assert without_time(read_jsonl(tmp_path / "a" / "seed0" / "metrics.jsonl")) == \
        without_time(read_jsonl(tmp_path / "b" / "seed0" / "metrics.jsonl"))
    for key in ("val", "test", "best_epoch"):
        assert a["per_seed"][0][key] == b["per_seed"][0][key]
    assert a["per_seed"][0]["test"] != c["per_seed"][0]["test"]


def test_test_split_scored_only_at_new_best_when_asked(tmp_path):
    """test_every_epoch=False skips the test pass on epochs without a new best
    validation score; the reported result and the training are unchanged."""
    every = train(tiny(tmp_path / "every", seeds=(0,), epochs=6))
    best_only = train(tiny(tmp_path / "best", seeds=(0,), epochs=6, test_every_epoch=False))
    full = read_jsonl(tmp_path / "every" / "seed0" / "metrics.jsonl")
    sparse = read_jsonl(tmp_path / "best" / "seed0" / "metrics.jsonl")
    running_best = np.minimum.accumulate([r["val_mae"] for r in full])
    for i, (a, b) in enumerate(zip(full, sparse)):
        assert a["val_mae"] == b["val_mae"] and a["train_loss"] == b["train_loss"]
        improved = i == 0 or running_best[i] < running_best[i - 1]
        assert ("test_mae" in b) == improved
        if improved:
            assert b["test_mae"] == a["test_mae"]
    assert every["per_seed"][0]["test"] == best_only["per_seed"][0]["test"]
    assert (tmp_path / "best" / "learning_curve.png").is_file()


def test_multi_seed_summary_reports_test_at_best_validation_epoch(tmp_path):
    summary = train(tiny(tmp_path, seeds=(0, 1), epochs=4))
    tests, nmaes = [], []
    for seed in (0, 1):
        history = read_jsonl(tmp_path / f"seed{seed}" / "metrics.jsonl")
        assert [r["epoch"] for r in history] == [1, 2, 3, 4]
        best = min(history, key=lambda r: r["val_mae"])
        result = json.loads((tmp_path / f"seed{seed}" / "result.json").read_text())
        assert result["best_epoch"] == best["epoch"]
        assert result["test"]["mae"] == best["test_mae"]
        tests.append(best["test_mae"])
        nmaes.append(best["test_nmae"])
    assert summary["test_mae_mean"] == pytest.approx(np.mean(tests))
    assert summary["test_mae_std"] == pytest.approx(np.std(tests, ddof=1))
    assert summary["test_nmae_mean"] == pytest.approx(np.mean(nmaes))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["seeds"] == [0, 1] and on_disk["num_params"] > 0
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "ogb_leaderboard.json").exists()


def optimizer_steps(out) -> int:
    """Adam's step count in a run's last checkpoint (every parameter is stepped together)."""
    state = torch.load(out / "seed0" / "checkpoint.pt", weights_only=False)["optimizer"]["state"]
    steps = {int(s["step"]) for s in state.values()}
    assert len(steps) == 1, steps
    return steps.pop()


def batches_per_epoch(summary: dict, batch_size: int = 16) -> int:
    return math.ceil(summary["split_sizes"][0] / batch_size)


def model_state(out) -> dict:
    return torch.load(out / "seed0" / "checkpoint.pt", weights_only=False)["model"]


def test_training_steps_the_optimizer_on_every_batch_and_moves_the_model(tmp_path):
    # where the loss goes depends on the CPU's float trajectory; that the optimizer
    # stepped on every batch of every epoch, and that the later epochs changed every
    # parameter tensor, does not
    common = dict(model="ppgn", model_kwargs=dict(hidden_channels=16, num_layers=2))
    summary = train(tiny(tmp_path / "six", epochs=6, **common))
    train(tiny(tmp_path / "one", epochs=1, **common))
    assert summary["per_seed"][0]["epochs_run"] == 6
    assert optimizer_steps(tmp_path / "six") == 6 * batches_per_epoch(summary)
    assert optimizer_steps(tmp_path / "one") == batches_per_epoch(summary)
    after_one, after_six = model_state(tmp_path / "one"), model_state(tmp_path / "six")
    for name, value in after_six.items():
        if value.is_floating_point() and "running" not in name:
            assert not torch.equal(value, after_one[name]), name
    records = read_jsonl(tmp_path / "six" / "seed0" / "metrics.jsonl")
    assert all(math.isfinite(r["train_loss"]) and r["train_loss"] >= 0 for r in records)


def test_lr_below_min_lr_stops_the_run(tmp_path):
    summary = train(tiny(tmp_path, epochs=5, min_lr=1.0))
    assert summary["per_seed"][0]["epochs_run"] == 1
    assert summary["per_seed"][0]["stopped_early"]


def test_cli_train_subcommand_and_resume_of_a_finished_run(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic-count", "--model", "gin",
            "--epochs", "2", "--batch-size", "16", "--threads", "1", "--no-progress",
            "--out", str(tmp_path), "--root", str(tmp_path / "data"),
            "--model-arg", "hidden_channels=8", "--model-arg", "num_layers=2"]
    assert cli_main(argv) == 0
    assert "test mae" in capsys.readouterr().out
    ckpt = torch.load(tmp_path / "seed0" / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 2 and set(ckpt["rng"][0]) >= {"torch", "numpy", "python"}
    before = (tmp_path / "seed0" / "metrics.jsonl").read_text()
    assert cli_main(argv + ["--resume"]) == 0  # finished: nothing to redo
    assert (tmp_path / "seed0" / "metrics.jsonl").read_text() == before
    with pytest.raises(ValueError, match="config differs in lr"):
        cli_main(argv + ["--resume", "--lr", "0.5"])


def test_unknown_dataset_and_model_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train(tiny(tmp_path, model="transformer"))
    with pytest.raises(ValueError, match="needs edge features"):
        train(tiny(tmp_path, model="gine"))


def test_resume_with_a_larger_time_limit_continues_a_budget_stopped_run(tmp_path):
    first = train(tiny(tmp_path, epochs=5, time_limit_h=1e-9))
    assert first["per_seed"][0]["epochs_run"] == 1 and first["per_seed"][0]["stopped_early"]
    same_budget = train(tiny(tmp_path, epochs=5, time_limit_h=1e-9, resume=True))
    assert same_budget["per_seed"][0]["epochs_run"] == 1
    extended = train(tiny(tmp_path, epochs=5, time_limit_h=1.0, resume=True))
    assert extended["per_seed"][0]["epochs_run"] == 5 and not extended["per_seed"][0]["stopped_early"]
    train(tiny(tmp_path / "ref", epochs=5))  # uninterrupted
    assert without_time(read_jsonl(tmp_path / "seed0" / "metrics.jsonl")) == \
        without_time(read_jsonl(tmp_path / "ref" / "seed0" / "metrics.jsonl"))


def test_time_limit_constant_lr_and_bucketed_batches(tmp_path):
    summary = train(tiny(tmp_path / "a", epochs=4, time_limit_h=1e-9))
    assert summary["per_seed"][0]["epochs_run"] == 1 and summary["per_seed"][0]["stopped_early"]
    bucketed = train(tiny(tmp_path / "b", epochs=3, scheduler="none", lr_patience=0, bucket_by_size=True))
    records = read_jsonl(tmp_path / "b" / "seed0" / "metrics.jsonl")
    assert {r["lr"] for r in records} == {3e-3}
    # size buckets may leave a short batch per bucket, so count the sampler's batches
    task = load_task(tiny(tmp_path / "b"), cache_dir=tmp_path / "b" / "data" / "graphequi_features")
    sampler = BucketBatchSampler([g.num_nodes for g in task.train], 16, 1, 0, 0)
    assert optimizer_steps(tmp_path / "b") == 3 * len(sampler)
    assert bucketed["per_seed"][0]["epochs_run"] == 3


def test_cosine_schedule_follows_the_formula_and_resumes_exactly(tmp_path):
    epochs, lr, min_lr = 5, 3e-3, 1e-4
    common = dict(epochs=epochs, scheduler="cosine", lr=lr, min_lr=min_lr, lr_patience=0)
    train(tiny(tmp_path / "ref", **common))
    records = read_jsonl(tmp_path / "ref" / "seed0" / "metrics.jsonl")
    assert len(records) == epochs  # the plateau stopping rule does not cut a cosine run short
    expected = [min_lr + (lr - min_lr) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    assert [r["lr"] for r in records] == pytest.approx(expected, rel=1e-9)

    train(tiny(tmp_path / "split", **(common | dict(time_limit_h=1e-9))))
    resumed = train(tiny(tmp_path / "split", **common, resume=True))
    assert resumed["per_seed"][0]["epochs_run"] == epochs
    assert without_time(read_jsonl(tmp_path / "split" / "seed0" / "metrics.jsonl")) == without_time(records)
    # the schedule is a function of the epoch count, so a resume may not change it
    with pytest.raises(ValueError, match="epochs"):
        train(tiny(tmp_path / "split", **(common | dict(epochs=epochs + 2)), resume=True))


def test_unknown_scheduler_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="scheduler must be"):
        tiny(tmp_path, scheduler="linear")


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_every_schedule_trains_resumes_and_is_documented(tmp_path, name):
    common = dict(epochs=3, scheduler=name, lr=2e-3, min_lr=1e-4, lr_patience=0)
    train(tiny(tmp_path / "ref", **common))
    train(tiny(tmp_path / "split", **(common | dict(time_limit_h=1e-9))))
    train(tiny(tmp_path / "split", **common, resume=True))
    records = read_jsonl(tmp_path / "ref" / "seed0" / "metrics.jsonl")
    assert without_time(read_jsonl(tmp_path / "split" / "seed0" / "metrics.jsonl")) == without_time(records)
    if name == "none":
        assert {r["lr"] for r in records} == {2e-3}
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    assert f"{name}: {SCHEDULES[name].description}" in " ".join(parser.format_help().split())


def test_bfloat16_precision_takes_effect_keeps_float32_state_and_resumes_exactly(tmp_path):
    # How far bfloat16 lands from float32 depends on the CPU's bfloat16 kernels (AMX,
    # AVX512-BF16 or emulated), so only that it rounds differently is asserted.
    common = dict(epochs=4, model="ppgn++", model_kwargs=dict(hidden_channels=16, num_layers=2))
    train(tiny(tmp_path / "fp32", **common))
    bf16 = train(tiny(tmp_path / "bf16", **common, precision="bf16"))
    records = read_jsonl(tmp_path / "bf16" / "seed0" / "metrics.jsonl")
    reference = read_jsonl(tmp_path / "fp32" / "seed0" / "metrics.jsonl")
    assert records[0]["train_loss"] != reference[0]["train_loss"]
    assert all(math.isfinite(r["train_loss"]) for r in records) and bf16["per_seed"][0]["epochs_run"] == 4
    # weights, batch-norm statistics and optimizer state stay float32 under autocast
    ckpt = torch.load(tmp_path / "bf16" / "seed0" / "checkpoint.pt", weights_only=False)
    assert {v.dtype for v in ckpt["model"].values() if v.is_floating_point()} == {torch.float32}
    assert {s["exp_avg"].dtype for s in ckpt["optimizer"]["state"].values()} == {torch.float32}

    split = dict(common, precision="bf16")
    train(tiny(tmp_path / "split", **(split | dict(time_limit_h=1e-9))))
    train(tiny(tmp_path / "split", **split, resume=True))
    assert without_time(read_jsonl(tmp_path / "split" / "seed0" / "metrics.jsonl")) == without_time(records)
    with pytest.raises(ValueError, match="precision"):
        train(tiny(tmp_path / "split", **common, resume=True))  # float32 cannot continue a bfloat16 run


def test_precision_is_validated_and_read_from_yaml_numbers(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of 32, bf16"):
        tiny(tmp_path, precision="fp16")
    assert tiny(tmp_path, precision=32).precision == "32"


def test_a_checkpoint_written_before_a_config_key_existed_still_resumes(tmp_path):
    cfg = tiny(tmp_path, epochs=2)
    train(tiny(tmp_path, epochs=1))
    path = tmp_path / "seed0" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    del ckpt["config"]["precision"]  # as written by graphequi before --precision
    torch.save(ckpt, path)
    summary = train(TrainConfig(**(cfg.to_dict() | dict(resume=True))))
    assert summary["per_seed"][0]["epochs_run"] == 2


def test_a_checkpoint_with_the_untyped_run_state_of_older_versions_resumes_exactly(tmp_path):
    train(tiny(tmp_path / "split", epochs=1))
    path = tmp_path / "split" / "seed0" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    saved = ckpt["state"]
    # the plain dict graphequi wrote before the run state was a dataclass, key by key
    ckpt["state"] = {"epoch": saved["epoch"], "best_epoch": saved["best_epoch"], "best_val": saved["best_val"],
                     "best": {"val": dict(saved["best"]["val"]), "test": dict(saved["best"]["test"])},
                     "stopped": saved["stopped"], "history": [dict(r) for r in saved["history"]],
                     "wall_time": saved["wall_time"]}
    torch.save(ckpt, path)
    resumed = train(tiny(tmp_path / "split", epochs=3, resume=True))
    train(tiny(tmp_path / "ref", epochs=3))  # the reference run, uninterrupted
    assert resumed["per_seed"][0]["epochs_run"] == 3
    assert without_time(read_jsonl(tmp_path / "split" / "seed0" / "metrics.jsonl")) == \
        without_time(read_jsonl(tmp_path / "ref" / "seed0" / "metrics.jsonl"))
    assert torch.load(path, weights_only=False)["state"]["epoch"] == 3


def test_trainer_precise_bn_changes_only_the_evaluation_and_resumes_exactly(tmp_path):
    common = dict(epochs=3, model="ppgn++", bucket_by_size=True, model_kwargs=dict(hidden_channels=16, num_layers=2))
    train(tiny(tmp_path / "plain", **common))
    train(tiny(tmp_path / "precise", **common, precise_bn_batches=4))
    plain = read_jsonl(tmp_path / "plain" / "seed0" / "metrics.jsonl")
    precise = read_jsonl(tmp_path / "precise" / "seed0" / "metrics.jsonl")
    assert precise[0]["train_loss"] == plain[0]["train_loss"]  # training itself is the same
    assert precise[0]["val_mae"] != plain[0]["val_mae"]

    split = dict(common, precise_bn_batches=4)
    train(tiny(tmp_path / "split", **(split | dict(time_limit_h=1e-9))))
    train(tiny(tmp_path / "split", **split, resume=True))
    assert without_time(read_jsonl(tmp_path / "split" / "seed0" / "metrics.jsonl")) == without_time(precise)
    with pytest.raises(ValueError, match="precise_bn_batches must be >= 1"):
        TrainConfig(dataset="zinc", model="ppgn++", precise_bn_batches=0)


@pytest.mark.parametrize("model", ["gin", "polygin", "polygine"])
def test_sparse_models_train_under_bfloat16(tmp_path, model):
    summary = train(tiny(tmp_path, model=model, epochs=1, precision="bf16"))
    assert math.isfinite(summary["test_mae_mean"])


def test_lcm_and_spen_rows_train_and_ponita_asks_for_positions(tmp_path):
    lcm = train(tiny(tmp_path / "lcm", model="gin-lcm", epochs=1, subset=32,
                     model_kwargs=dict(hidden_channels=8, num_layers=2, lcm_cell="mlp")))
    spen = train(tiny(tmp_path / "spen", model="spen", epochs=1, subset=32,
                      model_kwargs=dict(hidden_channels=8, num_layers=2)))
    for summary, out in ((lcm, tmp_path / "lcm"), (spen, tmp_path / "spen")):
        assert summary["per_seed"][0]["epochs_run"] == 1
        assert optimizer_steps(out) == batches_per_epoch(summary)
    with pytest.raises(ValueError, match="data.pos"):
        train(tiny(tmp_path / "ponita", model="ponita", epochs=1, subset=32,
                   model_kwargs=dict(hidden=8, num_layers=1)))


def test_associativity_weight_adds_the_lcm_regularizer(tmp_path):
    """The weight changes the optimised objective (so the trained weights),
    every epoch records the mean associativity error, the run stays
    deterministic, and a model without LCM layers is refused by name."""
    kw = dict(model="gin-lcm", epochs=2, subset=32, model_kwargs=dict(hidden_channels=8, num_layers=2,
                                                                         lcm_cell="mlp"))
    train(tiny(tmp_path / "plain", **kw))
    reg_a = train(tiny(tmp_path / "a", associativity_weight=0.5, **kw))
    reg_b = train(tiny(tmp_path / "b", associativity_weight=0.5, **kw))
    plain_log = read_jsonl(tmp_path / "plain" / "seed0" / "metrics.jsonl")
    log_a = read_jsonl(tmp_path / "a" / "seed0" / "metrics.jsonl")
    assert all("train_associativity" not in r for r in plain_log)
    assert all(math.isfinite(r["train_associativity"]) and r["train_associativity"] > 0 for r in log_a)
    assert without_time(log_a) == without_time(read_jsonl(tmp_path / "b" / "seed0" / "metrics.jsonl"))
    assert reg_a["per_seed"][0]["test"] == reg_b["per_seed"][0]["test"]
    assert log_a[0]["train_loss"] != plain_log[0]["train_loss"] or log_a[1]["train_loss"] != plain_log[1]["train_loss"]
    assert optimizer_steps(tmp_path / "a") == 2 * batches_per_epoch(reg_a)
    with pytest.raises(ValueError, match="needs a model with LCM aggregation"):
        train(tiny(tmp_path / "gin", model="gin", epochs=1, subset=32, associativity_weight=0.5))
    with pytest.raises(ValueError, match="associativity_weight must be >= 0"):
        TrainConfig(dataset="zinc", model="gin-lcm", associativity_weight=-1.0)


#: rows that need inputs the synthetic graphs lack, with the error that names them
_NEEDS_INPUTS = {"gine": "needs edge features", "ponita": "data.pos"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_row_trains_one_epoch_or_names_what_it_needs(tmp_path, name):
    """A smoke run of every trainer row (a new row gets one automatically):
    one epoch on small synthetic graphs steps the optimizer once per batch and
    gives a finite score; rows that need edge features or positions refuse
    the task by name instead."""
    width = "hidden" if "hidden" in MODELS[name].accepted_arguments() else "hidden_channels"
    kw = dict(model=name, epochs=1, subset=32, model_kwargs={width: 8, "num_layers": 2})
    if name in _NEEDS_INPUTS:
        with pytest.raises(ValueError, match=_NEEDS_INPUTS[name]):
            train(tiny(tmp_path, **kw))
        return
    summary = train(tiny(tmp_path, **kw))
    assert summary["per_seed"][0]["epochs_run"] == 1
    assert optimizer_steps(tmp_path) == batches_per_epoch(summary)
    assert math.isfinite(summary["test_mae_mean"])


class _EvalOverflow(torch.nn.Module):
    """GIN whose predictions overflow in eval mode only (finite training loss)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, batch):
        out = self.inner(batch)
        return out if self.training else out * float("inf")


def test_non_finite_eval_predictions_are_a_clear_error(tmp_path, monkeypatch):
    import graphequi.train.models as models

    gin = models.MODELS["gin"]
    monkeypatch.setitem(models.MODELS, "eval-overflow",
                        models.Model("test only", lambda task, levels, **kw: _EvalOverflow(gin.build(task, levels, **kw))))
    with pytest.raises(FloatingPointError, match="validation predictions contain NaN or inf"):
        train(tiny(tmp_path, model="eval-overflow", epochs=1))

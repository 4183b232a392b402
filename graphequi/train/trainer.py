r"""The training loop: seeds, checkpoints, exact resume, DDP, summaries.

For every seed in ``cfg.seeds`` a run writes to ``OUT/seed{S}/``:

* ``metrics.jsonl`` -- one JSON record per epoch (train loss, validation
  and test scores, learning rate, wall time);
* ``checkpoint.pt`` -- after every epoch (:mod:`graphequi.train.checkpoint`):
  model, optimizer, scheduler, the torch/numpy/python (and CUDA) RNG states
  of every process and the run state (epoch, best-validation bookkeeping,
  history). ``--resume`` continues from it and gives
  the same numbers as an uninterrupted run (on the same hardware and thread
  count): the shuffling order of epoch ``e`` is a function of ``(seed, e)``
  alone, and every random stream is restored;
* ``result.json`` -- test at the best validation epoch;
* ``tb/`` -- TensorBoard scalars, when ``tensorboard`` is installed.

``OUT/summary.json`` holds mean +- std over seeds (sample std, ``ddof=1``),
``OUT/learning_curve.png`` the curves, and for ``ogbg-*`` datasets
``OUT/ogb_leaderboard.json`` the leaderboard fields
(:mod:`graphequi.train.reporting`).

**Distributed.** Under ``torchrun`` (see :mod:`graphequi.train.distributed`)
the model is wrapped in DDP and a ``DistributedSampler`` gives process ``r``
the positions ``r, r + W, ...`` of the epoch's shuffled order, in batches of
``batch_size / W``; the ``W`` per-process batches of a step are exactly the
single-process batch of that step, and DDP averages their gradients.
Validation and test sets are sharded and the predictions gathered before
scoring, so every process reports the same full-set metrics. Batch norm is
synchronized on CUDA (``SyncBatchNorm``); on CPU (gloo) each process
normalizes over its own shard, the one source of difference from a single
process besides floating-point summation order.

**Precision.** ``precision: bf16`` runs the forward passes (training and
evaluation) under ``torch.autocast(dtype=torch.bfloat16)``: matrix products
in bfloat16 (AMX/AVX512-BF16 CPUs, GPUs), weights, gradients, optimizer
state, batch-norm statistics, PPGN++'s readout and the loss in float32.

**Precise BN.** ``precise_bn_batches: K`` re-estimates every batch norm's
running statistics before each evaluation as the plain average over the
first ``K`` batches of the epoch's training order
(:func:`graphequi.train.precise_bn.recompute_batch_norm_statistics`); the
moving average otherwise follows the last few batches, which under
``bucket_by_size`` hold graphs of a few sizes only.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from graphequi._io import atomic_write
from graphequi.nn.aggr import AssociativityRegularizer
from graphequi.train import distributed
from graphequi.train.checkpoint import RunState, capture_rng_state, load_checkpoint, save_checkpoint
from graphequi.train.config import TrainConfig
from graphequi.train.distributed import DistInfo
from graphequi.train.metrics import loss_fn, score
from graphequi.train.models import build_model
from graphequi.train.precise_bn import recompute_batch_norm_statistics
from graphequi.train.reporting import hardware_description, summarize, write_reports
from graphequi.train.sampling import BucketBatchSampler
from graphequi.train.schedules import SCHEDULES, Schedule
from graphequi.train.tasks import Task, load_task

__all__ = ["train", "run", "run_seed", "seed_everything", "hardware_description"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: JSONL only
        return None
    return SummaryWriter(str(path))


class _Shard:
    """The evaluation share of one process: positions ``rank, rank + W, ...``,
    batched in order of graph size (a dense model pays for the largest graph of
    each batch; predictions are put back in dataset order before scoring)."""

    def __init__(self, dataset: list, info: DistInfo, batch_size: int):
        positions = range(info.rank, len(dataset), info.world_size)
        self.positions = sorted(positions, key=lambda i: (dataset[i].num_nodes, i))
        self.loader = DataLoader([dataset[i] for i in self.positions], batch_size=batch_size, shuffle=False)


def _autocast(cfg: TrainConfig, device: str):
    """The forward pass's precision context (``cfg.precision``)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")


@torch.no_grad()
def _evaluate(model, shard: _Shard, task: Task, device, info: DistInfo, cfg: TrainConfig,
              split: str = "validation") -> Dict[str, float]:
    model.eval()
    preds, targets = [], []
    for batch in shard.loader:
        batch = batch.to(device)
        with _autocast(cfg, device):
            out = model(batch)
        finite = torch.isfinite(out).view(out.size(0), -1).all(dim=-1)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise FloatingPointError(f"the model's {split} predictions contain NaN or inf ({bad} of {out.size(0)} "
                                     "graphs in a batch): it overflows in eval mode although the training loss "
                                     "is finite; lower the learning rate, clip gradients or use a bounded layer")
        out = out.double()
        if task.kind == "regression":
            out = out * task.y_std + task.y_mean
        preds.append(out.cpu())
        targets.append(batch.y.view(out.size(0), -1).double().cpu() if task.kind != "multiclass"
                       else batch.y.view(-1).cpu())
    local = (shard.positions,
             torch.cat(preds).numpy() if preds else None,
             torch.cat(targets).numpy() if targets else None)
    parts = distributed.all_gather_objects(local, info)
    positions = np.concatenate([np.asarray(p, dtype=np.int64) for p, y, _ in parts if y is not None])
    order = np.argsort(positions, kind="stable")
    y_pred = np.concatenate([y for _, y, _ in parts if y is not None])[order]
    y_true = np.concatenate([t for _, y, t in parts if y is not None])[order]
    return score(task, y_true, y_pred)


def _train_epoch(model, loader, optimizer, task: Task, loss_name: str, cfg: TrainConfig, device,
                 info: DistInfo, desc: str, regularizer: Optional[AssociativityRegularizer] = None) -> tuple:
    """One pass over ``loader``; returns the mean training loss and, with a
    ``regularizer``, the mean associativity error it added (else ``None``)."""
    model.train()
    total, count, assoc_total = 0.0, 0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (cfg.progress and info.is_main))
    for batch in bar:
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        recording = regularizer.recording() if regularizer is not None else contextlib.nullcontext()
        with _autocast(cfg, device), recording:
            out = model(batch)
        if out.dtype == torch.bfloat16:  # the loss in float32, as autocast computes its own losses
            out = out.float()
        y = batch.y
        if task.kind == "regression":
            y = (y.view(out.shape).to(out.dtype) - task.y_mean) / task.y_std
        loss = loss_fn(loss_name, out, y)
        objective = loss
        if regularizer is not None:
            with _autocast(cfg, device):
                assoc = regularizer.penalty().float()
            objective = loss + cfg.associativity_weight * assoc
            assoc_total += float(assoc.detach()) * int(batch.num_graphs)
        if not torch.isfinite(objective):
            raise FloatingPointError(f"non-finite training loss {objective.item()} ({desc}); lower the learning rate")
        objective.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        n = int(batch.num_graphs)
        total += float(loss.detach()) * n
        count += n
        bar.set_postfix(loss=f"{loss.item():.4f}")
    total, count, assoc_total = distributed.all_reduce_sum([total, count, assoc_total], info, device)
    return total / max(count, 1), (assoc_total / max(count, 1) if regularizer is not None else None)


def _better(value: float, best: Optional[float], higher: bool) -> bool:
    if best is None:
        return True
    return value > best if higher else value < best


def _lr_exhausted(optimizer, cfg: TrainConfig) -> bool:
    """The usual ZINC/PPGN stopping rule, for the schedules that use it: the
    learning rate decayed below ``min_lr``."""
    return SCHEDULES[cfg.scheduler].stops_below_min_lr and optimizer.param_groups[0]["lr"] < cfg.min_lr


def _over_budget(state: RunState, cfg: TrainConfig) -> bool:
    """The compute budget ``time_limit_h`` is spent (training time counted over resumes)."""
    return cfg.time_limit_h is not None and state.wall_time >= 3600 * cfg.time_limit_h


@dataclass
class _SeedRun:
    """What one seed trains with. ``model`` is the bare module (checkpoints,
    evaluation, precise BN), ``train_model`` the one the training pass calls:
    ``model`` itself, or its DDP wrapper under ``torchrun``."""

    model: torch.nn.Module
    train_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scheduler: object
    loss_name: str
    regularizer: Optional[AssociativityRegularizer] = None


def _build(cfg: TrainConfig, task: Task, seed: int, info: DistInfo, device: str) -> _SeedRun:
    """The seeded model (DDP-wrapped under ``torchrun``), its optimizer and scheduler."""
    seed_everything(seed)
    model = build_model(cfg.model, task, **cfg.model_options).to(device)
    regularizer = None
    if cfg.associativity_weight > 0:
        try:
            regularizer = AssociativityRegularizer(model, cfg.associativity_triples)
        except ValueError as err:
            raise ValueError(f"associativity_weight > 0 needs a model with LCM aggregation "
                             f"(e.g. gin-lcm): {err}") from None
    train_model = model
    if info.enabled:
        if device.startswith("cuda"):
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.startswith("cuda") else None)
    if info.rank:
        torch.manual_seed(seed + 7919 * info.rank)  # independent dropout streams per process
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = SCHEDULES[cfg.scheduler]
    scheduler = schedule.build(optimizer, cfg, task.higher_is_better)
    return _SeedRun(model, train_model, optimizer, schedule, scheduler, cfg.loss or task.loss, regularizer)


def _resume(run: _SeedRun, cfg: TrainConfig, ckpt_path: Path, info: DistInfo) -> RunState:
    """The run state to start from: the checkpoint's (loaded into ``run``) when resuming, else a fresh one."""
    if not (cfg.resume and ckpt_path.is_file()):
        return RunState()
    state = load_checkpoint(ckpt_path, cfg, world_size=info.world_size, rank=info.rank, model=run.model,
                            optimizer=run.optimizer, scheduler=run.scheduler)
    # A run stopped by its compute budget continues when resumed with a larger one.
    if state.stopped and not (_lr_exhausted(run.optimizer, cfg) or _over_budget(state, cfg)):
        state.stopped = False
    return state


def _train_loader(task: Task, cfg: TrainConfig, info: DistInfo, seed: int) -> tuple:
    """``(sampler, loader)`` of this process's share of every global batch; the
    sampler's ``set_epoch(e)`` fixes epoch ``e``'s order from ``(seed, e)`` alone."""
    world = info.world_size
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if cfg.bucket_by_size:
        sampler = BucketBatchSampler([g.num_nodes for g in task.train], cfg.batch_size, world, info.rank, seed)
        return sampler, DataLoader(task.train, batch_sampler=sampler)
    sampler = torch.utils.data.distributed.DistributedSampler(
        task.train, num_replicas=world, rank=info.rank, shuffle=True, seed=seed, drop_last=False)
    return sampler, DataLoader(task.train, batch_size=cfg.batch_size // world, sampler=sampler)


def _epoch(run: _SeedRun, state: RunState, epoch: int, loader, shards: tuple, task: Task, cfg: TrainConfig,
           info: DistInfo, device: str) -> dict:
    """Train and evaluate one epoch, step the schedule, update ``state``; return the epoch's record."""
    start = time.perf_counter()
    train_loss, train_assoc = _train_epoch(run.train_model, loader, run.optimizer, task, run.loss_name, cfg,
                                           device, info, f"epoch {epoch}", run.regularizer)
    if cfg.precise_bn_batches:
        # the batches of this epoch's (seeded) order, so a resumed run sees the same ones
        recompute_batch_norm_statistics(run.model, loader, cfg.precise_bn_batches,
                                        forward=lambda m, batch: m(batch.to(device)),
                                        context=lambda: _autocast(cfg, device))
    val_shard, test_shard = shards
    metric = task.metric
    val = _evaluate(run.model, val_shard, task, device, info, cfg)
    improved = _better(val[metric], state.best_val, task.higher_is_better)
    # the reported test figure is the one at the best validation epoch, so the test pass
    # of any other epoch only feeds the learning curve
    test = (_evaluate(run.model, test_shard, task, device, info, cfg, "test")
            if improved or cfg.test_every_epoch else {})
    lr = run.optimizer.param_groups[0]["lr"]
    run.schedule.step(run.scheduler, val[metric])
    if improved:
        state.best_epoch, state.best_val, state.best = epoch, val[metric], {"val": val, "test": test}
    # the slowest process's time, so every process takes the same time-limit decision
    elapsed = max(distributed.all_gather_objects(time.perf_counter() - start, info))
    state.wall_time += elapsed
    record = {"epoch": epoch, "train_loss": train_loss, "lr": lr,
              **({"train_associativity": train_assoc} if train_assoc is not None else {}),
              **{f"val_{k}": v for k, v in val.items()}, **{f"test_{k}": v for k, v in test.items()},
              "best_epoch": state.best_epoch, "epoch_time_s": elapsed}
    state.history.append(record)
    state.epoch = epoch
    if _lr_exhausted(run.optimizer, cfg) or _over_budget(state, cfg):
        state.stopped = True
    return record


def _write_log(path: Path, history: list) -> None:
    atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in history)))


def _save_epoch(run: _SeedRun, state: RunState, record: dict, seed_dir: Path, writer, cfg: TrainConfig,
                info: DistInfo) -> None:
    """Checkpoint first, then the log line: a line in ``metrics.jsonl`` means its epoch is saved."""
    rngs = distributed.all_gather_objects(capture_rng_state(), info)
    if not info.is_main:
        return
    save_checkpoint(seed_dir / "checkpoint.pt", model=run.model, optimizer=run.optimizer,
                    scheduler=run.scheduler, run_state=state, rngs=rngs, cfg=cfg, world_size=info.world_size)
    with (seed_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k != "epoch":
                writer.add_scalar(k, v, record["epoch"])


def run_seed(cfg: TrainConfig, task: Task, seed: int, info: DistInfo = DistInfo(),
             device: str = "cpu") -> dict:
    """Train one seed (resuming from its checkpoint when ``cfg.resume``).

    Args:
        cfg: the run's configuration.
        task: the dataset and how to score it.
        seed: seeds the model, the dropout streams and the shuffling order.
        info: this process's place under ``torchrun`` (default: single process).
        device: ``"cpu"`` or ``"cuda:<local rank>"``.

    Returns:
        The result record: test at the best validation epoch, the run's
        bookkeeping and its per-epoch history.
    """
    seed_dir = cfg.out_dir / f"seed{seed}"
    if info.is_main:
        seed_dir.mkdir(parents=True, exist_ok=True)
    distributed.barrier(info)

    run = _build(cfg, task, seed, info, device)
    state = _resume(run, cfg, seed_dir / "checkpoint.pt", info)
    if info.is_main:  # the log is exactly the checkpoint's history: drop lines of a lost epoch
        _write_log(seed_dir / "metrics.jsonl", state.history)
    sampler, loader = _train_loader(task, cfg, info, seed)
    shards = (_Shard(task.val, info, cfg.eval_batch_size), _Shard(task.test, info, cfg.eval_batch_size))
    writer = _tensorboard(seed_dir / "tb") if info.is_main else None

    metric = task.metric
    epochs = tqdm(range(state.epoch + 1, cfg.epochs + 1), desc=f"seed {seed}", initial=state.epoch,
                  total=cfg.epochs, disable=not (cfg.progress and info.is_main) or state.stopped)
    for epoch in epochs:
        if state.stopped:
            break
        sampler.set_epoch(epoch)
        record = _epoch(run, state, epoch, loader, shards, task, cfg, info, device)
        _save_epoch(run, state, record, seed_dir, writer, cfg, info)
        epochs.set_postfix({f"val_{metric}": f"{record[f'val_{metric}']:.4f}",
                            f"best_test_{metric}": f"{state.best['test'][metric]:.4f}"})
        if state.stopped:
            break
    epochs.close()
    if writer is not None:
        writer.close()
    if state.best is None:
        raise RuntimeError(f"seed {seed}: no epoch was run")
    result = {"seed": seed, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
              "stopped_early": state.stopped, "num_params": sum(p.numel() for p in run.model.parameters()),
              "val": state.best["val"], "test": state.best["test"],
              "train_wall_time_s": state.wall_time, "history": state.history}
    if info.is_main:
        text = json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2)
        atomic_write(seed_dir / "result.json", lambda tmp: tmp.write_text(text))
    return result


def train(cfg: TrainConfig, info: Optional[DistInfo] = None) -> dict:
    """Train every seed of ``cfg`` and write the summaries; returns the summary dict."""
    info = info or DistInfo()
    device = cfg.resolved_device()
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but CUDA is not available")
        device = f"cuda:{info.local_rank}"
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    with _process_settings(cfg):
        return _train(cfg, info, device)


@contextlib.contextmanager
def _process_settings(cfg: TrainConfig):
    """Deterministic kernels and the thread count for the run; the caller's settings come back after."""
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads())
    torch.use_deterministic_algorithms(True, warn_only=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.set_num_threads(saved[2])


def _train(cfg: TrainConfig, info: DistInfo, device: str) -> dict:
    out = cfg.out_dir
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        import yaml
        text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
        atomic_write(out / "config.yaml", lambda tmp: tmp.write_text(text))
    cache = Path(cfg.root) / "graphequi_features"
    # the main process computes (and caches) polynomial features first, the others read them
    task = load_task(cfg, cache_dir=cache) if info.is_main else None
    distributed.barrier(info)
    if task is None:
        task = load_task(cfg, cache_dir=cache)
    results = [run_seed(cfg, task, seed, info, device) for seed in cfg.seeds]
    summary = summarize(cfg, task, results, hardware_description(device, info.world_size))
    summary["world_size"] = info.world_size
    if info.is_main:
        write_reports(out, task, results, summary)
    return summary


def run(cfg: TrainConfig) -> dict:
    """Entry point: start the process group when under ``torchrun``, train, shut down."""
    info = distributed.init(cfg.resolved_device())
    try:
        return train(cfg, info)
    finally:
        distributed.shutdown()

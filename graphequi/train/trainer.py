r"""The training loop: seeds, checkpoints, exact resume, DDP, summaries.

For every seed in ``cfg.seeds`` a run writes to ``OUT/seed{S}/``:

* ``metrics.jsonl`` -- one JSON record per epoch (train loss, validation
  and test scores, learning rate, wall time);
* ``checkpoint.pt`` -- after every epoch: model, optimiser, scheduler, the
  torch/numpy/python (and CUDA) RNG states of every process, the epoch and
  the best-validation bookkeeping. ``--resume`` continues from it and gives
  the same numbers as an uninterrupted run (on the same hardware and thread
  count): the shuffling order of epoch ``e`` is a function of ``(seed, e)``
  alone, and every random stream is restored;
* ``result.json`` -- test at the best validation epoch;
* ``tb/`` -- TensorBoard scalars, when ``tensorboard`` is installed.

``OUT/summary.json`` holds mean +- std over seeds (sample std, ``ddof=1``),
``OUT/learning_curve.png`` the curves, and for ``ogbg-*`` datasets
``OUT/ogb_leaderboard.json`` the leaderboard fields.

**Distributed.** Under ``torchrun`` (see :mod:`graphequi.train.distributed`)
the model is wrapped in DDP and a ``DistributedSampler`` gives process ``r``
the positions ``r, r + W, ...`` of the epoch's shuffled order, in batches of
``batch_size / W``; the ``W`` per-process batches of a step are exactly the
single-process batch of that step, and DDP averages their gradients.
Validation and test sets are sharded and the predictions gathered before
scoring, so every process reports the same full-set metrics. Batch norm is
synchronised on CUDA (``SyncBatchNorm``); on CPU (gloo) each process
normalises over its own shard, the one source of difference from a single
process besides floating-point summation order.

**Precision.** ``precision: bf16`` runs the forward passes (training and
evaluation) under ``torch.autocast(dtype=torch.bfloat16)``: matrix products
in bfloat16 (AMX/AVX512-BF16 CPUs, GPUs), weights, gradients, optimiser
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
import platform
import random
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from graphequi.train import distributed
from graphequi.train.config import TrainConfig
from graphequi.train.distributed import DistInfo
from graphequi.train.metrics import loss_fn, score
from graphequi.train.models import build_model
from graphequi.train.precise_bn import recompute_batch_norm_statistics
from graphequi.train.sampling import BucketBatchSampler
from graphequi.train.schedules import SCHEDULES
from graphequi.train.tasks import Task, load_task

__all__ = ["train", "run", "run_seed", "seed_everything", "hardware_description"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def hardware_description(device: str, world_size: int = 1) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        what = torch.cuda.get_device_name(torch.device(device))
    else:
        what = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    what = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        what = f"{what} ({torch.get_num_threads()} threads)"
    return f"{world_size} x {what}" if world_size > 1 else what


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
def _evaluate(model, shard: _Shard, task: Task, device, info: DistInfo, cfg: TrainConfig) -> Dict[str, float]:
    model.eval()
    preds, targets = [], []
    for batch in shard.loader:
        batch = batch.to(device)
        with _autocast(cfg, device):
            out = model(batch)
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
                 info: DistInfo, desc: str) -> float:
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (cfg.progress and info.is_main))
    for batch in bar:
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(cfg, device):
            out = model(batch)
        if out.dtype == torch.bfloat16:  # the loss in float32, as autocast computes its own losses
            out = out.float()
        y = batch.y
        if task.kind == "regression":
            y = (y.view(out.shape).to(out.dtype) - task.y_mean) / task.y_std
        loss = loss_fn(loss_name, out, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {loss.item()} ({desc}); lower the learning rate")
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        n = int(batch.num_graphs)
        total += float(loss.detach()) * n
        count += n
        bar.set_postfix(loss=f"{loss.item():.4f}")
    total, count = distributed.all_reduce_sum([total, count], info, device)
    return total / max(count, 1)


def _better(value: float, best: Optional[float], higher: bool) -> bool:
    if best is None:
        return True
    return value > best if higher else value < best


def _lr_exhausted(optimizer, cfg: TrainConfig) -> bool:
    """The usual ZINC/PPGN stopping rule, for the schedules that use it: the
    learning rate decayed below ``min_lr``."""
    return SCHEDULES[cfg.scheduler].stops_below_min_lr and optimizer.param_groups[0]["lr"] < cfg.min_lr


def _over_budget(state: dict, cfg: TrainConfig) -> bool:
    """The compute budget ``time_limit_h`` is spent (training time counted over resumes)."""
    return cfg.time_limit_h is not None and state["wall_time"] >= 3600 * cfg.time_limit_h


def run_seed(cfg: TrainConfig, task: Task, seed: int, info: DistInfo = DistInfo(),
             device: str = "cpu") -> dict:
    """Train one seed (resuming from its checkpoint when ``cfg.resume``);
    return its result record (test at the best validation epoch)."""
    seed_dir = cfg.out_dir / f"seed{seed}"
    ckpt_path, jsonl_path = seed_dir / "checkpoint.pt", seed_dir / "metrics.jsonl"
    if info.is_main:
        seed_dir.mkdir(parents=True, exist_ok=True)
    distributed.barrier(info)

    seed_everything(seed)
    model = build_model(cfg.model, task, **cfg.model_options).to(device)
    num_params = sum(p.numel() for p in model.parameters())
    train_model = model
    if info.enabled:
        if device.startswith("cuda"):
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            train_model = model
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.startswith("cuda") else None)
    if info.rank:
        torch.manual_seed(seed + 7919 * info.rank)  # independent dropout streams per process
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = SCHEDULES[cfg.scheduler]
    scheduler = schedule.build(optimizer, cfg, task.higher_is_better)
    loss_name = cfg.loss or task.loss
    state = {"epoch": 0, "best_epoch": None, "best_val": None, "best": None, "stopped": False,
             "history": [], "wall_time": 0.0}

    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = ckpt["config"]
        keys = TrainConfig.RESUME_KEYS + (("epochs",) if schedule.depends_on_epochs else ())
        defaults = TrainConfig.defaults()  # keys added after the checkpoint was written
        mismatched = [k for k in keys if saved.get(k, defaults.get(k)) != cfg.to_dict()[k]]
        if mismatched:
            raise ValueError(f"cannot resume {ckpt_path}: config differs in {', '.join(mismatched)}")
        if ckpt["world_size"] != info.world_size:
            raise ValueError(f"cannot resume {ckpt_path}: saved with {ckpt['world_size']} process(es), "
                             f"now {info.world_size}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        _set_rng_state(ckpt["rng"][info.rank])
        # A run stopped by its compute budget continues when resumed with a larger one.
        if state["stopped"] and not (_lr_exhausted(optimizer, cfg) or _over_budget(state, cfg)):
            state["stopped"] = False
    if info.is_main:  # the log is exactly the checkpoint's history: drop lines of a lost epoch
        _atomic_write_text(jsonl_path, "".join(json.dumps(r) + "\n" for r in state["history"]))

    world = info.world_size
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if cfg.bucket_by_size:
        sampler = BucketBatchSampler([g.num_nodes for g in task.train], cfg.batch_size, world, info.rank, seed)
        train_loader = DataLoader(task.train, batch_sampler=sampler)
    else:
        sampler = torch.utils.data.distributed.DistributedSampler(
            task.train, num_replicas=world, rank=info.rank, shuffle=True, seed=seed, drop_last=False)
        train_loader = DataLoader(task.train, batch_size=cfg.batch_size // world, sampler=sampler)
    val_shard = _Shard(task.val, info, cfg.eval_batch_size)
    test_shard = _Shard(task.test, info, cfg.eval_batch_size)
    writer = _tensorboard(seed_dir / "tb") if info.is_main else None

    metric = task.metric
    epochs = tqdm(range(state["epoch"] + 1, cfg.epochs + 1), desc=f"seed {seed}", initial=state["epoch"],
                  total=cfg.epochs, disable=not (cfg.progress and info.is_main) or state["stopped"])
    for epoch in epochs:
        if state["stopped"]:
            break
        start = time.perf_counter()
        sampler.set_epoch(epoch)
        train_loss = _train_epoch(train_model, train_loader, optimizer, task, loss_name, cfg, device,
                                  info, f"epoch {epoch}")
        if cfg.precise_bn_batches:
            # the batches of this epoch's (seeded) order, so a resumed run sees the same ones
            recompute_batch_norm_statistics(model, train_loader, cfg.precise_bn_batches,
                                            forward=lambda m, batch: m(batch.to(device)),
                                            context=lambda: _autocast(cfg, device))
        val = _evaluate(model, val_shard, task, device, info, cfg)
        improved = _better(val[metric], state["best_val"], task.higher_is_better)
        # the reported test figure is the one at the best validation epoch, so the test pass
        # of any other epoch only feeds the learning curve
        test = _evaluate(model, test_shard, task, device, info, cfg) if improved or cfg.test_every_epoch else {}
        lr = optimizer.param_groups[0]["lr"]
        schedule.step(scheduler, val[metric])
        if improved:
            state.update(best_epoch=epoch, best_val=val[metric],
                         best={"val": val, "test": test})
        # the slowest process's time, so every process takes the same time-limit decision
        elapsed = max(distributed.all_gather_objects(time.perf_counter() - start, info))
        state["wall_time"] += elapsed
        record = {"epoch": epoch, "train_loss": train_loss, "lr": lr,
                  **{f"val_{k}": v for k, v in val.items()}, **{f"test_{k}": v for k, v in test.items()},
                  "best_epoch": state["best_epoch"], "epoch_time_s": elapsed}
        state["history"].append(record)
        state["epoch"] = epoch
        if _lr_exhausted(optimizer, cfg) or _over_budget(state, cfg):
            state["stopped"] = True
        rngs = distributed.all_gather_objects(_rng_state(), info)
        if info.is_main:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "state": state, "rng": rngs,
                          "config": cfg.to_dict(), "world_size": world, "epoch": epoch}, ckpt_path)
            with jsonl_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if writer is not None:
                for k, v in record.items():
                    if isinstance(v, (int, float)) and k != "epoch":
                        writer.add_scalar(k, v, epoch)
        best_test = state["best"]["test"][metric]
        epochs.set_postfix({f"val_{metric}": f"{val[metric]:.4f}", f"best_test_{metric}": f"{best_test:.4f}"})
        if state["stopped"]:
            break
    epochs.close()
    if writer is not None:
        writer.close()
    if state["best"] is None:
        raise RuntimeError(f"seed {seed}: no epoch was run")
    result = {"seed": seed, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
              "stopped_early": state["stopped"], "num_params": num_params,
              "val": state["best"]["val"], "test": state["best"]["test"],
              "train_wall_time_s": state["wall_time"], "history": state["history"]}
    if info.is_main:
        _atomic_write_text(seed_dir / "result.json",
                           json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))
    return result


def _mean_std(values: List[float]) -> tuple:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def summarize(cfg: TrainConfig, task: Task, results: List[dict], hardware: str) -> dict:
    """Mean +- std over seeds of every validation/test score at the best validation epoch."""
    summary = {"dataset": cfg.dataset, "result_name": task.result_name, "model": cfg.model,
               "metric": task.metric, "higher_is_better": task.higher_is_better,
               "seeds": [r["seed"] for r in results], "num_params": results[0]["num_params"],
               "hardware": hardware, "split_sizes": list(task.sizes()),
               "train_wall_time_s": float(sum(r["train_wall_time_s"] for r in results)),
               "config": cfg.to_dict(), "per_seed": [{k: v for k, v in r.items() if k != "history"}
                                                     for r in results]}
    for split in ("val", "test"):
        for key in results[0][split]:
            mean, std = _mean_std([r[split][key] for r in results])
            summary[f"{split}_{key}_mean"], summary[f"{split}_{key}_std"] = mean, std
    return summary


def ogb_leaderboard(summary: dict) -> dict:
    """The fields of an OGB leaderboard submission."""
    m = summary["metric"]
    return {"dataset": summary["dataset"], "method": summary["model"], "metric": m,
            "num_seeds": len(summary["seeds"]), "seeds": summary["seeds"],
            "valid": {"mean": summary[f"val_{m}_mean"], "std": summary[f"val_{m}_std"]},
            "test": {"mean": summary[f"test_{m}_mean"], "std": summary[f"test_{m}_std"]},
            "num_params": summary["num_params"], "hardware": summary["hardware"],
            "evaluator": "ogb.graphproppred.Evaluator",
            "per_seed": [{"seed": r["seed"], "valid": r["val"][m], "test": r["test"][m]}
                         for r in summary["per_seed"]]}


def plot_learning_curves(results: List[dict], metric: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        epochs = [h["epoch"] for h in r["history"]]
        ax_loss.plot(epochs, [h["train_loss"] for h in r["history"]], label=f"seed {r['seed']}")
        line, = ax_metric.plot(epochs, [h[f"val_{metric}"] for h in r["history"]], label=f"val, seed {r['seed']}")
        scored = [h for h in r["history"] if f"test_{metric}" in h]  # see TrainConfig.test_every_epoch
        ax_metric.plot([h["epoch"] for h in scored], [h[f"test_{metric}"] for h in scored], linestyle="--",
                       marker="." if len(scored) < len(epochs) else None,
                       color=line.get_color(), label=f"test, seed {r['seed']}")
        ax_metric.axvline(r["best_epoch"], color=line.get_color(), alpha=0.3)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    if all(h["train_loss"] > 0 for r in results for h in r["history"]):
        ax_loss.set_yscale("log")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"{metric} (vertical line: best validation epoch)")
    ax_loss.legend(fontsize=7)
    ax_metric.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _format(summary: dict) -> str:
    m = summary["metric"]
    n = len(summary["seeds"])
    lines = [f"{summary['result_name']} | {summary['model']} ({summary['num_params']:,} parameters) | {n} seed(s)"]
    for split in ("val", "test"):
        lines.append(f"  {split:<4} {m}: {summary[f'{split}_{m}_mean']:.4f} ± {summary[f'{split}_{m}_std']:.4f}")
    for key in summary:
        if key.startswith("test_") and key.endswith("_mean") and key != f"test_{m}_mean":
            name = key[5:-5]
            lines.append(f"  test {name}: {summary[key]:.4f} ± {summary[f'test_{name}_std']:.4f}")
    return "\n".join(lines)


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
        _atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
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
        _atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
        if task.ogb_name is not None:
            _atomic_write_text(out / "ogb_leaderboard.json", json.dumps(ogb_leaderboard(summary), indent=2))
        plot_learning_curves(results, task.metric, out / "learning_curve.png")
        print(_format(summary), flush=True)
    return summary


def run(cfg: TrainConfig) -> dict:
    """Entry point: start the process group when under ``torchrun``, train, shut down."""
    info = distributed.init(cfg.resolved_device())
    try:
        return train(cfg, info)
    finally:
        distributed.shutdown()

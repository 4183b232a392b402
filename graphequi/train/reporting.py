r"""What a training run reports: the summary over seeds, the OGB leaderboard
fields, learning-curve plots and the printed table.

``OUT/summary.json`` holds mean +- std over seeds (sample std, ``ddof=1``) of
every validation and test score at each seed's best validation epoch,
``OUT/learning_curve.png`` the curves, and for ``ogbg-*`` datasets
``OUT/ogb_leaderboard.json`` the fields of a leaderboard submission.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import numpy as np
import torch

from graphequi._io import atomic_write
from graphequi._platform import cpu_model
from graphequi.train.config import TrainConfig
from graphequi.train.tasks import Task

__all__ = ["hardware_description", "summarize", "ogb_leaderboard", "plot_learning_curves", "format_summary",
           "write_reports"]


def hardware_description(device: str, world_size: int = 1) -> str:
    """What the run ran on, for the summary: the GPU or CPU model (and thread count), times the processes."""
    if device.startswith("cuda") and torch.cuda.is_available():
        what = torch.cuda.get_device_name(torch.device(device))
    else:
        what = f"{cpu_model()} ({torch.get_num_threads()} threads)"
    return f"{world_size} x {what}" if world_size > 1 else what


def _mean_std(values: List[float]) -> tuple:
    # sample std (ddof=1), as papers report over seeds; one seed has no spread
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def summarize(cfg: TrainConfig, task: Task, results: List[dict], hardware: str) -> dict:
    """Mean +- std over seeds of every validation/test score at the best validation epoch.

    Args:
        cfg: the run's configuration (stored in the summary).
        task: the dataset (name, metric, split sizes).
        results: :func:`graphequi.train.trainer.run_seed` records, one per seed.
        hardware: :func:`hardware_description` of the run.
    """
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
    """The fields of an OGB leaderboard submission, from a :func:`summarize` dict."""
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
    """Training loss and validation/test ``metric`` per epoch of every seed, saved as a PNG at ``path``."""
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


def format_summary(summary: dict) -> str:
    """The table printed at the end of a run: the metric (and extras) of both splits, mean +- std."""
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


def write_reports(out: Path, task: Task, results: List[dict], summary: dict) -> None:
    """Write ``summary.json``, ``ogb_leaderboard.json`` (``ogbg-*`` only) and
    ``learning_curve.png`` under ``out``, and print the summary table."""
    atomic_write(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    if task.ogb_name is not None:
        board = json.dumps(ogb_leaderboard(summary), indent=2)
        atomic_write(out / "ogb_leaderboard.json", lambda tmp: tmp.write_text(board))
    plot_learning_curves(results, task.metric, out / "learning_curve.png")
    print(format_summary(summary), flush=True)

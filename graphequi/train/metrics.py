"""Losses and scores of the trainer.

The metrics themselves (and whether higher is better) are the table
:data:`graphequi.datasets.metrics.METRICS`; :func:`score` picks the ones a
task reports. ``ogbg-*`` datasets are always scored by
``ogb.graphproppred.Evaluator`` (the leaderboard's own code).
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphequi.datasets.metrics import METRICS, roc_auc
from graphequi.datasets.metrics import score as metric_score

__all__ = ["loss_fn", "score", "roc_auc"]

# What every task of a kind reports besides its own metric (first), in this order.
_REPORTED = {"regression": ("mae", "rmse"), "binary": ("rocauc",), "multiclass": ("accuracy",)}


def loss_fn(name: str, out: Tensor, y: Tensor) -> Tensor:
    """Mean loss over labeled entries (NaN targets are skipped).

    ``l1`` / ``mse`` compare ``out`` with a (standardized) float target of the
    same shape, ``bce`` takes logits, ``ce`` class logits ``[B, C]`` and
    integer labels ``[B]``.
    """
    if name == "ce":
        return F.cross_entropy(out, y.view(-1).long())
    y = y.view(out.shape).to(out.dtype)
    labeled = ~torch.isnan(y)
    if not bool(labeled.all()):
        out, y = out[labeled], y[labeled]
    if y.numel() == 0:
        return out.sum() * 0.0  # keeps the graph connected (DDP needs every parameter used)
    if name == "l1":
        return F.l1_loss(out, y)
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "bce":
        return F.binary_cross_entropy_with_logits(out, y)
    raise ValueError(f"unknown loss {name!r}; use l1, mse, bce or ce")


def score(task, y_true: np.ndarray, y_pred: np.ndarray) -> Dict[str, float]:
    """The task's metric (and extras) for predictions in target units.

    Args:
        task: a :class:`graphequi.train.tasks.Task`.
        y_true: ``[N, T]`` targets (``[N]`` class labels for multiclass).
        y_pred: ``[N, T]`` predictions / scores (``[N, C]`` logits for multiclass).
    """
    if task.ogb_name is not None:
        return {task.metric: metric_score(task.metric, y_true, y_pred, ogb_name=task.ogb_name)}
    names = dict.fromkeys(_REPORTED[task.kind] + (task.metric,))
    out = {name: METRICS[name].compute(y_true, y_pred) for name in names}
    if "nmae" in task.extra_metrics:
        out["nmae"] = out["mae"] / task.target_std
    return out

"""Losses and scores of the trainer.

``ogbg-*`` datasets are always scored by ``ogb.graphproppred.Evaluator`` (the
leaderboard's own code); the other metrics are computed here.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["loss_fn", "score", "roc_auc"]


def loss_fn(name: str, out: Tensor, y: Tensor) -> Tensor:
    """Mean loss over labelled entries (NaN targets are skipped).

    ``l1`` / ``mse`` compare ``out`` with a (standardised) float target of the
    same shape, ``bce`` takes logits, ``ce`` class logits ``[B, C]`` and
    integer labels ``[B]``.
    """
    if name == "ce":
        return F.cross_entropy(out, y.view(-1).long())
    y = y.view(out.shape).to(out.dtype)
    labelled = ~torch.isnan(y)
    if not bool(labelled.all()):
        out, y = out[labelled], y[labelled]
    if y.numel() == 0:
        return out.sum() * 0.0  # keeps the graph connected (DDP needs every parameter used)
    if name == "l1":
        return F.l1_loss(out, y)
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "bce":
        return F.binary_cross_entropy_with_logits(out, y)
    raise ValueError(f"unknown loss {name!r}; use l1, mse, bce or ce")


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Mean ROC-AUC over the columns that have both classes (NaN = unlabelled),
    computed from ranks (ties get their average rank), as sklearn does."""
    from scipy.stats import rankdata
    y_true, score = np.asarray(y_true).reshape(len(y_true), -1), np.asarray(score).reshape(len(score), -1)
    aucs = []
    for t in range(y_true.shape[1]):
        keep = ~np.isnan(y_true[:, t])
        y, s = y_true[keep, t], score[keep, t]
        pos, neg = (y == 1).sum(), (y == 0).sum()
        if pos == 0 or neg == 0:
            continue
        ranks = rankdata(s)
        aucs.append((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))
    if not aucs:
        raise ValueError("ROC-AUC undefined: no target column has both classes")
    return float(np.mean(aucs))


def score(task, y_true: np.ndarray, y_pred: np.ndarray) -> Dict[str, float]:
    """The task's metric (and extras) for predictions in target units.

    Args:
        task: a :class:`graphequi.train.tasks.Task`.
        y_true: ``[N, T]`` targets (``[N]`` class labels for multiclass).
        y_pred: ``[N, T]`` predictions / scores (``[N, C]`` logits for multiclass).
    """
    if task.ogb_name is not None:
        from ogb.graphproppred import Evaluator
        evaluator = Evaluator(task.ogb_name)
        result = evaluator.eval({"y_true": y_true.reshape(len(y_true), -1),
                                 "y_pred": y_pred.reshape(len(y_pred), -1)})
        return {task.metric: float(result[task.metric])}
    out: Dict[str, float] = {}
    if task.kind == "multiclass":
        out["accuracy"] = float((y_pred.argmax(-1) == y_true.reshape(-1)).mean())
        return out
    if task.kind == "binary":
        out["rocauc"] = roc_auc(y_true, y_pred)
        return out
    err = y_pred.reshape(y_true.shape) - y_true
    keep = ~np.isnan(err)
    out["mae"] = float(np.abs(err[keep]).mean())
    out["rmse"] = float(np.sqrt((err[keep] ** 2).mean()))
    if "nmae" in task.extra_metrics:
        out["nmae"] = out["mae"] / task.target_std
    return out

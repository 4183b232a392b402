r"""The benchmark metrics, one table row per name: how to compute it and whether higher is better.

Every score of :mod:`graphequi` -- :meth:`graphequi.datasets.DatasetSplits.evaluate`
and the trainer's :func:`graphequi.train.metrics.score` -- is computed here.
``ogbg-*`` datasets are always scored by :class:`ogb.graphproppred.Evaluator`
(the leaderboard's own code, :func:`score` with ``ogb_name``); the ranking
metrics of the other datasets call the same scikit-learn functions as that
evaluator, with its masking of unlabeled (NaN) targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

__all__ = ["Metric", "METRICS", "METRIC_NAMES", "score", "mae", "rmse", "accuracy", "roc_auc",
           "average_precision"]


def _columns(y_true, y_pred) -> tuple:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)


def _labeled_errors(y_true, y_pred) -> np.ndarray:
    y_true, y_pred = _columns(y_true, y_pred)
    err = y_pred.reshape(y_true.shape) - y_true
    return err[~np.isnan(err)]


def mae(y_true, y_pred) -> float:
    """Mean absolute error over the labeled entries of ``[N, T]`` targets."""
    return float(np.abs(_labeled_errors(y_true, y_pred)).mean())


def rmse(y_true, y_pred) -> float:
    """Root mean squared error over the labeled entries of ``[N, T]`` targets."""
    return float(np.sqrt((_labeled_errors(y_true, y_pred) ** 2).mean()))


def accuracy(y_true, y_pred) -> float:
    """Accuracy of the arg-max of ``[N, C]`` logits against ``[N]`` class labels."""
    y_pred = np.asarray(y_pred)
    return float((y_pred.argmax(-1) == np.asarray(y_true).reshape(-1)).mean())


def _per_task(name: str, fn: Callable, y_true, y_score) -> float:
    """Mean of ``fn`` over the target columns that have both classes, NaN entries
    left out (what OGB's ``eval_rocauc`` / ``eval_ap`` do)."""
    y_true, y_score = _columns(y_true, y_score)
    values = []
    for t in range(y_true.shape[1]):
        keep = ~np.isnan(y_true[:, t])
        y = y_true[keep, t]
        if (y == 1).any() and (y == 0).any():
            values.append(fn(y, y_score[keep, t]))
    if not values:
        raise ValueError(f"{name} undefined: no target column has both classes")
    return float(np.mean(values))


def roc_auc(y_true, y_score) -> float:
    """Mean ROC-AUC (:func:`sklearn.metrics.roc_auc_score`) over the columns of
    ``[N, T]`` 0/1 targets (NaN: unlabeled) that have both classes."""
    from sklearn.metrics import roc_auc_score
    return _per_task("ROC-AUC", roc_auc_score, y_true, y_score)


def average_precision(y_true, y_score) -> float:
    """Mean average precision (:func:`sklearn.metrics.average_precision_score`) over
    the columns of ``[N, T]`` 0/1 targets (NaN: unlabeled) that have both classes."""
    from sklearn.metrics import average_precision_score
    return _per_task("average precision", average_precision_score, y_true, y_score)


@dataclass(frozen=True)
class Metric:
    """One metric: ``compute(y_true, y_pred) -> float`` on NumPy arrays, and its direction."""

    description: str
    compute: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool


METRICS: Dict[str, Metric] = {
    "mae": Metric("mean absolute error", mae, higher_is_better=False),
    "rmse": Metric("root mean squared error", rmse, higher_is_better=False),
    "rocauc": Metric("ROC-AUC, mean over tasks", roc_auc, higher_is_better=True),
    "ap": Metric("average precision, mean over tasks", average_precision, higher_is_better=True),
    "accuracy": Metric("accuracy of the arg-max class", accuracy, higher_is_better=True),
}
METRIC_NAMES = tuple(METRICS)


def score(metric: str, y_true, y_pred, *, ogb_name: Optional[str] = None) -> float:
    """Score predictions with ``metric``.

    Args:
        metric: a name of :data:`METRICS`.
        y_true: ``[N, T]`` targets (``[N]`` class labels for ``accuracy``).
        y_pred: ``[N, T]`` predictions or scores (``[N, C]`` logits for ``accuracy``).
        ogb_name: an ``ogbg-*`` dataset: score with its official
            :class:`ogb.graphproppred.Evaluator` instead.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} rows, y_pred {len(y_pred)}")
    if ogb_name is not None:
        from .ogb_mol import evaluator_for
        y_true, y_pred = _columns(y_true, y_pred)
        return float(evaluator_for(ogb_name).eval({"y_true": y_true, "y_pred": y_pred})[metric])
    return METRICS[metric].compute(y_true, y_pred)

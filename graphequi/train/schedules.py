r"""Learning-rate schedules of the trainer, one table row per name.

A row says how to build the schedule, how to step it after an epoch, and the
two facts the training loop needs about it: whether its course depends on
``epochs`` (then ``--resume`` may not change the epoch count) and whether the
run stops once the rate fell below ``min_lr`` (the usual ZINC/PPGN rule).
Adding a schedule is adding a row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict

import torch

if TYPE_CHECKING:  # config imports this module for the names; only the type flows back
    from graphequi.train.config import TrainConfig

__all__ = ["Schedule", "SCHEDULES", "SCHEDULE_NAMES"]

#: ``build(optimizer, cfg, higher_is_better)`` -> a ``torch.optim.lr_scheduler`` object
ScheduleFactory = Callable[[torch.optim.Optimizer, "TrainConfig", bool], object]
#: ``step(scheduler, validation_metric)`` after every epoch
ScheduleStep = Callable[[object, float], None]


@dataclass(frozen=True)
class Schedule:
    """One learning-rate schedule: its ``--help`` text, factory, per-epoch step and
    the two facts the training loop needs (see the module docstring)."""

    description: str
    build: ScheduleFactory
    step: ScheduleStep
    depends_on_epochs: bool
    stops_below_min_lr: bool


def _plateau(optimizer, cfg: "TrainConfig", higher_is_better: bool):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if higher_is_better else "min", factor=cfg.lr_factor,
        patience=cfg.lr_patience)


def _cosine(optimizer, cfg: "TrainConfig", higher_is_better: bool):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)


SCHEDULES: Dict[str, Schedule] = {
    "plateau": Schedule("multiply lr by lr_factor after lr_patience epochs without validation gain; "
                        "stop below min_lr", _plateau, lambda s, metric: s.step(metric),
                        depends_on_epochs=False, stops_below_min_lr=True),
    "cosine": Schedule("anneal from lr to min_lr over --epochs", _cosine, lambda s, metric: s.step(),
                       depends_on_epochs=True, stops_below_min_lr=False),
    # a plateau scheduler that is never stepped, so every checkpoint has the same keys
    "none": Schedule("constant lr", _plateau, lambda s, metric: None,
                     depends_on_epochs=False, stops_below_min_lr=False),
}
SCHEDULE_NAMES = tuple(SCHEDULES)

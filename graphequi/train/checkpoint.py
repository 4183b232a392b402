r"""Checkpoints of one seed: what is saved after every epoch, and what ``--resume`` checks.

A checkpoint holds the model, optimizer and scheduler states, the
torch/numpy/python (and CUDA) RNG states of every process, the run's
:class:`RunState` (as a plain dict: a checkpoint must not depend on where a
class lives), the config and the number of processes. Restoring all of it is
what makes a resumed run give the numbers of an uninterrupted one.

A run resumes only under the config it was written with, compared on
:attr:`TrainConfig.RESUME_KEYS` (and ``epochs`` for schedules whose course
depends on it); a key newer than the checkpoint compares as its default, the
value every older run had.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from graphequi._io import atomic_write
from graphequi.train.config import TrainConfig
from graphequi.train.schedules import SCHEDULES

__all__ = ["RunState", "capture_rng_state", "restore_rng_state", "save_checkpoint", "load_checkpoint",
           "check_resumable"]


@dataclass
class RunState:
    """The bookkeeping of one seed's run, saved with every checkpoint.

    Attributes:
        epoch: the last finished epoch (0: none).
        best_epoch: the epoch of the best validation score so far.
        best_val: that score (of ``task.metric``).
        best: ``{"val": scores, "test": scores}`` of ``best_epoch``.
        stopped: the run met a stopping rule (learning rate below ``min_lr``,
            compute budget spent).
        history: one record per finished epoch, the lines of ``metrics.jsonl``.
        wall_time: training seconds over all epochs, resumes included.
    """

    epoch: int = 0
    best_epoch: Optional[int] = None
    best_val: Optional[float] = None
    best: Optional[dict] = None
    stopped: bool = False
    history: List[dict] = field(default_factory=list)
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> "RunState":
        """From :meth:`to_dict` or the untyped dict of older checkpoints (same keys;
        a field newer than the checkpoint takes its default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(state) - names)
        if unknown:
            raise ValueError(f"unknown run state key(s) in the checkpoint: {', '.join(unknown)}")
        return cls(**state)


def capture_rng_state() -> dict:
    """This process's torch, numpy, python (and initialized CUDA) RNG states."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Undo to :func:`capture_rng_state`'s ``state``."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, model, optimizer, scheduler, run_state: RunState, rngs: list,
                    cfg: TrainConfig, world_size: int) -> None:
    """Write the checkpoint atomically: a kill mid-write leaves the previous epoch's.

    Args:
        rngs: :func:`capture_rng_state` of every process, by rank.
    """
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "state": run_state.to_dict(), "rng": rngs,
            "config": cfg.to_dict(), "world_size": world_size, "epoch": run_state.epoch}
    atomic_write(path, lambda tmp: torch.save(ckpt, tmp))


def check_resumable(ckpt: dict, cfg: TrainConfig, world_size: int, path: Path) -> None:
    """Raise ``ValueError`` unless ``cfg`` on ``world_size`` processes may continue ``ckpt``."""
    keys = TrainConfig.RESUME_KEYS + (("epochs",) if SCHEDULES[cfg.scheduler].depends_on_epochs else ())
    saved, defaults, now = ckpt["config"], TrainConfig.defaults(), cfg.to_dict()
    mismatched = [k for k in keys if saved.get(k, defaults.get(k)) != now[k]]
    if mismatched:
        raise ValueError(f"cannot resume {path}: config differs in {', '.join(mismatched)}")
    if ckpt["world_size"] != world_size:
        raise ValueError(f"cannot resume {path}: saved with {ckpt['world_size']} process(es), now {world_size}")


def load_checkpoint(path: Path, cfg: TrainConfig, *, world_size: int, rank: int, model, optimizer,
                    scheduler) -> RunState:
    """Check that ``cfg`` may continue the checkpoint at ``path``, load it into
    ``model``, ``optimizer`` and ``scheduler``, restore process ``rank``'s RNG
    states, and return the run state."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    check_resumable(ckpt, cfg, world_size, path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    restore_rng_state(ckpt["rng"][rank])
    return RunState.from_dict(ckpt["state"])

"""The wall-clock-capped training loop shared by the point-cloud training
benchmarks (``ponita_nbody.py``, ``ponita_rmd17.py``).

The number of epochs that fit in the cap is not known in advance, so the
optional cosine schedule runs over the elapsed fraction of the cap (the run
ends at a small rate however fast the machine is), and the result JSON is
rewritten at every evaluation, so a stopped run keeps its record.
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Callable, Optional

import torch


def write_result(path, benchmark: str, args, model: torch.nn.Module, **fields) -> dict:
    """Write ``{benchmark, args, torch, threads, machine, params, **fields}`` to ``path``."""
    result = {"benchmark": benchmark, "args": vars(args), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "params": sum(p.numel() for p in model.parameters()), **fields}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2))
    return result


def train_within_cap(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader,
                     loss_of: Callable, validate: Callable[[], dict], test: Callable[[], dict], *,
                     score: str, lr: float, schedule: str, epochs: int, time_limit_min: float,
                     eval_every: int, on_record: Callable[[Optional[dict], list], None]):
    """Train until ``epochs`` or the cap, whichever comes first.

    Args:
        loss_of: ``batch -> loss`` (the forward pass; this loop steps).
        validate, test: ``() -> {metric: value}``; ``test`` runs at every new
            best (lowest) ``score`` of ``validate``.
        schedule: ``"constant"`` or ``"cosine"`` (over the wall-clock cap).
        on_record: ``(best, history)``, called after every evaluation.

    Returns:
        ``(best, history)``: the best evaluation row and all of them.
    """
    cap_s = 60 * time_limit_min
    start, history, best = time.time(), [], None
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in loader:
            if schedule == "cosine":
                done = min(1.0, (time.time() - start) / cap_s)
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * done))
            loss = loss_of(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        out_of_time = time.time() - start > cap_s
        if epoch % eval_every == 0 or out_of_time or epoch == epochs:
            row = {"epoch": epoch, "minutes": (time.time() - start) / 60, "train_loss": float(loss.detach()),
                   **validate(), "lr": optimizer.param_groups[0]["lr"]}
            if best is None or row[score] < best[score]:
                row.update(test())
                best = row
            history.append(row)
            print(json.dumps(row), flush=True)
            on_record(best, history)
        if out_of_time:
            break
    return best, history

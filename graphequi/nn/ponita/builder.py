"""The trainer's constructor of :class:`Ponita`."""
from __future__ import annotations

import torch

from .model import Ponita

__all__ = ["build_ponita"]


def build_ponita(task, **kwargs) -> torch.nn.Module:
    """A :class:`Ponita` for ``task`` (any object with ``train`` graphs and
    ``num_outputs``): input widths from the first training graph's ``x``
    ``[N, S]`` and ``vec`` ``[N, V, 3]``, ``out_scalars = task.num_outputs``;
    every other argument from ``kwargs`` (``hidden`` defaults to 128).
    """
    sample = task.train[0]
    x, vec = getattr(sample, "x", None), getattr(sample, "vec", None)
    kwargs.setdefault("hidden", 128)
    kwargs.setdefault("in_scalars", 0 if x is None else (1 if x.dim() == 1 else int(x.size(-1))))
    kwargs.setdefault("in_vectors", 0 if vec is None else int(vec.size(1)))
    kwargs.setdefault("out_scalars", int(task.num_outputs))
    return Ponita(**kwargs)

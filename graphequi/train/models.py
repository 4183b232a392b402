"""Model names of the trainer -> :mod:`graphequi.nn` constructors."""
from __future__ import annotations

import torch

from graphequi.nn import PolyGIN, PolyGINE, PPGNPlusPlus
from graphequi.train.tasks import POLY_LEVELS, Task

__all__ = ["build_model", "MODEL_NAMES", "PAIR_KEY"]

MODEL_NAMES = tuple(POLY_LEVELS)
PAIR_KEY = "poly_pair_attr"


def _width(graph, key: str) -> int:
    value = getattr(graph, key, None)
    if value is None:
        raise ValueError(f"the training graphs have no `{key}`: the polynomial features were not attached")
    return 1 if value.dim() == 1 else int(value.size(-1))


def build_model(name: str, task: Task, **kwargs) -> torch.nn.Module:
    """Instantiate model ``name`` for ``task`` (inputs and output width from
    the task, everything else from ``kwargs``)."""
    name = name.lower()
    if name not in POLY_LEVELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    levels = POLY_LEVELS[name]
    sample = task.train[0]
    inputs = dict(node_vocab=task.node_vocab, node_in_channels=task.node_in_channels)
    edge_inputs = dict(edge_vocab=task.edge_vocab, edge_in_channels=task.edge_in_channels)
    if name in ("ppgn++", "ppgn"):
        poly = _width(sample, PAIR_KEY) if "pair" in levels else 0
        if kwargs.get("readout") == "sum" and "readout_scale" not in kwargs:
            # sums over n and n^2 entries: scale by the mean training graph size (a constant)
            kwargs["readout_scale"] = sum(g.num_nodes for g in task.train) / len(task.train)
        return PPGNPlusPlus(task.num_outputs, **inputs, **edge_inputs, poly_channels=poly,
                            pair_key=PAIR_KEY, **kwargs)
    poly = _width(sample, "poly_x") if "node" in levels else 0
    if name in ("gin", "polygin"):
        return PolyGIN(task.num_outputs, **inputs, poly_channels=poly, **kwargs)
    poly_edge = _width(sample, "poly_edge_attr") if "edge" in levels else 0
    if task.edge_vocab is None and task.edge_in_channels is None and not poly_edge:
        raise ValueError(f"{name} needs edge features but {task.name} has none; use gin/polygin")
    return PolyGINE(task.num_outputs, **inputs, **edge_inputs, poly_channels=poly,
                    poly_edge_channels=poly_edge, **kwargs)

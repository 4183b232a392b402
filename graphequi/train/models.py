r"""Models of the trainer, one table row per name (like :mod:`graphequi.train.schedules`).

A row says which polynomial feature levels the model reads (``node``:
``data.poly_x``, ``edge``: ``data.poly_edge_attr``, ``pair``:
``data.poly_pair_attr``; :func:`graphequi.train.tasks.load_task` attaches
exactly those) and how to build it for a task. Adding a model is adding a row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Tuple

import torch

from graphequi.nn import PolyGIN, PolyGINE, PPGNPlusPlus

if TYPE_CHECKING:  # tasks imports this module for the feature levels; only the type flows back
    from graphequi.train.tasks import Task

__all__ = ["Model", "MODELS", "MODEL_NAMES", "PAIR_KEY", "build_model", "model_help"]

PAIR_KEY = "poly_pair_attr"

#: ``build(task, poly_levels, **kwargs)`` -> the model; ``poly_levels`` is the row's own
ModelFactory = Callable[..., torch.nn.Module]


@dataclass(frozen=True)
class Model:
    """One trainable model: its ``--help`` text, the polynomial feature levels it
    reads, and its factory (see the module docstring)."""

    description: str
    build: ModelFactory
    poly_levels: Tuple[str, ...] = ()


def _width(task: "Task", key: str) -> int:
    value = getattr(task.train[0], key, None)
    if value is None:
        raise ValueError(f"the training graphs have no `{key}`: the polynomial features were not attached")
    return 1 if value.dim() == 1 else int(value.size(-1))


def _node_inputs(task: "Task") -> dict:
    return dict(node_vocab=task.node_vocab, node_in_channels=task.node_in_channels)


def _edge_inputs(task: "Task") -> dict:
    return dict(edge_vocab=task.edge_vocab, edge_in_channels=task.edge_in_channels)


def _ppgn(task: "Task", levels, **kwargs) -> torch.nn.Module:
    poly = _width(task, PAIR_KEY) if "pair" in levels else 0
    if kwargs.get("readout") == "sum" and "readout_scale" not in kwargs:
        # sums over n and n^2 entries: scale by the mean training graph size (a constant)
        kwargs["readout_scale"] = sum(g.num_nodes for g in task.train) / len(task.train)
    return PPGNPlusPlus(task.num_outputs, **_node_inputs(task), **_edge_inputs(task), poly_channels=poly,
                        pair_key=PAIR_KEY, **kwargs)


def _gin(task: "Task", levels, **kwargs) -> torch.nn.Module:
    poly = _width(task, "poly_x") if "node" in levels else 0
    return PolyGIN(task.num_outputs, **_node_inputs(task), poly_channels=poly, **kwargs)


def _gine(task: "Task", levels, **kwargs) -> torch.nn.Module:
    poly = _width(task, "poly_x") if "node" in levels else 0
    poly_edge = _width(task, "poly_edge_attr") if "edge" in levels else 0
    if task.edge_vocab is None and task.edge_in_channels is None and not poly_edge:
        raise ValueError(f"GINE needs edge features but {task.name} has none; use gin/polygin")
    return PolyGINE(task.num_outputs, **_node_inputs(task), **_edge_inputs(task), poly_channels=poly,
                    poly_edge_channels=poly_edge, **kwargs)


MODELS: Dict[str, Model] = {
    "ppgn++": Model("PPGN with the pair-level polynomial features (Puny et al., ICML 2023)", _ppgn, ("pair",)),
    "ppgn": Model("PPGN (Maron et al., NeurIPS 2019), no polynomial features", _ppgn),
    "polygin": Model("GIN with the node-level polynomial features", _gin, ("node",)),
    "polygine": Model("GINE with the node- and edge-level polynomial features", _gine, ("node", "edge")),
    "gin": Model("GIN (Xu et al., ICLR 2019), no polynomial features", _gin),
    "gine": Model("GINE (GIN with edge features, Hu et al., ICLR 2020), no polynomial features", _gine),
}
MODEL_NAMES = tuple(MODELS)


def model_help() -> str:
    """The ``--model`` help text, from the table."""
    return "; ".join(f"{name}: {m.description}" for name, m in MODELS.items())


def get_model(name: str) -> Model:
    """The table row of ``name`` (case-insensitive); ``ValueError`` for an unknown model."""
    model = MODELS.get(name.lower())
    if model is None:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    return model


def build_model(name: str, task: "Task", **kwargs) -> torch.nn.Module:
    """Instantiate model ``name`` for ``task`` (inputs and output width from
    the task, everything else from ``kwargs``)."""
    model = get_model(name)
    return model.build(task, model.poly_levels, **kwargs)

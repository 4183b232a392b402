r"""Models of the trainer, one table row per name (like :mod:`graphequi.train.schedules`).

A row says which polynomial feature levels the model reads (``node``:
``data.poly_x``, ``edge``: ``data.poly_edge_attr``, ``pair``:
``data.poly_pair_attr``; :func:`graphequi.train.tasks.load_task` attaches
exactly those) and how to build it for a task. Adding a model is adding a row.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Optional, Tuple

import torch

from graphequi.nn import SPEN, Ponita, PolyGIN, PolyGINE, PPGNPlusPlus, build_ponita, build_spen
from graphequi.nn.aggr import LCMAggregation
from graphequi.poly.keys import POLY_EDGE_KEY, POLY_NODE_KEY, POLY_PAIR_KEY
from graphequi.transforms import EgoNetBags

if TYPE_CHECKING:  # tasks imports this module for the feature levels; only the type flows back
    from graphequi.train.tasks import Task

__all__ = ["Model", "MODELS", "MODEL_NAMES", "PAIR_KEY", "build_model", "model_help"]

PAIR_KEY = POLY_PAIR_KEY

#: ``build(task, poly_levels, **kwargs)`` -> the model; ``poly_levels`` is the row's own
ModelFactory = Callable[..., torch.nn.Module]
#: ``transform(model_kwargs)`` -> a per-graph transform that :func:`~graphequi.train.tasks.load_task` applies
GraphTransform = Callable[[dict], Callable]


@dataclass(frozen=True)
class Model:
    """One trainable model: its ``--help`` text, the polynomial feature levels it
    reads, and its factory (see the module docstring)."""

    description: str
    build: ModelFactory
    poly_levels: Tuple[str, ...] = ()
    transform: Optional[GraphTransform] = None
    #: the class the factory passes the remaining ``--model-arg`` keys to (``None``: not checked)
    module: Optional[type] = None

    def accepted_arguments(self) -> Tuple[str, ...]:
        """The ``model_kwargs`` keys this row takes: the factory's own keyword
        arguments and those of :attr:`module`, less the inputs the factory
        sets from the task."""
        def named(fn) -> set:
            return {p.name for p in inspect.signature(fn).parameters.values()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        own = named(self.build) - {"task", "levels"}
        return tuple(sorted((own | named(self.module)) - _FROM_TASK))

    def check_arguments(self, keys: Iterable[str]) -> None:
        """Raise a :class:`ValueError` naming the keys the model does not take
        (before any data is loaded), with the ones it does."""
        if self.module is None:
            return
        accepted = self.accepted_arguments()
        unknown = sorted(set(keys) - set(accepted))
        if unknown:
            raise ValueError(f"{self.module.__name__} does not take {', '.join(map(repr, unknown))}; "
                             f"its model arguments are {', '.join(accepted)}")


#: constructor arguments the factories set from the task, never from ``model_kwargs``
_FROM_TASK = frozenset({"out_channels", "node_vocab", "node_in_channels", "edge_vocab", "edge_in_channels",
                        "poly_channels", "poly_edge_channels", "pair_key"})


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
    poly = _width(task, POLY_NODE_KEY) if "node" in levels else 0
    return PolyGIN(task.num_outputs, **_node_inputs(task), poly_channels=poly, **kwargs)


def _gin_lcm(task: "Task", levels, lcm_cell: str = "gru", **kwargs) -> torch.nn.Module:
    return _gin(task, levels, aggr=LCMAggregation.square(cell=lcm_cell), **kwargs)


def _spen(task: "Task", levels, num_hops: int = 1, **kwargs) -> torch.nn.Module:
    del levels, num_hops  # the ego-nets were built by the row's transform
    return build_spen(task, **kwargs)


def _ego_nets(kwargs: dict) -> Callable:
    return EgoNetBags(num_hops=int(kwargs.get("num_hops", 1)))


class ScalarOutputs(torch.nn.Module):
    """A point-cloud model's invariant outputs (``PointCloudOutput.scalar``,
    ``[B, S]``) as the tensor the trainer scores."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def reset_parameters(self):
        self.model.reset_parameters()

    def forward(self, data):
        return self.model(data).scalar

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.model!r})"


def _ponita(task: "Task", levels, **kwargs) -> torch.nn.Module:
    del levels
    if getattr(task.train[0], "pos", None) is None:
        raise ValueError(f"ponita needs 3D positions (data.pos), which {task.name} does not have")
    return ScalarOutputs(build_ponita(task, **kwargs))


def _gine(task: "Task", levels, **kwargs) -> torch.nn.Module:
    poly = _width(task, POLY_NODE_KEY) if "node" in levels else 0
    poly_edge = _width(task, POLY_EDGE_KEY) if "edge" in levels else 0
    if task.edge_vocab is None and task.edge_in_channels is None and not poly_edge:
        raise ValueError(f"GINE needs edge features but {task.name} has none; use gin/polygin")
    return PolyGINE(task.num_outputs, **_node_inputs(task), **_edge_inputs(task), poly_channels=poly,
                    poly_edge_channels=poly_edge, **kwargs)


MODELS: Dict[str, Model] = {
    "ppgn++": Model("PPGN with the pair-level polynomial features (Puny et al., ICML 2023)", _ppgn, ("pair",),
                    module=PPGNPlusPlus),
    "ppgn": Model("PPGN (Maron et al., NeurIPS 2019), no polynomial features", _ppgn,
                  module=PPGNPlusPlus),
    "polygin": Model("GIN with the node-level polynomial features", _gin, ("node",), module=PolyGIN),
    "polygine": Model("GINE with the node- and edge-level polynomial features", _gine,
                      ("node", "edge"), module=PolyGINE),
    "gin": Model("GIN (Xu et al., ICLR 2019), no polynomial features", _gin, module=PolyGIN),
    "gine": Model("GINE (GIN with edge features, Hu et al., ICLR 2020), no polynomial features",
                  _gine, module=PolyGINE),
    "gin-lcm": Model("GIN with learnable commutative monoid aggregation (Ong & Velickovic, LoG 2022; "
                     "--model-arg lcm_cell=gru|mlp)", _gin_lcm, module=PolyGIN),
    "spen": Model("subgraph permutation equivariant network on 1-hop ego-nets (Mitton & Murray-Smith; "
                  "--model-arg num_hops=K)", _spen, transform=_ego_nets, module=SPEN),
    "ponita": Model("PONITA (Bekkers et al., ICLR 2024) on point clouds with data.pos", _ponita,
                    module=Ponita),
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

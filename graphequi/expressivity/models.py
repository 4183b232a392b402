"""Models for the BREC pair-separation protocol, by name.

:func:`model_factory` builds the ``(model_fn, transform)`` pair that
:func:`~graphequi.expressivity.separates` and
:func:`~graphequi.expressivity.run_brec` take. Each name also has the exact
oracle that bounds it (:data:`MODEL_BOUNDS`, the ``violations`` column of
:class:`~graphequi.expressivity.BRECTable`) and default sizes
(:data:`MODEL_DEFAULTS`; the PPGNs use BREC's PPGN configuration, 5 blocks of
width 32).

More models are added with :func:`register_model`, e.g.::

    register_model("my-model", build, bound="2-FWL", layers=5)

where ``build(hidden, layers, output_dim) -> (model_fn, transform)``;
the name then works in ``graphequi expressivity --model spen`` and gets a
row (and a violations check) in the BREC table.

The built-in models keep *cumulative* batch-norm statistics
(:func:`with_cumulative_norm_statistics`). The protocol compares eval-mode
outputs after at most 20 short epochs, and it stops as early as the sixth
(12 optimizer steps with BREC's 64 graphs in batches of 32). An exponential
average with PyTorch's default momentum of 0.1 then still holds
0.9^12 (28 %) of the initial statistics (mean 0, variance 1),
so the eval-mode network is not the one that training separated the pair
with.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from graphequi.poly.keys import POLY_PAIR_KEY

__all__ = ["MODELS", "MODEL_BOUNDS", "MODEL_DEFAULTS", "model_factory", "register_model",
           "with_cumulative_norm_statistics"]

Builder = Callable[[int, int, int], tuple]

_BUILDERS: dict[str, Builder] = {}
#: model name -> the oracle (:data:`~graphequi.expressivity.brec_run.ORACLES`) bounding it.
MODEL_BOUNDS: dict[str, str] = {}
#: model name -> default ``{"hidden": ..., "layers": ...}``.
MODEL_DEFAULTS: dict[str, dict[str, int]] = {}
#: registered model names, in registration order (updated in place by :func:`register_model`).
MODELS: list[str] = []


def register_model(name: str, builder: Builder, *, bound: Optional[str], hidden: int = 32,
                   layers: int = 4) -> None:
    """Add a model name.

    Args:
        name: the name used by :func:`model_factory` and the CLI.
        builder: ``(hidden, layers, output_dim) -> (model_fn, transform)``.
        bound: the oracle that bounds the model (``None``: no check).
        hidden, layers: default sizes.
    """
    if not callable(builder):
        raise TypeError(f"builder for {name!r} must be callable")
    _BUILDERS[name] = builder
    if bound is None:
        MODEL_BOUNDS.pop(name, None)
    else:
        MODEL_BOUNDS[name] = bound
    MODEL_DEFAULTS[name] = {"hidden": int(hidden), "layers": int(layers)}
    if name not in MODELS:
        MODELS.append(name)


def model_factory(name: str, hidden: Optional[int] = None, layers: Optional[int] = None,
                  output_dim: int = 16, dtype: Optional[torch.dtype] = None
                  ) -> tuple[Callable[[int], "torch.nn.Module"], Optional[Callable]]:  # noqa: F821
    """``(model_fn, transform)`` for :func:`~graphequi.expressivity.separates`.

    * ``gin``: GIN (sum pooling, structure only);
    * ``polygin``: GIN with the node-level ``ppgn++`` polynomial features;
    * ``ppgn``: the dense 2-FWL network without polynomial channels;
    * ``ppgn++``: PPGN with the 12 ``ppgn++`` pair features of degree <= 6;
    * ``spen``: SPEN on 1-hop ego-nets (:class:`graphequi.nn.SPEN`).

    Args:
        name: one of :data:`MODELS`.
        hidden: width of the hidden layers (default :data:`MODEL_DEFAULTS`).
        layers: number of layers (default :data:`MODEL_DEFAULTS`).
        output_dim: size of the graph embedding compared by the protocol
            (BREC: 16).
        dtype: floating dtype of the parameters and of every graph's
            floating attributes (default: the model's own, float32).
            ``torch.float64`` lowers the relabeling noise that the
            :math:`T^2` test compares against by nine orders of magnitude,
            which matters where a network carries a difference that is
            below float32's resolution (the small CFI pairs of BREC).

    Returns:
        ``model_fn(seed) -> nn.Module`` and the transform the model's inputs
        need (``None`` for ``gin`` and ``ppgn``).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    defaults = MODEL_DEFAULTS[name]
    model_fn, transform = _BUILDERS[name](defaults["hidden"] if hidden is None else hidden,
                                          defaults["layers"] if layers is None else layers, output_dim)
    if dtype is None:
        return model_fn, transform
    return (lambda seed: model_fn(seed).to(dtype)), CastFloats(dtype, transform)


class CastFloats:
    """A transform that applies ``inner`` (if any), then casts every floating
    tensor attribute of the graph to ``dtype``.

    Example:
        >>> from torch_geometric.data import Data
        >>> CastFloats(torch.float64)(Data(x=torch.ones(2, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))).x.dtype
        torch.float64
    """

    def __init__(self, dtype: torch.dtype, inner: Optional[Callable] = None):
        self.dtype, self.inner = dtype, inner

    def __call__(self, data):
        data = self.inner(data) if self.inner is not None else data
        for key, value in data.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                data[key] = value.to(self.dtype)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dtype}, {self.inner!r})"


def with_cumulative_norm_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Make every batch norm of ``model`` keep the cumulative average of its
    batch statistics (``momentum=None``) instead of an exponential one.

    After ``k`` training steps the running statistics are then the plain
    mean of the ``k`` batches' statistics, with no weight left on their
    initial values. Use it for short runs that are judged in eval mode, as
    the BREC protocol is. Returns ``model``, changed in place.

    Example:
        >>> m = with_cumulative_norm_statistics(torch.nn.Sequential(torch.nn.BatchNorm1d(4)))
        >>> m[0].momentum is None
        True
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    return model


def _gin(hidden: int, layers: int, output_dim: int):
    from graphequi.nn import PolyGIN

    return (lambda seed: PolyGIN(output_dim, hidden, layers, node_in_channels=1, dropout=0.0,
                                 pool="sum")), None


def _polygin(hidden: int, layers: int, output_dim: int):
    from graphequi.nn import PolyGIN
    from graphequi.transforms import PolynomialFeatures

    transform = PolynomialFeatures("ppgn++", level="node")
    channels = transform.num_features
    return (lambda seed: PolyGIN(output_dim, hidden, layers, node_in_channels=1, poly_channels=channels,
                                 dropout=0.0, pool="sum")), transform


def _ppgn(hidden: int, layers: int, output_dim: int, poly: bool = False):
    from graphequi.nn import PPGNPlusPlus
    from graphequi.transforms import PolynomialFeatures

    transform = PolynomialFeatures("ppgn++", level="pair") if poly else None
    channels = transform.num_features if poly else 0
    return (lambda seed: PPGNPlusPlus(output_dim, hidden_channels=hidden, num_layers=layers,
                                      node_in_channels=1, poly_channels=channels, readout="sum",
                                      dropout=0.0, pair_key=POLY_PAIR_KEY)), transform


def _spen(hidden: int, layers: int, output_dim: int):
    from graphequi.nn import SPEN
    from graphequi.transforms import EgoNetBags

    # node-based subgraph networks are bounded by 3-WL = 2-FWL (Frasca et al., NeurIPS 2022)
    return (lambda seed: SPEN(output_dim, hidden_channels=hidden, num_layers=layers,
                              node_in_channels=1)), EgoNetBags(num_hops=1)


def _cumulative(builder: Builder) -> Builder:
    # the built-in models' batch norms keep cumulative statistics (module docstring)
    def build(hidden: int, layers: int, output_dim: int):
        model_fn, transform = builder(hidden, layers, output_dim)
        return (lambda seed: with_cumulative_norm_statistics(model_fn(seed))), transform

    return build


register_model("gin", _cumulative(_gin), bound="1-WL", hidden=32, layers=4)
register_model("polygin", _cumulative(_polygin), bound="1-WL+ppgn++(6)", hidden=32, layers=4)
register_model("ppgn", _cumulative(_ppgn), bound="2-FWL", hidden=32, layers=5)
register_model("ppgn++", _cumulative(lambda h, n, d: _ppgn(h, n, d, poly=True)), bound="2-FWL+ppgn++(6)",
               hidden=32, layers=5)
register_model("spen", _cumulative(_spen), bound="2-FWL", hidden=32, layers=4)

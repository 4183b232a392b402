"""Models for the BREC pair-separation protocol, by name.

:func:`model_factory` builds the ``(model_fn, transform)`` pair that
:func:`~graphequi.expressivity.separates` takes, for a GIN without and with
the ``ppgn++`` polynomial features and for PPGN++ itself.
"""
from __future__ import annotations

from typing import Callable, Optional

__all__ = ["MODELS", "model_factory"]

MODELS = ("gin", "polygin", "ppgn++")


def model_factory(name: str, hidden: int = 32, layers: int = 4, output_dim: int = 16
                  ) -> tuple[Callable[[int], "torch.nn.Module"], Optional[Callable]]:  # noqa: F821
    """``(model_fn, transform)`` for :func:`~graphequi.expressivity.separates`.

    * ``gin``: GIN (sum pooling, structure only);
    * ``polygin``: GIN with the node-level ``ppgn++`` polynomial features;
    * ``ppgn++``: the dense 2-FWL network PPGN++ with its pair features.

    Args:
        name: one of :data:`MODELS`.
        hidden: width of the hidden layers.
        layers: number of layers.
        output_dim: size of the graph embedding compared by the protocol
            (BREC: 16).

    Returns:
        ``model_fn(seed) -> nn.Module`` and the transform the model's inputs
        need (``None`` for ``gin``).
    """
    from graphequi.nn import PolyGIN, PPGNPlusPlus

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    if name == "gin":
        return (lambda seed: PolyGIN(output_dim, hidden, layers, node_in_channels=1, dropout=0.0,
                                     pool="sum")), None
    from graphequi.transforms import PolynomialFeatures

    if name == "polygin":
        transform = PolynomialFeatures("ppgn++", level="node")
        channels = transform.num_features
        return (lambda seed: PolyGIN(output_dim, hidden, layers, node_in_channels=1, poly_channels=channels,
                                     dropout=0.0, pool="sum")), transform
    transform = PolynomialFeatures("ppgn++", level="pair")
    channels = transform.num_features
    return (lambda seed: PPGNPlusPlus(output_dim, hidden_channels=hidden, num_layers=layers,
                                      node_in_channels=1, poly_channels=channels, readout="sum",
                                      dropout=0.0, pair_key="poly_pair_attr")), transform

r"""Depthwise mixing of a small axis: the fiber kernel of PONITA.

For ``x`` ``[N, L, C]`` (``L`` values per node and channel, e.g. the
orientations of a sphere grid) and a weight ``[O, L, C]``:

.. math::
    \mathrm{out}_{n,o,c} = \sum_{l} \mathrm{weight}_{o,l,c}\, x_{n,l,c},

one small matrix product per channel. :func:`torch.einsum` runs it as a
batched matrix product over the channels, which on a CPU copies both inputs
into a batch-major layout and multiplies ``C`` tiny matrices; the kernel here
reads ``x`` once, in place, with the channel axis innermost.

Gradients: :math:`\partial L/\partial x = \mathrm{weight}^\top` applied the
same way, and :math:`\partial L/\partial \mathrm{weight}_{o,l,c} = \sum_n
g_{n,o,c}\, x_{n,l,c}` (summed over fixed blocks of nodes in a fixed order,
so it does not depend on the number of threads). Both are differentiable
again, so a model trained on forces (:math:`-\partial E/\partial p`) can use it.
"""
from __future__ import annotations

from torch import Tensor

from graphequi.ops._backend import ops_for
from graphequi.ops._registry import check_depthwise_mix

__all__ = ["depthwise_mix"]


def depthwise_mix(weight: Tensor, x: Tensor) -> Tensor:
    r"""``out[n, o, c] = sum_l weight[o, l, c] * x[n, l, c]``.

    Args:
        weight (Tensor): ``[O, L, C]``, floating point.
        x (Tensor): ``[N, L, C]``, the same dtype and device.

    Returns:
        ``[N, O, C]``.

    Example:
        >>> import torch
        >>> w, x = torch.randn(4, 3, 2, dtype=torch.float64), torch.randn(5, 3, 2, dtype=torch.float64)
        >>> torch.allclose(depthwise_mix(w, x), torch.einsum("olc,nlc->noc", w, x))
        True
    """
    for name, t in (("weight", weight), ("x", x)):
        if not isinstance(t, Tensor):
            raise TypeError(f"depthwise_mix: {name} must be a torch.Tensor, got {type(t).__name__}")
    if weight.device != x.device:
        raise ValueError(f"depthwise_mix: weight is on {weight.device} but x is on {x.device}")
    check_depthwise_mix(weight, x)
    return ops_for(x.device).depthwise_mix(weight, x)

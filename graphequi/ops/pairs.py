r"""The symmetric functions of a pair that LCM's cheap cell combines.

For pairs ``[P, 2, D]`` (rows :math:`a`, :math:`b`):

.. math::
    \mathrm{out} = [\,a + b \,\|\, a \odot b \,\|\, |a - b|\,] \in \mathbb{R}^{P \times 3D},

bitwise the same as the three torch ops and the concatenation (and the same
for ``(a, b)`` and ``(b, a)``), in one pass that makes one ``[P, 3D]`` output
instead of four intermediates; its adjoint,
:math:`g_a = g_s + g_p \odot b + g_d \odot \mathrm{sgn}(a - b)` and
:math:`g_b = g_s + g_p \odot a - g_d \odot \mathrm{sgn}(a - b)`, is one pass
too, straight into the ``[P, 2, D]`` layout of the pairs. The reduction tree
of :class:`graphequi.nn.aggr.LCMAggregation` keeps every level's pairs as
consecutive rows, so it hands them over without splitting them.
"""
from __future__ import annotations

from torch import Tensor

from graphequi.ops._backend import ops_for
from graphequi.ops._registry import check_pairs

__all__ = ["symmetric_pair_features"]


def symmetric_pair_features(pairs: Tensor) -> Tensor:
    r"""``[a + b, a * b, |a - b|]`` for the pairs ``(a, b) = pairs[:, 0], pairs[:, 1]``.

    Args:
        pairs (Tensor): ``[P, 2, D]``, floating point.

    Returns:
        ``[P, 3 D]``.

    Example:
        >>> import torch
        >>> pairs = torch.tensor([[[1., -2.], [3., 5.]]])
        >>> symmetric_pair_features(pairs)
        tensor([[  4.,   3.,   3., -10.,   2.,   7.]])
    """
    if not isinstance(pairs, Tensor):
        raise TypeError(f"symmetric_pair_features: pairs must be a torch.Tensor, got {type(pairs).__name__}")
    check_pairs(pairs)
    return ops_for(pairs.device).symmetric_pair_features(pairs)

r"""A linear map per contiguous segment of rows.

For rows grouped into contiguous segments of sizes :math:`s_0, \dots, s_{G-1}`
(:math:`\sum_g s_g = L`) and one weight per segment,

.. math::
    \mathrm{out}_r = W_g\, x_r + b_g \qquad \text{for every row } r \text{ of segment } g,

as :func:`torch.nn.functional.linear` with ``weight[g]`` and ``bias[g]`` on
``x[start_g : start_g + s_g]``. It is what a layer with its own weights per
group of rows needs (SPEN's weights per subgraph size, a weight per node or
edge type when the rows are sorted by type). One call replaces the ``G``
linear maps, the concatenation of their outputs and their ``G`` autograd
nodes: the kernel writes each segment's GEMM into its slice of one output.

The sizes are plain integers, not a tensor: they fix the output's slicing,
so they are known on the host (no device value is read, and
``torch.compile`` sees static segment boundaries).

Gradients: :math:`\partial L/\partial x_r = W_g^\top g_r`, one more
``segment_linear`` with the weights transposed, and
:math:`\partial L/\partial W_g = \sum_{r \in g} g_r x_r^\top`,
:math:`\partial L/\partial b_g = \sum_{r \in g} g_r` (zero for an empty
segment); both differentiable again.
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor

from graphequi.ops._backend import ops_for
from graphequi.ops._registry import check_segment_linear

__all__ = ["segment_linear"]


def segment_linear(x: Tensor, sizes: Sequence[int], weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    r"""``F.linear(x_g, weight[g], bias[g])`` for every contiguous segment ``x_g`` of rows.

    Args:
        x (Tensor): ``[L, K]``, floating point.
        sizes (sequence of int): ``G`` non-negative segment sizes that sum to ``L``
            (a segment may be empty).
        weight (Tensor): ``[G, N, K]``, the dtype and device of ``x``.
        bias (Tensor, optional): ``[G, N]``.

    Returns:
        ``[L, N]``.

    Example:
        >>> import torch
        >>> x, w, b = torch.randn(5, 3), torch.randn(2, 4, 3), torch.randn(2, 4)
        >>> out = segment_linear(x, [2, 3], w, b)
        >>> ref = torch.cat([torch.nn.functional.linear(x[:2], w[0], b[0]),
        ...                  torch.nn.functional.linear(x[2:], w[1], b[1])])
        >>> torch.allclose(out, ref)
        True
    """
    for name, t in (("x", x), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"segment_linear: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device != x.device:
            raise ValueError(f"segment_linear: {name} is on {t.device} but x is on {x.device}")
    if isinstance(sizes, Tensor):
        raise TypeError("segment_linear: sizes must be a sequence of ints known on the host, not a tensor "
                        "(pass sizes.tolist())")
    sizes = [int(s) for s in sizes]
    check_segment_linear(x, sizes, weight, bias)
    return ops_for(x.device).segment_linear(x, sizes, weight, bias)

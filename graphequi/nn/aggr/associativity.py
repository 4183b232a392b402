r"""The associativity regulariser of learnable commutative monoids, for any
model that contains :class:`~graphequi.nn.aggr.LCMAggregation` layers.

A tree reduction with a learned :math:`\oplus` only computes a function of
the multiset (independent of the tree's shape) when :math:`\oplus` is
associative. :class:`AssociativityRegularizer` records what every LCM layer
of a model aggregates during a forward pass and turns it into the penalty

.. math::
    \mathcal{R} = \frac{1}{L} \sum_{l=1}^{L} \frac{1}{T} \sum_{t=1}^{T}
    \big\| (a_t \oplus_l b_t) \oplus_l c_t - a_t \oplus_l (b_t \oplus_l c_t) \big\|_2^2 ,

with :math:`a_t, b_t, c_t` drawn from the rows layer :math:`l` aggregated
(:meth:`LCMAggregation.associativity_loss`), so a training loop adds
:math:`\lambda \mathcal{R}` to its loss::

    reg = AssociativityRegularizer(model, num_triples=256)
    with reg.recording():
        out = model(batch)
    loss = task_loss(out, batch.y) + 0.1 * reg.penalty()
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor

from graphequi.nn.aggr.lcm import LCMAggregation

__all__ = ["AssociativityRegularizer"]


def _rows(args: tuple, kwargs: dict) -> Tensor:
    """The ``[rows, F]`` view of what an aggregation's ``forward(x, index, ptr, dim_size, dim)`` reduces."""
    x = args[0] if args else kwargs["x"]
    dim = args[4] if len(args) > 4 else kwargs.get("dim", -2)
    return x.movedim(dim, -2).reshape(-1, x.size(-1))


class AssociativityRegularizer:
    r"""Records the inputs of a model's LCM aggregations and returns their
    mean associativity error (see the module docstring).

    Args:
        model (torch.nn.Module): a model with at least one
            :class:`~graphequi.nn.aggr.LCMAggregation`.
        num_triples (int): :math:`T`, triples sampled per layer and call.
        generator (torch.Generator, optional): for the draw (default: the
            global generator, which the trainer's checkpoints capture).

    Raises:
        ValueError: if ``model`` has no LCM aggregation or ``num_triples < 1``.
    """

    def __init__(self, model: torch.nn.Module, num_triples: int = 256,
                 generator: Optional[torch.Generator] = None):
        if num_triples < 1:
            raise ValueError(f"num_triples must be positive, got {num_triples}")
        self.layers = [m for m in model.modules() if isinstance(m, LCMAggregation)]
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no LCMAggregation layer to regularise")
        self.num_triples, self.generator = num_triples, generator
        self._seen: List[Tuple[LCMAggregation, Tensor]] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator["AssociativityRegularizer"]:
        """Within the block, every call of a recorded layer stores its input
        rows (a reference, no copy); :meth:`penalty` consumes them."""
        self._seen.clear()

        def hook(module, args, kwargs):
            rows = _rows(args, kwargs)
            if rows.size(0):
                self._seen.append((module, rows))

        handles = [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in self.layers]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def penalty(self) -> Tensor:
        r""":math:`\mathcal{R}` over the calls recorded since the last
        :meth:`recording` began; zero (and no graph) when nothing non-empty
        was aggregated. Clears the record."""
        seen, self._seen = self._seen, []
        if not seen:
            return torch.zeros(())
        losses = [layer.associativity_loss(rows, self.num_triples, self.generator) for layer, rows in seen]
        return torch.stack(losses).mean()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(layers={len(self.layers)}, num_triples={self.num_triples})"

"""Input encoders shared by the graph-level models of :mod:`graphequi.nn`.

Molecular datasets store atom and bond *types* as integer columns (ZINC: one
column of 28 atom types; OGB: 9 atom and 3 bond columns), other datasets store
real-valued features. :class:`FeatureEncoder` maps either kind to a fixed
number of channels, validating its input so that a wrong dtype or an
out-of-range type fails with a message instead of an opaque CUDA assert.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

Vocab = Union[int, Sequence[int]]

__all__ = ["FeatureEncoder", "warn_ignored_features"]


def _as_vocab(vocab: Optional[Vocab]) -> Optional[tuple[int, ...]]:
    if vocab is None:
        return None
    sizes = (int(vocab),) if isinstance(vocab, int) else tuple(int(v) for v in vocab)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"vocabulary sizes must be positive integers, got {vocab!r}")
    return sizes


class FeatureEncoder(torch.nn.Module):
    r"""Embeds categorical columns or linearly maps real features.

    With ``vocab=(V_1, ..., V_c)`` the input is an integer tensor of shape
    ``[N, c]`` (or ``[N]`` when ``c = 1``) and

    .. math::
        h_i = \sum_{j=1}^{c} E_j[x_{ij}], \qquad E_j \in \mathbb{R}^{V_j \times d},

    as in OGB's ``AtomEncoder``. With ``in_channels=F`` the input is a float
    tensor ``[N, F]`` (or ``[N]`` when ``F = 1``) and :math:`h_i = W x_i + b`.

    Args:
        out_channels (int): :math:`d`.
        vocab (int or sequence of int, optional): number of types per column.
        in_channels (int, optional): number of real input features.
        name (str): what the features are, used in error messages.

    Shapes:
        - input: ``[N]`` or ``[N, c]`` (long) / ``[N, F]`` (float)
        - output: ``[N, d]``

    Example:
        >>> enc = FeatureEncoder(8, vocab=[3, 5])
        >>> enc(torch.tensor([[0, 4], [2, 1]])).shape
        torch.Size([2, 8])
    """

    def __init__(self, out_channels: int, *, vocab: Optional[Vocab] = None,
                 in_channels: Optional[int] = None, name: str = "features"):
        super().__init__()
        if (vocab is None) == (in_channels is None):
            raise ValueError("give exactly one of `vocab` (categorical) or `in_channels` (real)")
        self.out_channels = int(out_channels)
        self.vocab = _as_vocab(vocab)
        self.in_channels = None if in_channels is None else int(in_channels)
        self.name = name
        if self.vocab is not None:
            self.embeddings = torch.nn.ModuleList(
                torch.nn.Embedding(v, self.out_channels) for v in self.vocab)
            self.lin = None
        else:
            self.embeddings = torch.nn.ModuleList()
            self.lin = torch.nn.Linear(self.in_channels, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in self.embeddings:
            torch.nn.init.xavier_uniform_(emb.weight)
        if self.lin is not None:
            self.lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if self.vocab is not None:
            if x.is_floating_point() or x.dtype == torch.bool:
                raise TypeError(f"{self.name}: expected integer type ids, got dtype {x.dtype}")
            if x.dim() == 1:
                x = x.unsqueeze(-1)
            if x.dim() != 2 or x.size(-1) != len(self.vocab):
                raise ValueError(f"{self.name}: expected shape [N, {len(self.vocab)}], got {list(x.shape)}")
            out = x.new_zeros((x.size(0), self.out_channels), dtype=self.embeddings[0].weight.dtype)
            for j, (emb, size) in enumerate(zip(self.embeddings, self.vocab)):
                col = x[:, j]
                # a value check reads the data (a host synchronisation): eager mode only; compiled
                # models rely on the check where the data entered (graphequi.transforms.ValidateGraph)
                if not torch.compiler.is_compiling() and col.numel() and (
                        int(col.min()) < 0 or int(col.max()) >= size):
                    raise ValueError(f"{self.name}: column {j} has type ids in "
                                     f"[{int(col.min())}, {int(col.max())}], outside [0, {size - 1}]")
                out = out + emb(col)
            return out
        if x.dtype != self.lin.weight.dtype:
            # real features are mapped in the encoder's precision (a float32 x into a
            # .double() model, integer counts), as the type ids of the embeddings are
            x = x.to(self.lin.weight.dtype)
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"{self.name}: expected shape [N, {self.in_channels}], got {list(x.shape)}")
        if not torch.compiler.is_compiling() and not torch.isfinite(x).all():
            raise ValueError(f"{self.name}: contains NaN or infinite values")
        return self.lin(x)

    def __repr__(self) -> str:
        kind = f"vocab={list(self.vocab)}" if self.vocab is not None else f"in_channels={self.in_channels}"
        return f"{self.__class__.__name__}({kind}, out_channels={self.out_channels})"


_OPTIONS = {"x": "node_vocab or node_in_channels", "edge_attr": "edge_vocab or edge_in_channels"}


def warn_ignored_features(model: torch.nn.Module, data,
                          encoders: Mapping[str, Optional[FeatureEncoder]]) -> None:
    """Warn when ``data`` carries an input (``"x"``, ``"edge_attr"``: the keys
    of ``encoders``) that ``model`` was built without an encoder for (no
    ``node_vocab``/``node_in_channels``, no ``edge_vocab``/``edge_in_channels``):
    the model then reads a constant input, which is rarely what a caller with
    features meant. Eager only (a compiled model skips the check).

    Example:
        >>> import warnings
        >>> from torch_geometric.data import Data
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_ignored_features(torch.nn.Identity(), Data(x=torch.ones(2, 3)), {"x": None})
        >>> str(caught[0].message).split(":")[0]
        'Identity ignores data.x'
    """
    if torch.compiler.is_compiling():
        return
    for key, encoder in encoders.items():
        if encoder is None and isinstance(getattr(data, key, None), Tensor):
            warnings.warn(f"{type(model).__name__} ignores data.{key}: it was built without {_OPTIONS[key]}, "
                          "so it reads a constant input instead", UserWarning, stacklevel=3)

r"""Batched evaluation of multigraph polynomials on (padded) graphs."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .multigraph import Multigraph
from .planning import plan as get_plan

__all__ = ["evaluate", "evaluate_each", "triangle_count", "TRIANGLE"]

# K3, the invariant polynomial tr(X^3): 6 homomorphisms per triangle of a simple graph.
TRIANGLE = Multigraph(3, [(0, 1), (1, 2), (2, 0)])

# Intermediates per chunk of graphs are kept under this many bytes.
_CHUNK_BYTES = 12 << 20


def _as_polys(polys, same_marks: bool) -> tuple[Multigraph, ...]:
    if isinstance(polys, Multigraph):
        polys = (polys,)
    polys = tuple(polys)
    if not polys:
        raise ValueError("evaluate needs at least one polynomial")
    for p in polys:
        if not isinstance(p, Multigraph):
            raise TypeError(f"polys must be Multigraph objects, got {type(p).__name__}")
    marks = {p.num_marks for p in polys}
    if same_marks and len(marks) != 1:
        raise ValueError(f"all polynomials must have the same number of marks, got {sorted(marks)}; "
                         "use evaluate_each for a mix")
    return polys


def _check_matrix(X: Tensor) -> Tensor:
    if not isinstance(X, Tensor):
        raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
    if X.dim() not in (2, 3) or X.shape[-1] != X.shape[-2]:
        raise ValueError(f"X must have shape (n, n) or (B, n, n), got {tuple(X.shape)}")
    if X.is_complex():
        raise TypeError("X must be real, got a complex tensor")
    if not X.is_floating_point():
        X = X.to(torch.get_default_dtype())
    # One reduction is enough unless something is off (NaN/inf propagate).
    if not torch.isfinite(X.sum()) and not torch.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    return X


def evaluate_each(polys: Union[Multigraph, Sequence[Multigraph]], X: Tensor, *,
                  mask: Optional[Tensor] = None, strategy: str = "joint") -> list[Tensor]:
    """Like :func:`evaluate` for one ``X``, but for polynomials with any mix
    of 0, 1 and 2 marks (all in one joint plan): returns one tensor per
    polynomial, ``(B,)``, ``(B, n)`` or ``(B, n, n)`` (no ``B`` for an
    ``(n, n)`` input).

    Example:
        >>> import torch
        >>> from graphequi.poly import Multigraph, evaluate_each
        >>> edge = [(0, 1)]
        >>> polys = [Multigraph(2, edge), Multigraph(2, edge, marked=(0,))]
        >>> [t.tolist() for t in evaluate_each(polys, torch.ones(2, 2))]
        [4.0, [2.0, 2.0]]
    """
    polys = _as_polys(polys, same_marks=False)
    X = _check_matrix(X)
    single = X.dim() == 2
    if single:
        X = X.unsqueeze(0)
    B, n, _ = X.shape
    if mask is not None:
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
        if single and mask.dim() == 1:
            mask = mask.unsqueeze(0)
        if tuple(mask.shape) != (B, n):
            raise ValueError(f"mask must have shape {(B, n)} to match X {tuple(X.shape)}, "
                             f"got {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be boolean, got {mask.dtype}")
        m = mask.to(X.dtype)
        X = X * m.unsqueeze(1) * m.unsqueeze(2)
    if any(not p.directed for p in polys) and not torch.equal(X, X.transpose(1, 2)) and not torch.allclose(
            X, X.transpose(1, 2), rtol=1e-5, atol=1e-6):
        raise ValueError("undirected polynomials need a symmetric X; use directed=True "
                         "multigraphs for general matrices")
    X = X.contiguous()
    the_plan = get_plan(polys, n, strategy=strategy)
    per_graph = max(1, the_plan.peak_elements(n) * X.element_size())
    chunk = max(1, _CHUNK_BYTES // per_graph)
    if chunk >= B:
        out = the_plan(X, mask)
    else:
        out = None
        for i in range(0, B, chunk):
            part = the_plan(X[i:i + chunk], None if mask is None else mask[i:i + chunk])
            if out is None:
                out = [t.new_empty((B,) + t.shape[1:]) for t in part]
            for full, t in zip(out, part):
                full[i:i + chunk] = t
    return [t[0] for t in out] if single else out


def evaluate(polys: Union[Multigraph, Sequence[Multigraph]], X: Union[Tensor, Sequence[Tensor]], *,
             mask: Optional[Tensor] = None, strategy: str = "joint") -> Tensor:
    r"""Evaluate the polynomials :math:`P_H(X)` of a set of multigraphs.

    .. math::

        P_H(X)_{i_1 i_2} = \sum_{j: V \to [n],\ j(a) = i_1,\ j(b) = i_2}
            \ \prod_{(r, s) \in E} X_{j(r), j(s)}

    Every pairwise contraction runs as a batched matmul over the graphs of the
    batch, along a cached joint plan (:func:`graphequi.poly.plan`).

    Args:
        polys: a :class:`Multigraph` or a sequence of them, all with the same
            number of marks (0, 1 or 2). Undirected multigraphs assume a
            symmetric ``X`` (checked).
        X: ``(n, n)`` or ``(B, n, n)`` real matrices, e.g. adjacency matrices
            with node values on the diagonal. A list of ``C`` such tensors
            (e.g. one per edge-feature channel) evaluates every polynomial on
            every channel; the outputs are concatenated channel-major along
            the last dimension (``C * k`` values, channel ``c`` at
            ``c * k .. c * k + k - 1``).
        mask: ``(B, n)`` (or ``(n,)``) boolean mask of real nodes in a padded
            batch. Rows and columns of padded nodes are zeroed, so they
            contribute nothing: a padded graph gives exactly its unpadded
            values, and marked outputs at padded positions are 0.
        strategy: ``"joint"`` (default) or ``"independent"`` contraction plan.

    Memory: intermediates have up to three node indices, so one graph needs
    a few :math:`n^3` buffers (``plan(polys, n).peak_elements(n)`` elements;
    about 6 MB per graph for the PPGN++ set at ``n = 80``). Batches are
    evaluated in chunks of graphs whose intermediates fit in about 12 MB,
    and each plan keeps its buffers for the next call
    (:meth:`~graphequi.poly.Plan.clear_workspace` releases them).

    Returns:
        ``(B, k)`` for invariant, ``(B, n, k)`` for node-level and
        ``(B, n, n, k)`` for pair-level polynomials (without the leading
        ``B`` when ``X`` is ``(n, n)``), in the dtype of ``X``.

    Example:
        >>> import torch
        >>> from graphequi.poly import Multigraph, evaluate
        >>> A = torch.tensor([[0., 1, 1], [1, 0, 1], [1, 1, 0]])
        >>> triangle = Multigraph(3, [(0, 1), (1, 2), (2, 0)])
        >>> evaluate([triangle], A)  # 6 maps of a triangle onto K3
        tensor([6.])
    """
    polys = _as_polys(polys, same_marks=True)
    if isinstance(X, (list, tuple)):
        if not X:
            raise ValueError("X is an empty list of channels")
        outs = [evaluate(polys, x, mask=mask, strategy=strategy) for x in X]
        return torch.cat(outs, dim=-1)
    return torch.stack(evaluate_each(polys, X, mask=mask, strategy=strategy), dim=-1)


def triangle_count(adj: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    r"""Number of triangles of simple graphs,
    :math:`P_{K_3}(A) / 6 = \operatorname{tr}(A^3) / 6`.

    Args:
        adj: ``(n, n)`` or ``(B, n, n)`` symmetric 0/1 adjacency matrices with
            zero diagonal (padded batches: pass ``mask``, or zero the padding).
        mask: ``(B, n)`` boolean mask of real nodes.

    Returns:
        ``()`` or ``(B,)`` counts in the floating dtype of ``adj``.

    Example:
        >>> import torch
        >>> triangle_count(torch.ones(4, 4) - torch.eye(4))   # K4
        tensor(4.)
    """
    return evaluate(TRIANGLE, adj, mask=mask)[..., 0] / 6

"""Reusable property asserts for graphequi layers (and your own).

Every layer's tests use these, so that the same definition of "equivariant",
"compiles" and "differentiable" is checked everywhere:

* :func:`assert_permutation_equivariant` relabels the nodes of a PyG
  :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.Batch`
  (within each graph) and checks that the output moves accordingly.
* :func:`assert_e3_equivariant` rotates, reflects and translates positions.
* :func:`assert_compiles` checks ``torch.compile(fullgraph=True)`` with zero
  graph breaks and agreement with eager mode.
* :func:`assert_gradcheck` runs :func:`torch.autograd.gradcheck` in float64.

Example:
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> from graphequi.testing import assert_permutation_equivariant
    >>> data = Data(x=torch.randn(5, 3), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]))
    >>> assert_permutation_equivariant(lambda d: d.x * 2, data, output="node")
"""
from __future__ import annotations

import copy
import socket
from typing import Callable, Iterable, Literal, Optional, Sequence

import torch
from torch import Tensor

OutputLevel = Literal["node", "graph", "edge", "pair"]

__all__ = [
    "random_node_permutation",
    "permute_data",
    "assert_permutation_equivariant",
    "assert_e3_equivariant",
    "assert_compiles",
    "assert_gradcheck",
    "random_rotation",
    "free_port",
]


def random_node_permutation(batch: Optional[Tensor], num_nodes: int,
                            generator: Optional[torch.Generator] = None) -> Tensor:
    """A random permutation of ``num_nodes`` nodes that keeps every node inside
    its own graph (so a sorted ``batch`` vector stays valid).

    Returns ``perm`` with the convention: new node ``i`` is old node ``perm[i]``.
    """
    if batch is None:
        return torch.randperm(num_nodes, generator=generator)
    perm = torch.empty(num_nodes, dtype=torch.long)
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if batch.numel() else 0)
    start = 0
    for c in counts.tolist():
        perm[start:start + c] = start + torch.randperm(c, generator=generator)
        start += c
    return perm


def permute_data(data, perm: Tensor, node_attrs: Iterable[str] = ("x", "pos", "poly_x")):
    """Relabel nodes of ``data``: new node ``i`` is old node ``perm[i]``.

    Node-level attributes named in ``node_attrs`` (when present) are gathered,
    ``edge_index`` is renamed (edge order kept, so edge attributes stay put).
    """
    out = copy.copy(data)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    for key in node_attrs:
        value = getattr(data, key, None)
        if isinstance(value, Tensor) and value.size(0) == perm.numel():
            out[key] = value[perm]
    if getattr(data, "edge_index", None) is not None:
        out.edge_index = inv[data.edge_index]
    return out


def _local_perm(perm: Tensor, batch: Optional[Tensor]) -> list[Tensor]:
    """Split a within-graph permutation into one local permutation per graph."""
    if batch is None:
        return [perm]
    counts = torch.bincount(batch).tolist()
    out, start = [], 0
    for c in counts:
        out.append(perm[start:start + c] - start)
        start += c
    return out


def assert_permutation_equivariant(
    fn: Callable,
    data,
    *,
    output: OutputLevel = "node",
    node_attrs: Iterable[str] = ("x", "pos", "poly_x"),
    trials: int = 3,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> None:
    """Assert ``fn(data)`` is equivariant (or invariant) to node relabelling.

    Args:
        fn: callable taking a PyG ``Data``/``Batch`` and returning a tensor.
        data: the input graph(s). For a ``Batch`` nodes are permuted inside
            each graph.
        output: how the output is indexed: ``"node"`` (rows follow nodes),
            ``"graph"`` (invariant), ``"edge"`` (rows follow ``edge_index``
            columns, whose order is kept), or ``"pair"`` (dense
            ``[B, n, n, ...]`` in ``to_dense_batch`` order, or ``[n, n, ...]``).
        node_attrs: node-level attributes that are permuted.
        trials: number of random permutations tried.
    """
    gen = torch.Generator().manual_seed(seed)
    batch = getattr(data, "batch", None)
    num_nodes = data.num_nodes
    ref = fn(data)
    for _ in range(trials):
        perm = random_node_permutation(batch, num_nodes, gen)
        got = fn(permute_data(data, perm, node_attrs))
        if output == "node":
            expected = ref[perm]
        elif output in ("graph", "edge"):
            expected = ref
        elif output == "pair":
            locs = _local_perm(perm, batch)
            if ref.dim() >= 3 and len(locs) == ref.size(0) and batch is not None:
                expected = ref.clone()
                for b, p in enumerate(locs):
                    k = p.numel()
                    expected[b, :k, :k] = ref[b][p][:, p]
            else:
                p = locs[0]
                expected = ref[p][:, p]
        else:
            raise ValueError(f"unknown output level {output!r}")
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol,
                                   msg=lambda m: f"not permutation-{'invariant' if output == 'graph' else 'equivariant'} ({output}): {m}")


def random_rotation(generator: Optional[torch.Generator] = None, dtype=torch.float64,
                    reflect: bool = False) -> Tensor:
    """A Haar-random 3x3 rotation (or improper rotation when ``reflect``)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    if reflect:
        q = -q
    return q


def assert_e3_equivariant(
    fn: Callable[..., Tensor],
    pos: Tensor,
    *args,
    output: Literal["invariant", "vector"] = "invariant",
    reflections: bool = True,
    trials: int = 3,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> None:
    """Assert ``fn(pos, *args)`` is E(3)-invariant or equivariant.

    ``output="invariant"``: unchanged under rotation/reflection + translation.
    ``output="vector"``: last dim 3, rotates with the input, ignores translation.
    """
    gen = torch.Generator().manual_seed(seed)
    ref = fn(pos, *args)
    for t in range(trials):
        rot = random_rotation(gen, pos.dtype, reflect=reflections and t % 2 == 1)
        shift = torch.randn(1, 3, generator=gen, dtype=pos.dtype)
        got = fn(pos @ rot.T + shift, *args)
        expected = ref if output == "invariant" else ref @ rot.T
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol,
                                   msg=lambda m: f"not E(3)-{output}: {m}")


def assert_compiles(fn: Callable, *args, atol: float = 1e-5, rtol: float = 1e-4,
                    dynamic: Optional[bool] = None, **kwargs):
    """Assert ``fn`` compiles with ``fullgraph=True``, 0 graph breaks, and
    matches eager mode. Returns the compiled function's output."""
    import torch._dynamo

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(fn)(*args, **kwargs)
    assert explanation.graph_break_count == 0, (
        f"{explanation.graph_break_count} graph break(s): "
        + "; ".join(str(b.reason) for b in explanation.break_reasons))
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic)
    got = compiled(*args, **kwargs)
    expected = fn(*args, **kwargs)
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)
    return got


def assert_gradcheck(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5,
                     check_grad_dtypes: bool = True, gradgrad: bool = False) -> None:
    """``torch.autograd.gradcheck`` in float64: every floating tensor input is
    cast to float64 and made to require grad; other inputs pass through."""
    prepared = []
    for x in inputs:
        if isinstance(x, Tensor) and x.is_floating_point():
            x = x.detach().to(torch.float64).requires_grad_(True)
        prepared.append(x)
    assert torch.autograd.gradcheck(fn, tuple(prepared), eps=eps, atol=atol,
                                    check_grad_dtypes=check_grad_dtypes)
    if gradgrad:
        assert torch.autograd.gradgradcheck(fn, tuple(prepared), eps=eps, atol=atol)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now, for the rendezvous of a multi-process
    (``torch.distributed``) test."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]

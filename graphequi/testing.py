"""Reusable property asserts for graphequi layers (and your own).

Every layer's tests use these, so that the same definition of "equivariant",
"compiles" and "differentiable" is checked everywhere:

* :func:`assert_permutation_equivariant` relabels the nodes of a PyG
  :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.Batch`
  and reorders its edges (both within each graph) and checks that the output
  moves accordingly.
* :func:`assert_e3_equivariant` rotates, reflects and translates positions.
* :func:`assert_compiles` checks ``torch.compile(fullgraph=True)`` with zero
  graph breaks and agreement with eager mode.
* :func:`assert_compiles_once` checks that one ``dynamic=True`` compilation
  serves inputs of several sizes without recompiling.
* :func:`assert_gradcheck` runs :func:`torch.autograd.gradcheck` in float64.

Each assert raises :class:`AssertionError` whose message says which property
failed, and hides its own frame from pytest tracebacks so that the failing
line shown is the caller's.

Tolerances:
    An assert called without ``atol``/``rtol`` takes them from
    :data:`FLOAT_TOLERANCE`, looked up by the dtype of the output it compares
    (the loosest entry when the output holds several floating tensors; the
    real dtype for complex outputs; integer and bool outputs must match
    exactly). A comparison passes when
    :math:`|\\text{got} - \\text{expected}| \\le \\text{atol} + \\text{rtol}
    \\cdot |\\text{expected}|` elementwise.

    ============  =========  =========
    dtype         atol       rtol
    ============  =========  =========
    ``float16``   ``1e-3``   ``1e-2``
    ``bfloat16``  ``1e-2``   ``5e-2``
    ``float32``   ``1e-5``   ``1e-4``
    ``float64``   ``1e-10``  ``1e-8``
    ============  =========  =========

    The entries allow a few ulps of rounding accumulated over reordered sums,
    which is what a correct layer shows under a permutation, a rotation or
    compilation. An explicit ``atol`` or ``rtol`` overrides its entry (the
    other one still comes from the table). :func:`assert_gradcheck` is the
    exception: it always works in float64 but compares against finite
    differences, whose truncation and cancellation error dwarfs float64
    rounding, so it defaults to :data:`GRADCHECK_TOLERANCE` instead.

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
import types
from typing import Any, Callable, Iterable, Literal, Mapping, Optional

import torch
from torch import Tensor
from torch.utils._pytree import tree_leaves

from graphequi.poly.keys import POLY_NODE_KEY

#: node-level attributes that the permutation asserts move with the nodes
NODE_ATTRS = ("x", "pos", POLY_NODE_KEY)
OutputLevel = Literal["node", "graph", "edge", "pair"]

__all__ = [
    "FLOAT_TOLERANCE",
    "GRADCHECK_TOLERANCE",
    "random_node_permutation",
    "random_edge_permutation",
    "permute_data",
    "permute_edges",
    "assert_permutation_equivariant",
    "assert_e3_equivariant",
    "assert_compiles",
    "assert_compiles_once",
    "assert_gradcheck",
    "random_rotation",
    "free_port",
]

#: Default ``(atol, rtol)`` per floating dtype, used by every assert whose
#: caller gives no tolerance. Read-only, so that no test can loosen the
#: asserts for the tests that run after it.
FLOAT_TOLERANCE: Mapping[torch.dtype, tuple[float, float]] = types.MappingProxyType({
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-2, 5e-2),
    torch.float32: (1e-5, 1e-4),
    torch.float64: (1e-10, 1e-8),
})

#: Default ``(atol, rtol)`` of :func:`assert_gradcheck` (those of
#: :func:`torch.autograd.gradcheck`): with the default ``eps=1e-6`` central
#: differences are only accurate to about ``1e-10 / eps`` plus ``eps ** 2``
#: times the third derivative.
GRADCHECK_TOLERANCE: tuple[float, float] = (1e-5, 1e-3)


def _tolerance(value: Any, atol: Optional[float], rtol: Optional[float]) -> tuple[float, float]:
    """Fill in whichever of ``atol``/``rtol`` is ``None`` from
    :data:`FLOAT_TOLERANCE`, using the loosest entry among the floating
    tensors in ``value`` (a tensor or a nest of them)."""
    if atol is not None and rtol is not None:
        return atol, rtol
    default_atol, default_rtol = 0.0, 0.0
    for leaf in tree_leaves(value):
        if not isinstance(leaf, Tensor) or not (leaf.is_floating_point() or leaf.is_complex()):
            continue
        dtype = leaf.real.dtype if leaf.is_complex() else leaf.dtype
        # An unlisted floating dtype (float8 and the like) is at least as
        # coarse as the coarsest one listed.
        a, r = FLOAT_TOLERANCE.get(dtype, FLOAT_TOLERANCE[torch.bfloat16])
        default_atol, default_rtol = max(default_atol, a), max(default_rtol, r)
    return (default_atol if atol is None else atol,
            default_rtol if rtol is None else rtol)


def _shuffle_within(group: Tensor, num_groups: int,
                    generator: Optional[torch.Generator]) -> Tensor:
    """A permutation ``perm`` of ``range(group.numel())`` with
    ``group[perm] == group``: positions only trade places within their group."""
    perm = torch.arange(group.numel())
    for g in range(num_groups):
        idx = (group == g).nonzero().view(-1)
        perm[idx] = idx[torch.randperm(idx.numel(), generator=generator)]
    return perm


def random_node_permutation(batch: Optional[Tensor], num_nodes: int,
                            generator: Optional[torch.Generator] = None) -> Tensor:
    """A random permutation of ``num_nodes`` nodes that keeps every node inside
    its own graph, so that ``batch`` stays valid (sorted or not).

    Args:
        batch: graph id of every node, shape ``[num_nodes]``, or ``None`` for
            a single graph.
        num_nodes: number of nodes :math:`N`.
        generator: source of randomness.

    Returns:
        ``perm`` of shape ``[N]`` with the convention: new node ``i`` is old
        node ``perm[i]``; ``batch[perm] == batch``.
    """
    if batch is None:
        return torch.randperm(num_nodes, generator=generator)
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    return _shuffle_within(batch, num_graphs, generator)


def random_edge_permutation(edge_index: Tensor, batch: Optional[Tensor] = None,
                            generator: Optional[torch.Generator] = None) -> Tensor:
    """A random reordering of the ``E`` columns of ``edge_index`` that keeps
    every edge inside its own graph's positions.

    Edges only trade places with edges of the same graph, so in a collated
    :class:`~torch_geometric.data.Batch` each graph keeps its block of columns
    and ``Batch.get_example`` / ``_slice_dict`` stay valid.

    Args:
        edge_index: shape ``[2, E]``.
        batch: graph id of every node, shape ``[N]``, or ``None`` for a
            single graph (then any reordering is allowed).
        generator: source of randomness.

    Returns:
        ``perm`` of shape ``[E]`` with the convention: new edge ``j`` is old
        edge ``perm[j]``.
    """
    num_edges = edge_index.size(1)
    if batch is None:
        return torch.randperm(num_edges, generator=generator)
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    return _shuffle_within(batch[edge_index[0]], num_graphs, generator)


def permute_data(data, perm: Tensor, node_attrs: Iterable[str] = NODE_ATTRS):
    """Relabel nodes of ``data``: new node ``i`` is old node ``perm[i]``.

    Node-level attributes named in ``node_attrs`` (when present) are gathered,
    ``edge_index`` is renamed (edge order kept, so edge attributes stay put).
    ``data`` itself is not modified.

    Args:
        data: a PyG ``Data``/``Batch`` with :math:`N` nodes.
        perm: shape ``[N]``, e.g. from :func:`random_node_permutation`.
        node_attrs: names of attributes of shape ``[N, ...]``.
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


def _edge_attr_keys(data, node_attrs: Iterable[str],
                    edge_attrs: Optional[Iterable[str]]) -> tuple[str, ...]:
    """``edge_attrs`` if given, else every tensor attribute whose first dim is
    the number of edges (when that equals the number of nodes, only those
    whose name contains ``"edge"``, as PyG decides the same ambiguity)."""
    if edge_attrs is not None:
        return tuple(edge_attrs)
    num_edges, num_nodes = data.edge_index.size(1), data.num_nodes
    skip = {"edge_index", "batch", "ptr", *node_attrs}
    keys = []
    for key in data.keys():
        value = data[key]
        if key in skip or not isinstance(value, Tensor) or value.dim() == 0:
            continue
        if value.size(0) != num_edges or (num_edges == num_nodes and "edge" not in key):
            continue
        keys.append(key)
    return tuple(keys)


def permute_edges(data, perm: Tensor, edge_attrs: Optional[Iterable[str]] = None,
                  node_attrs: Iterable[str] = NODE_ATTRS):
    """Reorder the edges of ``data``: new edge ``j`` is old edge ``perm[j]``.

    The columns of ``edge_index`` and the rows of every edge-level attribute
    are gathered with ``perm``, so the edge set and each edge's attributes are
    unchanged; only their order is. ``data`` itself is not modified.

    Args:
        data: a PyG ``Data``/``Batch`` with ``edge_index`` of shape ``[2, E]``.
        perm: shape ``[E]``, e.g. from :func:`random_edge_permutation`.
        edge_attrs: names of attributes of shape ``[E, ...]``. ``None``
            (default) takes every tensor attribute whose first dim is ``E``
            (``edge_attr``, ``edge_weight``, ``poly_edge_attr``, ...), except
            ``edge_index``, ``batch``, ``ptr`` and those in ``node_attrs``.
            Pass the names when that guess is wrong, e.g. for a pair-level
            tensor that happens to have ``E`` rows.
        node_attrs: attributes never treated as edge-level by the guess.
    """
    keys = _edge_attr_keys(data, node_attrs, edge_attrs)
    out = copy.copy(data)
    out.edge_index = data.edge_index[:, perm]
    for key in keys:
        value = getattr(data, key, None)
        if isinstance(value, Tensor) and value.dim() > 0 and value.size(0) == perm.numel():
            out[key] = value[perm]
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


def _expected_output(ref: Tensor, output: str, perm: Tensor, edge_perm: Optional[Tensor],
                     batch: Optional[Tensor]) -> Tensor:
    """Where the rows of ``ref`` should move under the node/edge permutation."""
    if output == "node":
        return ref[perm]
    if output == "graph":
        return ref
    if output == "edge":
        return ref if edge_perm is None else ref[edge_perm]
    locs = _local_perm(perm, batch)
    if ref.dim() >= 3 and len(locs) == ref.size(0) and batch is not None:
        expected = ref.clone()
        for b, p in enumerate(locs):
            k = p.numel()
            expected[b, :k, :k] = ref[b][p][:, p]
        return expected
    p = locs[0]
    return ref[p][:, p]


def _agrees(got, expected, atol: float, rtol: float) -> bool:
    try:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)
    except AssertionError:
        return False
    return True


def assert_permutation_equivariant(
    fn: Callable,
    data,
    *,
    output: OutputLevel = "node",
    node_attrs: Iterable[str] = NODE_ATTRS,
    trials: int = 3,
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    seed: int = 0,
    edge_attrs: Optional[Iterable[str]] = None,
    permute_edge_order: bool = True,
) -> None:
    """Assert ``fn(data)`` is equivariant (or invariant) to relabeling the
    nodes and to reordering the edges.

    Each trial draws a node permutation :math:`\\pi` (within each graph) and,
    unless ``permute_edge_order=False``, an edge permutation :math:`\\sigma`
    (within each graph), applies both to ``data`` and checks that
    ``fn`` of the result equals ``fn(data)`` moved accordingly. Reordering the
    edges changes nothing about the graph, but it breaks layers that silently
    assume ``edge_index`` is sorted or that reduce in edge order.

    Switch the edge part off only for a function that documents a required
    edge order (e.g. one that reads a CSR ``ptr`` computed for a sorted
    ``edge_index``, or ``data`` carrying a sparse adjacency that cannot be
    reordered alongside); relabeling nodes keeps the edge order, so such a
    function can still be checked for node equivariance.

    Args:
        fn: callable taking a PyG ``Data``/``Batch`` and returning a tensor.
        data: the input graph(s), with :math:`N` nodes and :math:`E` edges.
            For a ``Batch`` nodes and edges are permuted inside each graph.
        output: how the output is indexed: ``"node"`` (``[N, ...]``, rows
            follow :math:`\\pi`), ``"graph"`` (invariant), ``"edge"``
            (``[E, ...]``, rows follow :math:`\\sigma`), or ``"pair"`` (dense
            ``[B, n, n, ...]`` in ``to_dense_batch`` order, or ``[n, n, ...]``).
        node_attrs: node-level attributes that are permuted.
        trials: number of random permutations tried.
        atol: absolute tolerance; ``None`` takes it from
            :data:`FLOAT_TOLERANCE` by the output dtype.
        rtol: relative tolerance; ``None`` likewise.
        seed: seed of the permutations.
        edge_attrs: edge-level attributes reordered with the edges; ``None``
            guesses them as :func:`permute_edges` does.
        permute_edge_order: also reorder the edges (default ``True``).

    Raises:
        AssertionError: naming the output level, the trial and whether the
            node relabeling or the edge reordering changed the output.
    """
    __tracebackhide__ = True
    if output not in ("node", "graph", "edge", "pair"):
        raise ValueError(f"unknown output level {output!r}")
    if trials < 1:
        raise ValueError("trials must be at least 1, or nothing is checked")
    node_attrs = tuple(node_attrs)
    gen = torch.Generator().manual_seed(seed)
    batch = getattr(data, "batch", None)
    num_nodes = data.num_nodes
    reorder = permute_edge_order and getattr(data, "edge_index", None) is not None
    keys = _edge_attr_keys(data, node_attrs, edge_attrs) if reorder else ()
    kind = "invariant" if output == "graph" else "equivariant"
    ref = fn(data)
    atol, rtol = _tolerance(ref, atol, rtol)
    for trial in range(trials):
        perm = random_node_permutation(batch, num_nodes, gen)
        relabeled = permute_data(data, perm, node_attrs)
        edge_perm, moved = None, relabeled
        if reorder:
            edge_perm = random_edge_permutation(relabeled.edge_index, batch, gen)
            moved = permute_edges(relabeled, edge_perm, keys)
        got = fn(moved)
        try:
            torch.testing.assert_close(got, _expected_output(ref, output, perm, edge_perm, batch),
                                       atol=atol, rtol=rtol)
        except AssertionError as err:
            cause = "relabeling the nodes changes the output"
            if edge_perm is not None and _agrees(
                    fn(relabeled), _expected_output(ref, output, perm, None, batch), atol, rtol):
                cause = ("reordering the edges changes the output "
                         "(relabeling the nodes alone does not)")
            raise AssertionError(f"fn is not permutation-{kind} (output={output!r}, trial {trial}): "
                                 f"{cause}.\n{err}") from None


def random_rotation(generator: Optional[torch.Generator] = None, dtype=torch.float64,
                    reflect: bool = False) -> Tensor:
    """A Haar-random 3x3 rotation (or improper rotation when ``reflect``).

    Returns:
        ``R`` of shape ``[3, 3]`` with :math:`R^\\top R = I` and
        :math:`\\det R = -1` if ``reflect`` else :math:`+1`.
    """
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
    atol: Optional[float] = None,
    rtol: Optional[float] = None,
    seed: int = 0,
) -> None:
    """Assert ``fn(pos, *args)`` is E(3)-invariant or equivariant.

    Each trial draws :math:`R` (:func:`random_rotation`) and a shift
    :math:`t` and compares ``fn(pos @ R.T + t, *args)`` with

    * ``output="invariant"``: ``fn(pos, *args)``;
    * ``output="vector"``: ``fn(pos, *args) @ R.T`` (last dim 3, translation
      ignored).

    With ``reflections=True`` every second trial uses an improper
    :math:`R` (:math:`\\det R = -1`), so E(3) is checked; with ``False`` only
    SE(3) (a chiral quantity such as a signed volume passes).

    Args:
        fn: callable taking positions ``[N, 3]`` (and ``args``).
        pos: positions, shape ``[N, 3]``.
        args: passed through unchanged.
        output: ``"invariant"`` or ``"vector"``.
        reflections: also apply improper rotations (needs ``trials >= 2``).
        trials: number of random transformations tried.
        atol: absolute tolerance; ``None`` takes it from
            :data:`FLOAT_TOLERANCE` by the output dtype.
        rtol: relative tolerance; ``None`` likewise.
        seed: seed of the transformations.

    Raises:
        AssertionError: naming the output kind and whether a rotation or a
            reflection changed the output.
    """
    __tracebackhide__ = True
    if output not in ("invariant", "vector"):
        raise ValueError(f"unknown output kind {output!r}")
    if trials < (2 if reflections else 1):
        raise ValueError("reflections are applied on odd trials: use trials >= 2"
                         if reflections else "trials must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    ref = fn(pos, *args)
    atol, rtol = _tolerance(ref, atol, rtol)
    for t in range(trials):
        reflect = reflections and t % 2 == 1
        rot = random_rotation(gen, pos.dtype, reflect=reflect)
        shift = torch.randn(1, 3, generator=gen, dtype=pos.dtype)
        got = fn(pos @ rot.T + shift, *args)
        expected = ref if output == "invariant" else ref @ rot.T.to(ref.dtype)
        try:
            torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)
        except AssertionError as err:
            what = "an improper rotation (reflection)" if reflect else "a rotation"
            raise AssertionError(f"fn is not E(3)-{output}: {what} plus translation changes "
                                 f"the output (trial {t}).\n{err}") from None


def assert_compiles(fn: Callable, *args, atol: Optional[float] = None,
                    rtol: Optional[float] = None, dynamic: Optional[bool] = None, **kwargs):
    """Assert ``fn(*args, **kwargs)`` compiles with ``fullgraph=True`` and zero
    graph breaks, and that the compiled output matches eager mode.

    Args:
        fn: the function to compile.
        args, kwargs: its inputs (``fn`` runs on them three times: traced by
            :func:`torch._dynamo.explain`, compiled, eager).
        atol: absolute tolerance; ``None`` takes it from
            :data:`FLOAT_TOLERANCE` by the eager output dtype.
        rtol: relative tolerance; ``None`` likewise.
        dynamic: passed to :func:`torch.compile`.

    Returns:
        The compiled function's output.

    Raises:
        AssertionError: naming the graph breaks, the compile error, or the
            disagreement with eager mode.
    """
    __tracebackhide__ = True
    import torch._dynamo
    from torch._dynamo.exc import TorchDynamoException

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(fn)(*args, **kwargs)
    assert explanation.graph_break_count == 0, (
        f"fn has {explanation.graph_break_count} graph break(s) under torch.compile: "
        + "; ".join(str(b.reason) for b in explanation.break_reasons))
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic)
    try:
        got = compiled(*args, **kwargs)
    except TorchDynamoException as err:
        raise AssertionError(f"fn does not compile with fullgraph=True: {err}") from None
    expected = fn(*args, **kwargs)
    atol, rtol = _tolerance(expected, atol, rtol)
    try:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol)
    except AssertionError as err:
        raise AssertionError(f"compiled output of fn differs from eager mode.\n{err}") from None
    return got


def assert_compiles_once(fn: Callable, input_sets: Iterable[tuple], atol: Optional[float] = None,
                         rtol: Optional[float] = None, backend: str = "inductor") -> None:
    """Assert that one ``torch.compile(fn, fullgraph=True, dynamic=True)``
    runs every input set without recompiling, and matches eager mode on each.

    A model that specialises on a size (a node count read as a Python int
    by an op whose schema takes ``int`` rather than ``SymInt``, a branch on a
    shape) passes :func:`assert_compiles` on any single input but recompiles
    for every new batch size, and falls back to eager mode once dynamo's
    recompile limit is reached. Give input sets of different sizes.

    Args:
        fn: the function (or module) to compile.
        input_sets: positional argument tuples; the first compiles, each
            later one must hit that compiled graph.
        atol: absolute tolerance; ``None`` takes it from
            :data:`FLOAT_TOLERANCE` by the eager output dtype.
        rtol: relative tolerance; ``None`` likewise.
        backend: the :func:`torch.compile` backend. Inductor adds guards of
            its own on size ranges (thresholds of its code generation) that
            a few widely spaced sizes can cross; ``"aot_eager"`` keeps only
            the guards of the traced code and its autograd.

    Raises:
        AssertionError: naming the input set that recompiled and dynamo's
            guard failure, or the disagreement with eager mode.
    """
    __tracebackhide__ = True
    import torch._dynamo
    from torch._dynamo.exc import RecompileError, TorchDynamoException

    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, dynamic=True, backend=backend)
    for k, args in enumerate(input_sets):
        try:
            with torch._dynamo.config.patch(error_on_recompile=k > 0):
                got = compiled(*args)
        except RecompileError as err:
            raise AssertionError(f"fn recompiles for input set {k}: {err}") from None
        except TorchDynamoException as err:
            raise AssertionError(f"fn does not compile with fullgraph=True: {err}") from None
        expected = fn(*args)
        tol = _tolerance(expected, atol, rtol)
        try:
            torch.testing.assert_close(got, expected, atol=tol[0], rtol=tol[1])
        except AssertionError as err:
            raise AssertionError(f"compiled output of fn differs from eager mode on input set {k}.\n"
                                 f"{err}") from None


def assert_gradcheck(fn: Callable, *inputs, eps: float = 1e-6, atol: Optional[float] = None,
                     rtol: Optional[float] = None, check_grad_dtypes: bool = True,
                     gradgrad: bool = False) -> None:
    """:func:`torch.autograd.gradcheck` (and optionally
    :func:`~torch.autograd.gradgradcheck`) in float64.

    Every floating tensor input is cast to float64 and made to require grad;
    other inputs pass through.

    Args:
        fn: the function whose backward is checked.
        inputs: its positional inputs.
        eps: finite-difference step.
        atol: absolute tolerance; ``None`` takes
            :data:`GRADCHECK_TOLERANCE` (not :data:`FLOAT_TOLERANCE`, see
            the module docstring).
        rtol: relative tolerance; ``None`` likewise.
        check_grad_dtypes: also check the gradients' dtypes.
        gradgrad: also check second derivatives.

    Raises:
        AssertionError: naming the check and the mismatching Jacobian.
    """
    __tracebackhide__ = True
    from torch.autograd.gradcheck import GradcheckError

    atol = GRADCHECK_TOLERANCE[0] if atol is None else atol
    rtol = GRADCHECK_TOLERANCE[1] if rtol is None else rtol
    prepared = []
    for x in inputs:
        if isinstance(x, Tensor) and x.is_floating_point():
            x = x.detach().to(torch.float64).requires_grad_(True)
        prepared.append(x)
    checks = [("gradcheck", torch.autograd.gradcheck)]
    if gradgrad:
        checks.append(("gradgradcheck", torch.autograd.gradgradcheck))
    for name, check in checks:
        try:
            ok = check(fn, tuple(prepared), eps=eps, atol=atol, rtol=rtol,
                       check_grad_dtypes=check_grad_dtypes)
        except GradcheckError as err:
            raise AssertionError(f"{name} failed: the backward of fn disagrees with "
                                 f"finite differences.\n{err}") from None
        assert ok, f"{name} failed"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now, for the rendezvous of a multi-process
    (``torch.distributed``) test."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]

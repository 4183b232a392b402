"""The property asserts of graphequi.testing: each must fail on a function that
lacks the property (otherwise every layer test relying on it passes vacuously),
pass on one that has it, and say what failed."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_adj

import graphequi.testing as gt
from graphequi.testing import (
    FLOAT_TOLERANCE,
    assert_compiles,
    assert_compiles_once,
    assert_e3_equivariant,
    assert_gradcheck,
    assert_permutation_equivariant,
    permute_data,
    permute_edges,
    random_edge_permutation,
    random_node_permutation,
    random_rotation,
)


def random_graph(n: int, seed: int, dtype=torch.float64) -> Data:
    """Undirected G(n, 0.5) with distinct node and edge features."""
    gen = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=gen) < 0.5, diagonal=1)
    edge_index = (upper | upper.T).nonzero().T
    num_edges = edge_index.size(1)
    return Data(x=torch.rand(n, 3, generator=gen, dtype=dtype) + 0.5, edge_index=edge_index,
                edge_attr=torch.rand(num_edges, 2, generator=gen, dtype=dtype) + 0.5,
                num_nodes=n)


def inputs(kind: str, dtype=torch.float64):
    if kind == "data":
        return random_graph(7, seed=1, dtype=dtype)
    return Batch.from_data_list([random_graph(n, seed=s, dtype=dtype)
                                 for s, n in enumerate([5, 7, 4])])


def graph_of(d) -> torch.Tensor:
    batch = getattr(d, "batch", None)
    return torch.zeros(d.num_nodes, dtype=torch.long) if batch is None else batch


def num_graphs(d) -> int:
    return int(graph_of(d).max()) + 1


def message_passing(d) -> torch.Tensor:
    """x_v + sum over in-edges (u, v) of x_u * (first edge feature)."""
    src, dst = d.edge_index
    msg = d.x[src] * d.edge_attr[:, :1]
    return d.x + torch.zeros_like(d.x).index_add_(0, dst, msg)


def graph_sum(d, node_values) -> torch.Tensor:
    return torch.zeros(num_graphs(d), node_values.size(1),
                       dtype=node_values.dtype).index_add_(0, graph_of(d), node_values)


def dense_pairs(d) -> torch.Tensor:
    """[B, n, n, 1] (Batch) or [n, n, 1] (Data): adjacency times x_u . x_v."""
    gram = torch.stack([d.x[u] @ d.x[v] for u, v in d.edge_index.T]).unsqueeze(-1)
    dense = to_dense_adj(d.edge_index, graph_of(d), edge_attr=gram)
    return dense if isinstance(d, Batch) else dense[0]


EQUIVARIANT = {
    "node": message_passing,
    "graph": lambda d: graph_sum(d, message_passing(d)),
    "edge": lambda d: d.x[d.edge_index[0]] * d.x[d.edge_index[1]] + d.edge_attr[:, :1],
    "pair": dense_pairs,
}


def node_index(d) -> torch.Tensor:
    return torch.arange(d.num_nodes, dtype=d.x.dtype).unsqueeze(-1)


# Each adds the raw node index, which a relabeling does not move along.
NOT_EQUIVARIANT = {
    "node": lambda d: message_passing(d) + node_index(d),
    "graph": lambda d: graph_sum(d, message_passing(d) * node_index(d)),
    "edge": lambda d: EQUIVARIANT["edge"](d) + d.edge_index[0].unsqueeze(-1).to(d.x.dtype),
    "pair": lambda d: dense_pairs(d) + torch.arange(dense_pairs(d).size(-2),
                                                     dtype=d.x.dtype).unsqueeze(-1),
}


def first_incoming_edge_attr(d) -> torch.Tensor:
    """Per node, the features of its first in-edge in edge order (0 if none):
    equivariant to relabeling nodes, but depends on the edge order."""
    num_edges = d.edge_index.size(1)
    first = torch.full((d.num_nodes,), num_edges).scatter_reduce(
        0, d.edge_index[1], torch.arange(num_edges), "amin")
    return torch.cat([d.edge_attr, d.edge_attr.new_zeros(1, d.edge_attr.size(1))])[first]


# --- assert_permutation_equivariant ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["data", "batch"])
@pytest.mark.parametrize("output", ["node", "graph", "edge", "pair"])
def test_permutation_passes_equivariant_function(kind, output):
    assert_permutation_equivariant(EQUIVARIANT[output], inputs(kind), output=output)


@pytest.mark.parametrize("kind", ["data", "batch"])
@pytest.mark.parametrize("output", ["node", "graph", "edge", "pair"])
def test_permutation_fails_on_node_index(kind, output):
    level = "invariant" if output == "graph" else "equivariant"
    with pytest.raises(AssertionError, match=rf"not permutation-{level} \(output='{output}'"
                                             r".*relabeling the nodes changes the output"):
        assert_permutation_equivariant(NOT_EQUIVARIANT[output], inputs(kind), output=output)


@pytest.mark.parametrize("kind", ["data", "batch"])
def test_permutation_fails_on_edge_order_dependence(kind):
    fn = first_incoming_edge_attr
    assert_permutation_equivariant(fn, inputs(kind), output="node", permute_edge_order=False)
    with pytest.raises(AssertionError, match="reordering the edges changes the output "
                                             r"\(relabeling the nodes alone does not\)"):
        assert_permutation_equivariant(fn, inputs(kind), output="node")


@pytest.mark.parametrize("kind", ["data", "batch"])
def test_edge_output_rows_must_follow_the_edge_permutation(kind):
    def with_position(d):
        return d.edge_attr + torch.arange(d.edge_index.size(1), dtype=d.x.dtype).unsqueeze(-1)

    assert_permutation_equivariant(with_position, inputs(kind), output="edge",
                                   permute_edge_order=False)
    with pytest.raises(AssertionError, match="reordering the edges"):
        assert_permutation_equivariant(with_position, inputs(kind), output="edge")


def test_every_edge_attribute_is_reordered_with_the_edges():
    data = inputs("batch")
    data.poly_edge_attr = torch.rand(data.num_edges, 1, dtype=torch.float64,
                                     generator=torch.Generator().manual_seed(3))

    def gine_like(d):
        src, dst = d.edge_index
        msg = d.x[src] * d.poly_edge_attr * d.edge_attr[:, :1]
        return graph_sum(d, torch.zeros_like(d.x).index_add_(0, dst, msg))

    assert_permutation_equivariant(gine_like, data, output="graph")
    # Naming the attributes overrides the guess: poly_edge_attr left in place
    # no longer matches its edge.
    with pytest.raises(AssertionError, match="reordering the edges"):
        assert_permutation_equivariant(gine_like, data, output="graph", edge_attrs=["edge_attr"])


def test_permutation_rejects_unknown_level_and_zero_trials():
    with pytest.raises(ValueError, match="output level"):
        assert_permutation_equivariant(message_passing, inputs("data"), output="nodes")
    with pytest.raises(ValueError, match="trials"):
        assert_permutation_equivariant(message_passing, inputs("data"), trials=0)


# --- permutation helpers ------------------------------------------------------------------

def test_random_node_permutation_keeps_nodes_in_their_graph():
    gen = torch.Generator().manual_seed(0)
    for batch in (inputs("batch").batch, torch.tensor([1, 0, 2, 0, 1, 1, 2, 0, 2, 2])):
        perm = random_node_permutation(batch, batch.numel(), gen)
        assert sorted(perm.tolist()) == list(range(batch.numel()))
        assert torch.equal(batch[perm], batch)
        assert not torch.equal(perm, torch.arange(batch.numel()))
    perm = random_node_permutation(None, 6, gen)
    assert sorted(perm.tolist()) == list(range(6))


def edge_set(d) -> set:
    """{(src, dst, edge features)} of a graph, as hashable tuples."""
    return {(int(u), int(v), tuple(a.tolist())) for (u, v), a in zip(d.edge_index.T, d.edge_attr)}


@pytest.mark.parametrize("kind", ["data", "batch"])
def test_edge_permutation_keeps_the_edge_set_and_the_batch_valid(kind):
    data = inputs(kind)
    before = data.edge_index.clone()
    perm = random_edge_permutation(data.edge_index, getattr(data, "batch", None),
                                   torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(data.num_edges))
    assert not torch.equal(perm, torch.arange(data.num_edges))
    moved = permute_edges(data, perm)
    assert torch.equal(data.edge_index, before)  # the input is left alone
    assert not torch.equal(moved.edge_index, data.edge_index)
    assert edge_set(moved) == edge_set(data)
    if kind == "batch":
        graph = data.batch[data.edge_index[0]]
        assert torch.equal(graph[perm], graph)
        for i in range(data.num_graphs):
            assert edge_set(moved.get_example(i)) == edge_set(data.get_example(i))


def test_permute_edges_guesses_edge_level_attributes():
    data = random_graph(6, seed=2)
    num_edges = data.num_edges
    data.w = torch.arange(num_edges)  # edge-sized: moved
    data.y = torch.arange(3)  # neither
    perm = torch.arange(num_edges).flip(0)
    moved = permute_edges(data, perm)
    assert torch.equal(moved.w, data.w.flip(0)) and torch.equal(moved.edge_attr, data.edge_attr[perm])
    assert torch.equal(moved.y, data.y) and torch.equal(moved.x, data.x)
    # With as many edges as nodes only names containing "edge" are edge-level.
    ring = Data(x=torch.arange(4.0), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]),
                edge_weight=torch.arange(4.0), num_nodes=4)
    moved = permute_edges(ring, torch.tensor([3, 2, 1, 0]))
    assert moved.edge_weight.tolist() == [3.0, 2.0, 1.0, 0.0] and moved.x.tolist() == [0, 1, 2, 3]


def test_permute_data_relabels_edges_and_moves_node_attributes():
    data = random_graph(5, seed=4)
    perm = torch.tensor([2, 0, 4, 1, 3])
    moved = permute_data(data, perm)
    assert torch.equal(moved.x, data.x[perm])
    # new node i is old node perm[i], so new edge (i, j) is old edge (perm[i], perm[j])
    assert torch.equal(perm[moved.edge_index], data.edge_index)


# --- assert_e3_equivariant ------------------------------------------------------------------

POS = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def pairwise_distance_sum(pos):
    return torch.cdist(pos, pos).sum(-1)


def signed_volume(pos):
    """det[p1 - p0, p2 - p0, p3 - p0]: rotation-invariant, flips sign under a reflection."""
    return torch.linalg.det(pos[1:4] - pos[0])


def centered(pos):
    return pos - pos.mean(0)


def normal(pos):
    """(p1 - p0) x (p2 - p0): a pseudovector (rotates, but ignores parity)."""
    return torch.linalg.cross(pos[1] - pos[0], pos[2] - pos[0]).unsqueeze(0)


def test_e3_passes_invariant_and_vector_functions():
    assert_e3_equivariant(pairwise_distance_sum, POS)
    assert_e3_equivariant(centered, POS, output="vector")
    assert_e3_equivariant(lambda pos, scale: centered(pos) * scale, POS, 2.0, output="vector")


def test_e3_fails_on_coordinate():
    with pytest.raises(AssertionError, match="not E\\(3\\)-invariant: a rotation plus translation"):
        assert_e3_equivariant(lambda pos: pos[:, 0], POS)


@pytest.mark.parametrize("fn, output", [(signed_volume, "invariant"), (normal, "vector")])
def test_e3_reflections_catch_chirality(fn, output):
    assert_e3_equivariant(fn, POS, output=output, reflections=False)
    with pytest.raises(AssertionError, match=f"not E\\(3\\)-{output}: an improper rotation"):
        assert_e3_equivariant(fn, POS, output=output)


def test_e3_vector_fails_on_anisotropic_or_translated_output():
    with pytest.raises(AssertionError, match="not E\\(3\\)-vector: a rotation"):
        assert_e3_equivariant(lambda pos: centered(pos) * torch.tensor([1.0, 2.0, 3.0],
                                                                       dtype=pos.dtype),
                              POS, output="vector")
    with pytest.raises(AssertionError, match="not E\\(3\\)-vector"):
        assert_e3_equivariant(lambda pos: pos, POS, output="vector")


def test_e3_needs_a_trial_with_a_reflection():
    with pytest.raises(ValueError, match="trials >= 2"):
        assert_e3_equivariant(pairwise_distance_sum, POS, trials=1)
    assert_e3_equivariant(pairwise_distance_sum, POS, trials=1, reflections=False)


@pytest.mark.parametrize("reflect, det", [(False, 1.0), (True, -1.0)])
def test_random_rotation_is_orthogonal(reflect, det):
    rot = random_rotation(torch.Generator().manual_seed(1), reflect=reflect)
    torch.testing.assert_close(rot.T @ rot, torch.eye(3, dtype=torch.float64))
    assert torch.det(rot).item() == pytest.approx(det)


# --- assert_compiles ------------------------------------------------------------------------

X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))


def test_compiles_passes_and_returns_compiled_output():
    def fn(x, scale=1.0):
        return torch.sin(x) * scale + x.sum(0)

    out = assert_compiles(fn, X, scale=2.0)
    torch.testing.assert_close(out, fn(X, scale=2.0))


def item_break(x):
    return x * x.sum().item()


def explicit_break(x):
    y = x + 1
    torch._dynamo.graph_break()
    return y * 2


@pytest.mark.parametrize("fn", [item_break, explicit_break])
def test_compiles_fails_on_graph_break(fn):
    with pytest.raises(AssertionError, match=r"fn has 1 graph break\(s\) under torch.compile"):
        assert_compiles(fn, X)


def test_compiles_fails_when_compiled_differs_from_eager():
    # A compile-only code path (as used for compiler-friendly fallbacks) that
    # is wrong: the graph is whole, only the values betray it.
    def fn(x):
        return x + 1 if torch.compiler.is_compiling() else x

    with pytest.raises(AssertionError, match="compiled output of fn differs from eager mode"):
        assert_compiles(fn, X)


def test_compiles_once_passes_over_sizes_and_fails_on_a_specialised_size():
    sizes = [(torch.randn(n, 4, generator=torch.Generator().manual_seed(n)),) for n in (5, 7, 9)]
    assert_compiles_once(lambda x: torch.sin(x) * x.size(0), sizes)

    def branches_on_size(x):
        return x * 2 if x.size(0) == 5 else x * 3

    with pytest.raises(AssertionError, match="fn recompiles for input set 1"):
        assert_compiles_once(branches_on_size, sizes)

    def wrong_when_compiled(x):
        return x + 1 if torch.compiler.is_compiling() else x

    with pytest.raises(AssertionError, match="differs from eager mode on input set 0"):
        assert_compiles_once(wrong_when_compiled, sizes)


# --- assert_gradcheck -----------------------------------------------------------------------

class Cube(torch.autograd.Function):
    """x ** 3 with a hand-written backward, optionally wrong."""

    @staticmethod
    def forward(ctx, x, factor, detach):
        ctx.save_for_backward(x)
        ctx.factor, ctx.detach = factor, detach
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.detach:  # first derivative right, but invisible to double backward
            x = x.detach()
        return grad * ctx.factor * x ** 2, None, None


SRC = torch.rand(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5


def test_gradcheck_passes_correct_backward_and_casts_to_float64():
    assert_gradcheck(lambda x: Cube.apply(x, 3.0, False), SRC, gradgrad=True)
    assert_gradcheck(lambda x, k: torch.sin(x) * k, SRC.float(), 3)


def test_gradcheck_fails_on_wrong_backward():
    with pytest.raises(AssertionError, match="gradcheck failed: the backward of fn disagrees"):
        assert_gradcheck(lambda x: Cube.apply(x, 2.0, False), SRC)


def test_gradgradcheck_fails_on_wrong_double_backward():
    fn = lambda x: Cube.apply(x, 3.0, True)  # noqa: E731
    assert_gradcheck(fn, SRC)
    with pytest.raises(AssertionError, match="gradgradcheck failed"):
        assert_gradcheck(fn, SRC, gradgrad=True)


# --- tolerances -----------------------------------------------------------------------------

def test_tolerance_table_is_read_only_and_looser_for_coarser_dtypes():
    order = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
    for fine, coarse in zip(order, order[1:]):
        assert all(f <= c for f, c in zip(FLOAT_TOLERANCE[fine], FLOAT_TOLERANCE[coarse]))
    with pytest.raises(TypeError):
        FLOAT_TOLERANCE[torch.float64] = (1.0, 1.0)


class Drift:
    """``base(*a)`` on the first call, ``base(*a) * (1 + rel)`` afterwards. The
    asserts call it first for the reference, so each comparison sees exactly
    a relative error of ``rel`` (rounded to the output dtype)."""

    def __init__(self, base, rel):
        self.base, self.rel, self.calls = base, rel, 0

    def __call__(self, *args):
        self.calls += 1
        out = self.base(*args)
        return out if self.calls == 1 else (out.double() * (1 + self.rel)).to(out.dtype)


CHECKS = {
    "permutation": lambda fn, dtype, **kw: assert_permutation_equivariant(
        fn(EQUIVARIANT["graph"]), inputs("batch", dtype), output="graph", **kw),
    "e3": lambda fn, dtype, **kw: assert_e3_equivariant(
        fn(pairwise_distance_sum), POS.to(dtype), **kw),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_default_tolerance_follows_output_dtype(check):
    run = CHECKS[check]
    with pytest.raises(AssertionError, match="not"):
        run(lambda base: Drift(base, 1e-7), torch.float64)
    run(lambda base: Drift(base, 1e-7), torch.float32)
    with pytest.raises(AssertionError, match="not"):
        run(lambda base: Drift(base, 1e-3), torch.float32)
    # an explicit tolerance overrides the table; a lone atol keeps the table's rtol
    run(lambda base: Drift(base, 1e-7), torch.float64, rtol=1e-6)
    with pytest.raises(AssertionError, match="not"):
        run(lambda base: Drift(base, 1e-7), torch.float64, atol=1e-12)


def test_default_tolerance_of_compiled_output_follows_dtype():
    def off_when_compiled(x):
        return x * (1 + 1e-7) if torch.compiler.is_compiling() else x

    assert_compiles(off_when_compiled, X)
    with pytest.raises(AssertionError, match="differs from eager"):
        assert_compiles(off_when_compiled, X.double())


def test_tolerance_of_nested_and_integer_outputs():
    f32, f64 = FLOAT_TOLERANCE[torch.float32], FLOAT_TOLERANCE[torch.float64]
    assert gt._tolerance((torch.zeros(1), [torch.zeros(1, dtype=torch.float64)]), None, None) == f32
    assert gt._tolerance(torch.zeros(1, dtype=torch.complex128), None, None) == f64
    assert gt._tolerance(torch.zeros(1, dtype=torch.long), None, None) == (0.0, 0.0)
    assert gt._tolerance(torch.zeros(1), 0.5, None) == (0.5, f32[1])


# --- tracebacks -----------------------------------------------------------------------------

@pytest.mark.parametrize("failing", [
    lambda: assert_permutation_equivariant(NOT_EQUIVARIANT["node"], inputs("data")),
    lambda: assert_e3_equivariant(lambda pos: pos[:, 0], POS),
    lambda: assert_compiles(explicit_break, X),
    lambda: assert_compiles_once(lambda x: x * 2 if x.size(0) == 5 else x, [(torch.ones(5),), (torch.ones(6),)]),
    lambda: assert_gradcheck(lambda x: Cube.apply(x, 2.0, False), SRC),
], ids=["permutation", "e3", "compiles", "compiles-once", "gradcheck"])
def test_asserts_hide_their_frame_from_pytest(failing):
    with pytest.raises(AssertionError) as excinfo:
        failing()
    own = [entry for entry in excinfo.traceback if entry.path == gt.__file__ or
           str(entry.path) == gt.__file__]
    assert own, "the assert's frame should be in the raw traceback"
    assert all(entry.frame.f_locals.get("__tracebackhide__") is True for entry in own)

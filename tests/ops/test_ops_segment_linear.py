"""graphequi.ops.segment_linear: against a loop of F.linear, gradients of every
order, opcheck, torch.compile, empty segments and bad input."""
import pytest
import torch
import torch.nn.functional as F

import graphequi.ops as ops
from graphequi.testing import assert_compiles, assert_gradcheck

HAS_CPP = "cpu" in ops.cpp_devices()
BACKENDS = ["cpp", "torch"] if HAS_CPP else ["torch"]
NAMESPACES = (["graphequi"] if HAS_CPP else []) + ["graphequi_torch"]


def inputs(sizes, k=5, n=7, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), k, generator=gen, dtype=dtype)
    weight = torch.randn(len(sizes), n, k, generator=gen, dtype=dtype)
    bias = torch.randn(len(sizes), n, generator=gen, dtype=dtype)
    return x, weight, bias


def loop_reference(x, sizes, weight, bias=None):
    """The obvious definition: one F.linear per segment."""
    out, start = [], 0
    for g, size in enumerate(sizes):
        out.append(F.linear(x[start:start + size], weight[g], None if bias is None else bias[g]))
        start += size
    return torch.cat(out) if out else x.new_empty(0, weight.size(1))


SIZES = [[4, 9, 1], [0, 5, 0, 3], [12], [0], [], [3, 0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_a_loop_of_linear_maps(backend, sizes, with_bias):
    x, weight, bias = inputs(sizes)
    bias = bias if with_bias else None
    with ops.use_backend(backend):
        out = ops.segment_linear(x, sizes, weight, bias)
    assert out.shape == (sum(sizes), weight.size(1))
    torch.testing.assert_close(out, loop_reference(x, sizes, weight, bias))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_of_first_and_second_order(backend):
    sizes = [3, 0, 4]
    x, weight, bias = inputs(sizes, k=3, n=2)
    with ops.use_backend(backend):
        assert_gradcheck(lambda a, w, b: ops.segment_linear(a, sizes, w, b), x, weight, bias, gradgrad=True)
        assert_gradcheck(lambda a, w: ops.segment_linear(a, sizes, w), x, weight, gradgrad=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_equal_the_loop_gradients(backend):
    sizes = [40, 0, 17, 60]
    x, weight, bias = inputs(sizes, k=11, n=6)
    g = torch.randn(sum(sizes), 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    ref = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    with ops.use_backend(backend):
        (ops.segment_linear(got[0], sizes, got[1], got[2]) * g).sum().backward()
    (loop_reference(ref[0], sizes, ref[1], ref[2]) * g).sum().backward()
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.grad, b.grad)
    # an empty segment's weight and bias get a zero gradient, not garbage
    assert torch.equal(got[1].grad[1], torch.zeros_like(got[1].grad[1]))
    assert torch.equal(got[2].grad[1], torch.zeros_like(got[2].grad[1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_inputs_that_need_a_gradient_get_one(backend):
    sizes = [2, 3]
    x, weight, bias = inputs(sizes)
    with ops.use_backend(backend):
        w = weight.clone().requires_grad_(True)
        ops.segment_linear(x, sizes, w, bias).sum().backward()
        assert w.grad is not None
        b = bias.clone().requires_grad_(True)
        ops.segment_linear(x, sizes, weight, b).sum().backward()
        torch.testing.assert_close(b.grad, torch.tensor([[2.0] * 7, [3.0] * 7], dtype=torch.float64))


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck(ns):
    op = getattr(torch.ops, ns)
    sizes = [3, 0, 2]
    x, weight, bias = inputs(sizes)
    g = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    for args in ((x.requires_grad_(), sizes, weight.requires_grad_(), bias.requires_grad_()),
                 (x, sizes, weight, None)):
        torch.library.opcheck(op.segment_linear.default, args)
    for with_bias in (True, False):
        torch.library.opcheck(op.segment_linear_weight_grad.default, (g, x, sizes, with_bias))


def test_backends_agree():
    if not HAS_CPP:
        pytest.skip("extension not built")
    sizes = [30, 0, 45, 7]
    x, weight, bias = inputs(sizes, k=32, n=64, dtype=torch.float32)
    with ops.use_backend("cpp"):
        a = ops.segment_linear(x, sizes, weight, bias)
    with ops.use_backend("torch"):
        b = ops.segment_linear(x, sizes, weight, bias)
    torch.testing.assert_close(a, b)


def test_compiles_without_graph_breaks():
    sizes = [3, 5, 2]
    x, weight, bias = inputs(sizes, dtype=torch.float32)
    assert_compiles(lambda a, w, b: ops.segment_linear(a, sizes, w, b).square().sum(), x, weight, bias)


def test_two_runs_are_identical():
    sizes = [100, 3, 250]
    x, weight, bias = inputs(sizes, k=16, n=16, dtype=torch.float32)
    runs = []
    for _ in range(2):
        xs, ws = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        out = ops.segment_linear(xs, sizes, ws, bias)
        out.square().sum().backward()
        runs.append((out, xs.grad, ws.grad))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_nan_stays_in_its_segment():
    sizes = [2, 3]
    x, weight, bias = inputs(sizes)
    x[3, 0] = float("nan")
    out = ops.segment_linear(x, sizes, weight, bias)
    assert torch.isnan(out[3]).all() and not torch.isnan(out[[0, 1, 2, 4]]).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_a_clear_error(backend):
    sizes = [2, 3]
    x, weight, bias = inputs(sizes)
    with ops.use_backend(backend):
        with pytest.raises(TypeError, match="x must be a torch.Tensor"):
            ops.segment_linear(x.tolist(), sizes, weight)
        with pytest.raises(TypeError, match="sizes must be a sequence of ints"):
            ops.segment_linear(x, torch.tensor(sizes), weight)
        with pytest.raises(ValueError, match="x must be a 2-D"):
            ops.segment_linear(x[0], sizes, weight)
        with pytest.raises(ValueError, match=r"weight must be \[G, N, 5\]"):
            ops.segment_linear(x, sizes, weight[..., :4])
        with pytest.raises(ValueError, match="sizes has 3 segments but the weight has 2 groups"):
            ops.segment_linear(x, [2, 3, 0], weight)
        with pytest.raises(ValueError, match="sum to 4 but there are 5 rows"):
            ops.segment_linear(x, [1, 3], weight)
        with pytest.raises(ValueError, match="non-negative, got -1 at segment 0"):
            ops.segment_linear(x, [-1, 6], weight)
        with pytest.raises(ValueError, match=r"bias must be \[2, 7\]"):
            ops.segment_linear(x, sizes, weight, bias[:1])
        with pytest.raises(TypeError, match="must share a dtype"):
            ops.segment_linear(x.float(), sizes, weight)
        with pytest.raises(TypeError, match="floating-point"):
            ops.segment_linear(x.long(), sizes, weight.long())


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpp_op_called_directly_raises_instead_of_crashing():
    sizes = [2, 3]
    x, weight, bias = inputs(sizes)
    op = torch.ops.graphequi
    with pytest.raises(ValueError, match="sum to 4 but there are 5 rows"):
        op.segment_linear(x, [1, 3], weight, None)
    with pytest.raises(ValueError, match="non-negative"):
        op.segment_linear(x, [-1, 6], weight, None)
    with pytest.raises(ValueError, match="weight must be"):
        op.segment_linear(x, sizes, weight[..., :2], None)
    with pytest.raises(ValueError, match="bias must be"):
        op.segment_linear(x, sizes, weight, bias[:, :3])
    with pytest.raises(TypeError, match="share a dtype"):
        op.segment_linear(x, sizes, weight.float(), None)
    with pytest.raises(ValueError, match="same rows"):
        op.segment_linear_weight_grad(x[:4], x, sizes, True)
    with pytest.raises(ValueError, match="sum to 4"):
        op.segment_linear_weight_grad(x, x, [1, 3], False)

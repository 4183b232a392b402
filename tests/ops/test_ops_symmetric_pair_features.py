"""graphequi.ops.symmetric_pair_features: bitwise against the torch ops,
commutativity, gradients of every order, opcheck, compile, bad input."""
import pytest
import torch

import graphequi.ops as ops
from graphequi.testing import assert_compiles, assert_gradcheck

HAS_CPP = "cpu" in ops.cpp_devices()
BACKENDS = ["cpp", "torch"] if HAS_CPP else ["torch"]
NAMESPACES = (["graphequi"] if HAS_CPP else []) + ["graphequi_torch"]


def pairs_of(p=41, d=19, dtype=torch.float64, seed=0):
    return torch.randn(p, 2, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def reference(pairs):
    a, b = pairs.unbind(1)
    return torch.cat([a + b, a * b, (a - b).abs()], dim=-1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_bitwise_equal_to_the_torch_ops_and_commutative(backend, dtype):
    pairs = pairs_of(dtype=dtype)
    pairs[3, 1] = pairs[3, 0]                    # a == b: |a - b| = +0
    pairs[4, 0, 2] = float("nan")
    with ops.use_backend(backend):
        out = ops.symmetric_pair_features(pairs)
        swapped = ops.symmetric_pair_features(pairs.flip(1))
    expected = reference(pairs)
    assert out.dtype == dtype and out.shape == (41, 57)
    assert torch.equal(out.nan_to_num(), expected.nan_to_num()) and torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), swapped.nan_to_num())
    assert not torch.signbit(out[3, 38:]).any()  # |a - a| is +0, as torch's abs gives


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_of_first_and_second_order(backend):
    pairs = pairs_of(6, 4)
    with ops.use_backend(backend):
        assert_gradcheck(ops.symmetric_pair_features, pairs, gradgrad=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_equals_the_torch_ops_gradient(backend):
    pairs = pairs_of(300, 37)
    g = torch.randn(300, 111, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got, ref = pairs.clone().requires_grad_(True), pairs.clone().requires_grad_(True)
    with ops.use_backend(backend):
        (ops.symmetric_pair_features(got) * g).sum().backward()
    (reference(ref) * g).sum().backward()
    torch.testing.assert_close(got.grad, ref.grad)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck(ns):
    op = getattr(torch.ops, ns)
    pairs = pairs_of(7, 5).requires_grad_(True)
    grad = torch.randn(7, 15, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(op.symmetric_pair_features.default, (pairs,))
    torch.library.opcheck(op.symmetric_pair_features_backward.default, (grad, pairs))


def test_compiles_without_graph_breaks():
    assert_compiles(lambda p: ops.symmetric_pair_features(p).square().sum(), pairs_of(9, 6, torch.float32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_instruction_sets_give_identical_results(dtype, assert_same_on_every_cpu_isa):
    pairs = pairs_of(500, 37, dtype, seed=2)
    g = torch.randn(500, 111, dtype=dtype, generator=torch.Generator().manual_seed(3))

    def run():
        leaf = pairs.clone().requires_grad_(True)
        out = ops.symmetric_pair_features(leaf)
        (out * g).sum().backward()
        return [out, leaf.grad]
    assert_same_on_every_cpu_isa(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_a_clear_error(backend):
    pairs = pairs_of(5, 3)
    with ops.use_backend(backend):
        with pytest.raises(TypeError, match="pairs must be a torch.Tensor"):
            ops.symmetric_pair_features(pairs.tolist())
        with pytest.raises(ValueError, match=r"pairs must be \[P, 2, D\]"):
            ops.symmetric_pair_features(pairs[:, :1])
        with pytest.raises(ValueError, match=r"pairs must be \[P, 2, D\]"):
            ops.symmetric_pair_features(pairs[0])
        with pytest.raises(TypeError, match="floating point"):
            ops.symmetric_pair_features(pairs.long())
    if HAS_CPP:
        with pytest.raises(ValueError, match=r"grad must be \[P, 3 D\]"):
            torch.ops.graphequi.symmetric_pair_features_backward(torch.zeros(5, 8, dtype=torch.float64), pairs)
        with pytest.raises(TypeError, match="share a dtype"):
            torch.ops.graphequi.symmetric_pair_features_backward(torch.zeros(5, 9), pairs)

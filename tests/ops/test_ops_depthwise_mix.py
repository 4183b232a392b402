"""graphequi.ops.depthwise_mix: against einsum, gradients of every order,
opcheck, torch.compile, thread-count independence and bad input."""
import pytest
import torch

import graphequi.ops as ops
from graphequi.testing import assert_compiles, assert_gradcheck

HAS_CPP = "cpu" in ops.cpp_devices()
BACKENDS = ["cpp", "torch"] if HAS_CPP else ["torch"]
NAMESPACES = (["graphequi"] if HAS_CPP else []) + ["graphequi_torch"]


def inputs(n=37, o=5, l=4, c=9, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(o, l, c, generator=gen, dtype=dtype), torch.randn(n, l, c, generator=gen, dtype=dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(37, 5, 4, 9), (200, 12, 12, 64), (131, 7, 3, 37), (1, 1, 1, 1), (0, 3, 2, 4), (6, 2, 3, 0)])
def test_matches_einsum(backend, shape):
    w, x = inputs(*shape)
    with ops.use_backend(backend):
        out = ops.depthwise_mix(w, x)
    assert out.shape == (shape[0], shape[1], shape[3])
    torch.testing.assert_close(out, torch.einsum("olc,nlc->noc", w, x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_accumulates_in_float32(backend):
    w, x = inputs(50, 6, 16, 8, dtype=torch.float32)
    with ops.use_backend(backend):
        for dtype in (torch.float16, torch.bfloat16):
            got = ops.depthwise_mix(w.to(dtype), x.to(dtype))
            assert got.dtype == dtype
            expected = torch.einsum("olc,nlc->noc", w.to(dtype).float(), x.to(dtype).float())
            torch.testing.assert_close(got.float(), expected, atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_of_first_and_second_order(backend):
    w, x = inputs(7, 3, 4, 5)
    with ops.use_backend(backend):
        assert_gradcheck(ops.depthwise_mix, w, x, gradgrad=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_equal_einsum_gradients(backend):
    w, x = inputs(150, 6, 6, 21)
    g = torch.randn(150, 6, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    got = [t.clone().requires_grad_(True) for t in (w, x)]
    ref = [t.clone().requires_grad_(True) for t in (w, x)]
    with ops.use_backend(backend):
        (ops.depthwise_mix(*got) * g).sum().backward()
    (torch.einsum("olc,nlc->noc", *ref) * g).sum().backward()
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck(ns):
    op = getattr(torch.ops, ns)
    w, x = inputs(11, 3, 4, 5)
    g = torch.randn(11, 3, 5, dtype=torch.float64)
    torch.library.opcheck(op.depthwise_mix.default, (w.requires_grad_(), x.requires_grad_()))
    torch.library.opcheck(op.depthwise_mix_weight_grad.default, (g.requires_grad_(), x))


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_same_result_for_any_number_of_threads():
    w, x = inputs(1000, 8, 8, 32, dtype=torch.float32)
    g = torch.randn(1000, 8, 32, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            wr, xr = w.clone().requires_grad_(True), x.clone().requires_grad_(True)
            out = ops.depthwise_mix(wr, xr)
            (out * g).sum().backward()
            results.append((out, wr.grad, xr.grad))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_compiles_without_graph_breaks():
    w, x = inputs(13, 4, 4, 6, dtype=torch.float32)
    assert_compiles(lambda a, b: ops.depthwise_mix(a, b).square().sum(), w, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_a_clear_error(backend):
    w, x = inputs(5, 3, 4, 2)
    with ops.use_backend(backend):
        with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
            ops.depthwise_mix(w.tolist(), x)
        with pytest.raises(ValueError, match="x must be 3-D"):
            ops.depthwise_mix(w, x[0])
        with pytest.raises(ValueError, match="must agree on L and C"):
            ops.depthwise_mix(w, x[:, :3])
        with pytest.raises(ValueError, match="must agree on L and C"):
            ops.depthwise_mix(w[..., :1], x)
        with pytest.raises(TypeError, match="share a floating dtype"):
            ops.depthwise_mix(w.float(), x)
        with pytest.raises(TypeError, match="share a floating dtype"):
            ops.depthwise_mix(w.long(), x.long())


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpp_op_called_directly_raises_instead_of_crashing():
    w, x = inputs(5, 3, 4, 2)
    with pytest.raises(ValueError, match="agree on L and C"):
        torch.ops.graphequi.depthwise_mix(w, x[:, :2])
    with pytest.raises(TypeError, match="floating dtype"):
        torch.ops.graphequi.depthwise_mix(w.long(), x.long())
    with pytest.raises(ValueError, match=r"grad must be \[N, O, C\]"):
        torch.ops.graphequi.depthwise_mix_weight_grad(x[:4], x)


def test_nan_propagates_to_its_node_only():
    w, x = inputs(6, 3, 4, 2)
    x[2, 1, 0] = float("nan")
    out = ops.depthwise_mix(w, x)
    assert torch.isnan(out[2, :, 0]).all()
    assert not torch.isnan(out[[0, 1, 3, 4, 5]]).any() and not torch.isnan(out[2, :, 1]).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_instruction_sets_give_identical_results(dtype, assert_same_on_every_cpu_isa):
    w, x = inputs(300, 9, 7, 37, dtype=dtype, seed=6)  # 37 channels: vector blocks plus a scalar tail
    g = torch.randn(300, 9, 37, dtype=dtype, generator=torch.Generator().manual_seed(7))

    def run():
        wr, xr = w.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out = ops.depthwise_mix(wr, xr)
        (out * g).sum().backward()
        return [out, wr.grad, xr.grad]
    assert_same_on_every_cpu_isa(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_gradient_of_many_nodes(backend):
    """More nodes than 256 blocks of 64: the blocks grow, the sum stays exact."""
    w, x = inputs(40_000, 3, 4, 5)
    g = torch.randn(40_000, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    op = getattr(torch.ops, "graphequi" if backend == "cpp" else "graphequi_torch")
    torch.testing.assert_close(op.depthwise_mix_weight_grad(g, x), torch.einsum("noc,nlc->olc", g, x))

"""graphequi.ops against a dense reference, on both backends."""
import os

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch_geometric.utils import scatter as pyg_scatter

import graphequi.ops as ops
from graphequi.testing import assert_compiles, assert_gradcheck

BACKENDS = ["cpp", "torch"] if "cpu" in ops.cpp_devices() else ["torch"]
REDUCES = ["sum", "mean", "min", "max"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with ops.use_backend(request.param):
        yield request.param


def dense_reference(src, index, dim, dim_size, reduce):
    """Group by group, with torch's dense reductions; empty groups are 0."""
    moved = src.movedim(dim, 0)
    out = torch.zeros((dim_size,) + moved.shape[1:], dtype=src.dtype)
    for g in range(dim_size):
        rows = moved[index == g]
        if rows.numel() == 0 and rows.size(0) == 0:
            continue
        if reduce in ("sum", "add"):
            out[g] = rows.sum(0) if src.is_floating_point() else rows.sum(0).to(src.dtype)
        elif reduce == "mean":
            out[g] = rows.mean(0)
        elif reduce == "min":
            out[g] = rows.amin(0)
        else:
            out[g] = rows.amax(0)
    return out.movedim(0, dim)


def dense_arg_reference(src, index, dim_size, reduce):
    """Winning row per (group, feature) for 2-D src: lowest row on ties."""
    E, F = src.shape
    arg = torch.full((dim_size, F), -1, dtype=torch.long)
    for g in range(dim_size):
        rows = (index == g).nonzero().flatten().tolist()
        for f in range(F):
            best = None
            for r in rows:
                v = src[r, f].item()
                if best is None or (v > best if reduce == "max" else v < best):
                    best, arg[g, f] = v, r
    return arg


@st.composite
def scatter_case(draw):
    E = draw(st.integers(0, 40))
    G = draw(st.integers(1, 9))
    kind = draw(st.sampled_from(["random", "one_group", "all_in_last", "sorted"]))
    if kind == "random":
        index = draw(st.lists(st.integers(0, G - 1), min_size=E, max_size=E))
    elif kind == "one_group":
        index = [0] * E
        G = 1
    elif kind == "all_in_last":
        index = [G - 1] * E
    else:
        index = sorted(draw(st.lists(st.integers(0, G - 1), min_size=E, max_size=E)))
    trailing = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    lead = draw(st.sampled_from([(), (2,)]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.int64]))
    reduce = draw(st.sampled_from(REDUCES if dtype != torch.int64 else ["sum", "min", "max"]))
    index_dtype = draw(st.sampled_from([torch.int64, torch.int32]))
    seed = draw(st.integers(0, 2**16))
    return E, G, index, lead, trailing, dtype, reduce, index_dtype, seed


@settings(max_examples=150, deadline=None)
@given(scatter_case())
def test_scatter_matches_dense_reference_on_both_backends(case):
    E, G, index, lead, trailing, dtype, reduce, index_dtype, seed = case
    gen = torch.Generator().manual_seed(seed)
    shape = lead + (E,) + trailing
    if dtype.is_floating_point:
        src = torch.randn(shape, generator=gen, dtype=dtype)
    else:
        src = torch.randint(-5, 6, shape, generator=gen, dtype=dtype)
    idx = torch.tensor(index, dtype=index_dtype)
    dim = len(lead)
    expected = dense_reference(src, idx.long(), dim, G, reduce)
    for name in BACKENDS:
        with ops.use_backend(name):
            got = ops.scatter(src, idx, dim=dim, dim_size=G, reduce=reduce)
            torch.testing.assert_close(got, expected, msg=f"backend {name}")
            if bool((idx[1:] >= idx[:-1]).all()) if E > 1 else True:
                seg = ops.segment(src, ops.index_to_ptr(idx, G), reduce=reduce, dim=dim)
                torch.testing.assert_close(seg, expected, msg=f"segment, backend {name}")


@pytest.mark.parametrize("reduce", REDUCES)
def test_drop_in_for_pyg_scatter(backend, reduce):
    gen = torch.Generator().manual_seed(1)
    src = torch.randn(300, 7, generator=gen)
    index = torch.randint(0, 50, (300,), generator=gen)
    torch.testing.assert_close(ops.scatter(src, index, 0, 60, reduce), pyg_scatter(src, index, 0, 60, reduce))
    torch.testing.assert_close(ops.scatter(src.T, index, 1, None, reduce), pyg_scatter(src.T, index, 1, None, reduce))
    torch.testing.assert_close(ops.scatter(src, index, reduce="add"), pyg_scatter(src, index, reduce="add"))


@pytest.mark.parametrize("sorted_index", [False, True])
@pytest.mark.parametrize("reduce", ["min", "max"])
def test_arg_ties_go_to_lowest_row(backend, reduce, sorted_index):
    gen = torch.Generator().manual_seed(2)
    src = torch.randint(0, 3, (200, 5), generator=gen).float()  # many ties
    index = torch.randint(0, 20, (200,), generator=gen)
    if sorted_index:
        index = index.sort().values
    values, arg = ops.scatter_arg(src, index, dim_size=23, reduce=reduce)
    torch.testing.assert_close(arg, dense_arg_reference(src, index, 23, reduce), rtol=0, atol=0)
    assert bool((arg[20:] == -1).all()) and bool((values[20:] == 0).all())
    if sorted_index:
        seg_values, seg_arg = ops.segment_arg(src, ops.index_to_ptr(index, 23), reduce=reduce)
        assert torch.equal(seg_arg, arg) and torch.equal(seg_values, values)


@pytest.mark.parametrize("reduce", ["min", "max"])
def test_nan_propagates_like_torch(backend, reduce):
    src = torch.tensor([[1.0], [float("nan")], [3.0], [2.0]])
    index = torch.tensor([0, 0, 1, 1])
    values, arg = ops.scatter_arg(src, index, dim_size=2, reduce=reduce)
    assert torch.isnan(values[0, 0]) and arg[0, 0] == 1
    assert values[1, 0] == (3.0 if reduce == "max" else 2.0)


def test_backends_agree_on_large_parallel_inputs():
    if len(BACKENDS) < 2:
        pytest.skip("extension not built")
    gen = torch.Generator().manual_seed(3)
    E, G, F = 200_000, 5_000, 8
    src = torch.randn(E, F, generator=gen)
    index = torch.randint(0, G, (E,), generator=gen)
    sorted_index = index.sort().values
    for idx in (index, sorted_index):
        for reduce in REDUCES:
            with ops.use_backend("cpp"):
                a = ops.scatter(src, idx, 0, G, reduce)
            with ops.use_backend("torch"):
                b = ops.scatter(src, idx, 0, G, reduce)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        with ops.use_backend("cpp"):
            va, aa = ops.scatter_arg(src, idx, 0, G, "max")
        with ops.use_backend("torch"):
            vb, ab = ops.scatter_arg(src, idx, 0, G, "max")
        assert torch.equal(aa, ab) and torch.equal(va, vb)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reduce", REDUCES)
def test_half_precision_accumulates_in_float(backend, dtype, reduce):
    gen = torch.Generator().manual_seed(4)
    src = torch.randn(500, 4, generator=gen)
    index = torch.randint(0, 7, (500,), generator=gen)
    got = ops.scatter(src.to(dtype), index, 0, 7, reduce)
    expected = dense_reference(src.to(dtype).float(), index, 0, 7, reduce).to(dtype)
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("op", ["scatter", "segment"])
def test_gradcheck_float64(backend, reduce, op):
    gen = torch.Generator().manual_seed(5)
    src = torch.randn(12, 3, generator=gen, dtype=torch.float64)  # distinct values: max is smooth
    index = torch.tensor([0, 0, 1, 3, 3, 3, 4, 4, 4, 4, 5, 5])
    if op == "scatter":
        perm = torch.randperm(12, generator=gen)
        fn = lambda x: ops.scatter(x, index[perm], 0, 7, reduce)  # noqa: E731
    else:
        ptr = ops.index_to_ptr(index, 7)
        fn = lambda x: ops.segment(x, ptr, reduce)  # noqa: E731
    assert_gradcheck(fn, src, gradgrad=True)


@pytest.mark.parametrize("reduce", ["min", "max"])
def test_min_max_gradient_goes_to_single_winning_row(backend, reduce):
    src = torch.tensor([[2.0], [2.0], [1.0]], requires_grad=True)  # rows 0 and 1 tie for max
    src_min = torch.tensor([[1.0], [3.0], [1.0]], requires_grad=True)  # rows 0 and 2 tie for min
    x = src if reduce == "max" else src_min
    out = ops.scatter(x, torch.tensor([0, 0, 0]), 0, 1, reduce)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.flatten().tolist() == [1.0, 0.0, 0.0]
    # torch splits the gradient evenly among ties; we document the difference
    torch_out = x.amax(0) if reduce == "max" else x.amin(0)
    (torch_grad,) = torch.autograd.grad(torch_out.sum(), x)
    assert torch_grad.flatten().tolist() != grad.flatten().tolist()


@pytest.mark.parametrize("reduce", REDUCES)
def test_compiles_fullgraph_without_breaks(backend, reduce):
    gen = torch.Generator().manual_seed(6)
    src = torch.randn(40, 4, generator=gen)
    index = torch.randint(0, 6, (40,), generator=gen)
    ptr = ops.index_to_ptr(index.sort().values, 6)

    def fn(x, idx, p):
        return ops.scatter(x, idx, 0, 6, reduce) + ops.segment(x, p, reduce)

    assert_compiles(fn, src, index, ptr)


def test_compiled_backward_matches_eager(backend):
    src = torch.randn(30, 5, requires_grad=True)
    index = torch.randint(0, 4, (30,))

    def loss(x):
        return (ops.scatter(x, index, 0, 4, "max") ** 2).sum() + ops.scatter(x, index, 0, 4, "mean").sum()

    (g_eager,) = torch.autograd.grad(loss(src), src)
    (g_comp,) = torch.autograd.grad(torch.compile(loss, fullgraph=True)(src), src)
    torch.testing.assert_close(g_comp, g_eager)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_instruction_sets_give_identical_results(dtype, assert_same_on_every_cpu_isa):
    """The C++ kernels exist as a baseline-x86-64 and an AVX2 copy of one source
    (picked at run time); both must give bit-identical values, winners and
    gradients, sorted and unsorted, for every reduction."""
    gen = torch.Generator().manual_seed(11)
    E, G, F = 30_000, 2_000, 19  # odd F: vector body plus scalar tail
    src = torch.randn(E, F, generator=gen, dtype=dtype)
    src[::97, 3] = float("nan")
    src[1::5] = src[::5][: src[1::5].size(0)]  # ties
    index = torch.randint(0, G, (E,), generator=gen)

    def run_all():
        results = []
        for idx in (index, index.sort().values):
            ptr = ops.index_to_ptr(idx.sort().values, G)
            for reduce in REDUCES:
                leaf = src.clone().requires_grad_(True)
                out = ops.scatter(leaf, idx, 0, G, reduce)
                results += [out, torch.autograd.grad(out.nan_to_num().sum(), leaf)[0]]
                results.append(ops.segment(src, ptr, reduce))
            results += list(ops.scatter_arg(src, idx, 0, G, "max")) + list(ops.segment_arg(src, ptr, "min"))
        return results

    assert_same_on_every_cpu_isa(run_all)


def test_cpu_instruction_set_choice_is_checked():
    if "cpu" not in ops.cpp_devices():
        pytest.skip("extension not built")
    import subprocess
    import sys

    from graphequi.ops import _backend

    with pytest.raises(ValueError, match="'auto', 'avx2' or 'baseline'"):
        _backend.set_cpu_isa("sse9")
    # GRAPHEQUI_CPU_ISA is read once, in a fresh process; a bad value fails the kernel calls
    code = ("import torch, graphequi.ops as o\n"
            "try:\n    o.scatter(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), 0, 2)\n"
            "except ValueError as e:\n    print('ValueError', e)\n")
    env = dict(os.environ, GRAPHEQUI_CPU_ISA="sse9", GRAPHEQUI_BACKEND="cpp")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "ValueError" in out.stdout and "GRAPHEQUI_CPU_ISA" in out.stdout

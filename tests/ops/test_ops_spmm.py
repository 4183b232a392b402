"""graphequi.ops.spmm (fused CSR gather-reduce) against brute-force references."""
import os
import subprocess
import sys

import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.utils import scatter as pyg_scatter

import graphequi.ops as ops
from graphequi.ops import _backend
from graphequi.testing import assert_compiles, assert_compiles_once, assert_gradcheck

HAS_CPP = "cpu" in ops.cpp_devices()
BACKENDS = ["cpp", "torch"] if HAS_CPP else ["torch"]
NAMESPACES = (["graphequi"] if HAS_CPP else []) + ["graphequi_torch"]
REDUCES = ["sum", "mean", "min", "max"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with ops.use_backend(request.param):
        yield request.param


def random_csr(num_dst, num_src, max_degree, gen, empty_every=4):
    """CSR with empty rows (every `empty_every`-th) and duplicate columns."""
    degrees = torch.randint(0, max_degree + 1, (num_dst,), generator=gen)
    degrees[::empty_every] = 0
    ptr = torch.zeros(num_dst + 1, dtype=torch.long)
    ptr[1:] = degrees.cumsum(0)
    col = torch.randint(0, num_src, (int(ptr[-1]),), generator=gen)
    if col.numel() > 3:
        col[1] = col[0]  # a duplicate column inside one row (or across two)
    return ptr, col


def loop_reference(ptr, col, x, value, reduce):
    """Explicit Python loops in float64: out[i] = reduce_k value[k] * x[col[k]]."""
    xf = x.double().reshape(x.size(0), -1)
    out = torch.zeros(ptr.numel() - 1, xf.size(1), dtype=torch.float64)
    for i in range(ptr.numel() - 1):
        lo, hi = int(ptr[i]), int(ptr[i + 1])
        if hi == lo:
            continue
        rows = torch.stack([(1.0 if value is None else float(value[k])) * xf[int(col[k])] for k in range(lo, hi)])
        out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "min": rows.amin(0), "max": rows.amax(0)}[reduce]
    return out.reshape((ptr.numel() - 1,) + x.shape[1:])


def dense_adjacency(ptr, col, value, num_src):
    A = torch.zeros(ptr.numel() - 1, num_src, dtype=torch.float64)
    for i in range(ptr.numel() - 1):
        for k in range(int(ptr[i]), int(ptr[i + 1])):
            A[i, int(col[k])] += 1.0 if value is None else float(value[k])
    return A


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduce", REDUCES)
def test_matches_loop_reference(backend, reduce, weighted, dtype):
    gen = torch.Generator().manual_seed(0)
    ptr, col = random_csr(23, 17, 6, gen)
    x = torch.randn(17, 2, 3, generator=gen).to(dtype)  # trailing feature dims
    value = torch.randn(col.numel(), generator=gen).to(dtype) if weighted else None
    got = ops.spmm(ptr, col, x, value, reduce)
    assert got.shape == (23, 2, 3) and got.dtype == dtype
    expected = loop_reference(ptr, col, x, value, reduce)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)
    assert bool((got[::4] == 0).all())  # empty rows give 0


@pytest.mark.parametrize("weighted", [False, True])
def test_sum_is_dense_adjacency_matmul(backend, weighted):
    gen = torch.Generator().manual_seed(1)
    ptr, col = random_csr(30, 12, 5, gen)
    x = torch.randn(12, 7, generator=gen, dtype=torch.float64)
    value = torch.randn(col.numel(), generator=gen, dtype=torch.float64) if weighted else None
    A = dense_adjacency(ptr, col, value, 12)
    torch.testing.assert_close(ops.spmm(ptr, col, x, value), A @ x)
    degree = (ptr[1:] - ptr[:-1]).clamp(min=1).double().unsqueeze(1)
    torch.testing.assert_close(ops.spmm(ptr, col, x, value, "mean"), (A @ x) / degree)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64])
def test_backends_agree(dtype):
    if not HAS_CPP:
        pytest.skip("extension not built")
    gen = torch.Generator().manual_seed(2)
    ptr, col = random_csr(400, 300, 40, gen)
    x = (torch.randn(300, 9, generator=gen) * 4).to(dtype)
    x[1::7] = x[::7][: x[1::7].size(0)]  # ties for min/max
    value = (torch.randn(col.numel(), generator=gen) * 2).to(dtype)
    for weights in (None, value):
        for reduce in REDUCES if dtype.is_floating_point else ["sum", "min", "max"]:
            with ops.use_backend("cpp"):
                a = ops.spmm(ptr, col, x, weights, reduce)
            with ops.use_backend("torch"):
                b = ops.spmm(ptr, col, x, weights, reduce)
            if reduce in ("min", "max"):
                assert torch.equal(a, b)  # the same products, compared: bit-identical
                va, arg_a = torch.ops.graphequi.spmm_arg(ptr, col, x, weights, reduce, True)
                vb, arg_b = torch.ops.graphequi_torch.spmm_arg(ptr, col, x, weights, reduce, True)
                assert torch.equal(va, vb) and torch.equal(arg_a, arg_b)
            else:
                tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
                torch.testing.assert_close(a.double(), b.double(), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduce", ["min", "max"])
def test_arg_ties_go_to_lowest_edge_and_gradient_to_it(backend, reduce):
    ptr = torch.tensor([0, 3, 3, 5])
    col = torch.tensor([0, 1, 0, 2, 2])  # row 0: edges 0 and 2 both read x[0]
    x = torch.tensor([[1.0], [1.0], [5.0]], requires_grad=True)
    values, arg = torch.ops.graphequi_torch.spmm_arg(ptr, col, x.detach(), None, reduce, True) \
        if backend == "torch" else torch.ops.graphequi.spmm_arg(ptr, col, x.detach(), None, reduce, True)
    assert arg.flatten().tolist() == [0, -1, 3]
    assert values.flatten().tolist() == [1.0, 0.0, 5.0]
    out = ops.spmm(ptr, col, x, reduce=reduce)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.flatten().tolist() == [1.0, 0.0, 1.0]  # one winner per output entry


@pytest.mark.parametrize("reduce", ["min", "max", "sum"])
def test_nan_propagates_like_scatter(backend, reduce):
    ptr, col = torch.tensor([0, 2, 4]), torch.tensor([0, 1, 2, 3])
    x = torch.tensor([[1.0], [float("nan")], [3.0], [2.0]])
    out = ops.spmm(ptr, col, x, reduce=reduce)
    expected = ops.scatter(x, torch.tensor([0, 0, 1, 1]), 0, 2, reduce)
    assert torch.isnan(out[0, 0]) and torch.equal(out[1], expected[1])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduce", REDUCES)
def test_gradcheck_x_and_value(backend, reduce, weighted):
    gen = torch.Generator().manual_seed(3)
    ptr, col = random_csr(9, 7, 4, gen)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)  # distinct products: max is smooth
    if weighted:
        value = torch.rand(col.numel(), generator=gen, dtype=torch.float64) + 0.5
        assert_gradcheck(lambda a, v: ops.spmm(ptr, col, a, v, reduce), x, value)
    else:
        assert_gradcheck(lambda a: ops.spmm(ptr, col, a, None, reduce), x)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_precomputed_transpose_gives_the_same_gradient(backend, reduce):
    gen = torch.Generator().manual_seed(4)
    ptr, col = random_csr(50, 40, 6, gen)
    x = torch.randn(40, 5, generator=gen, requires_grad=True)
    value = torch.randn(col.numel(), generator=gen)
    grad_out = torch.randn(50, 5, generator=gen)
    csc = ops.to_csr(torch.sparse_csr_tensor(ptr, col, value, (50, 40))).csc
    (without,) = torch.autograd.grad(ops.spmm(ptr, col, x, value, reduce), x, grad_out)
    (with_csc,) = torch.autograd.grad(ops.spmm(ptr, col, x, value, reduce, csc=csc), x, grad_out)
    assert torch.equal(without, with_csc)
    dense = dense_adjacency(ptr, col, value, 40)
    if reduce == "mean":
        dense = dense / (ptr[1:] - ptr[:-1]).clamp(min=1).double().unsqueeze(1)
    torch.testing.assert_close(with_csc.double(), dense.T @ grad_out.double(), rtol=1e-5, atol=1e-5)


def test_csr_transpose_is_the_stable_csc():
    gen = torch.Generator().manual_seed(5)
    ptr, col = random_csr(30, 20, 6, gen)
    rows = torch.repeat_interleave(torch.arange(30), ptr.diff())
    perm = torch.tensor(sorted(range(col.numel()), key=lambda k: (int(col[k]), k)))
    for ns in NAMESPACES:
        colptr, row, got_perm = getattr(torch.ops, ns).csr_transpose(ptr, col, 20, True)
        assert torch.equal(got_perm, perm), ns
        assert torch.equal(row, rows[perm]) and torch.equal(colptr, ops.index_to_ptr(col[perm], 20))
        assert colptr.dtype == row.dtype == col.dtype and got_perm.dtype == torch.int64


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck_spmm_ops(ns):
    gen = torch.Generator().manual_seed(6)
    ptr, col = random_csr(8, 6, 4, gen)
    op = getattr(torch.ops, ns)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    value = torch.randn(col.numel(), generator=gen, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    csc = op.csr_transpose(ptr, col, 6, True)
    for reduce in REDUCES:
        torch.library.opcheck(op.spmm.default, (ptr, col, x, value, None, None, None, reduce, True))
    torch.library.opcheck(op.spmm.default, (ptr, col, x, None, *csc, "mean", False))
    for reduce in ("min", "max"):
        torch.library.opcheck(op.spmm_arg.default, (ptr, col, x, value, reduce, True))
    torch.library.opcheck(op.spmm_value_grad.default, (ptr, col, grad, x.detach(), "mean", True))
    torch.library.opcheck(op.csr_transpose.default, (ptr, col, 6, True))


@pytest.mark.parametrize("reduce", REDUCES)
def test_compiles_fullgraph_on_trusted_path(backend, reduce):
    gen = torch.Generator().manual_seed(7)
    ptr, col = random_csr(20, 15, 5, gen)
    csr = ops.to_csr(torch.sparse_csr_tensor(ptr, col, torch.rand(col.numel(), generator=gen), (20, 15)))
    x = torch.randn(15, 4, generator=gen)

    def fn(a, p, c, v, csc):
        return ops.spmm(p, c, a, v, reduce, csc=csc, validate=False).relu() + ops.spmm(p, c, a, None, reduce,
                                                                                        validate=False)

    assert_compiles(fn, x, csr.ptr, csr.col, csr.value, csr.csc)


@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_csr_from_edge_index_compiles_once_for_every_size(backend, reduce):
    # the node count stays symbolic from edge_index to the transpose the backward uses
    def fn(x, edge_index, edge_weight):
        csr = ops.to_csr(edge_index, x.size(0), value=edge_weight, validate=False)
        return csr.spmm(x, reduce)

    inputs = []
    for n, e in ((9, 20), (13, 31), (6, 11)):
        gen = torch.Generator().manual_seed(n)
        inputs.append((torch.randn(n, 3, generator=gen), torch.randint(0, n, (2, e), generator=gen),
                       torch.rand(e, generator=gen)))
    assert_compiles_once(fn, inputs)


def test_csr_from_edge_index_is_the_stable_target_sort():
    gen = torch.Generator().manual_seed(3)
    edge_index = torch.randint(0, 7, (2, 40), generator=gen)
    value = torch.rand(40, generator=gen)
    csr = ops.to_csr(edge_index, 7, value=value)
    order = torch.sort(edge_index[1], stable=True).indices
    assert torch.equal(csr.ptr, torch.searchsorted(edge_index[1][order], torch.arange(8)))
    assert torch.equal(csr.col, edge_index[0][order])
    assert torch.equal(csr.value, value[order])
    colptr, row, perm = csr.csc
    assert torch.equal(row, torch.repeat_interleave(torch.arange(7), csr.ptr.diff())[perm])
    assert torch.equal(csr.col[perm], torch.sort(csr.col, stable=True).values)
    assert torch.equal(colptr, torch.searchsorted(csr.col[perm], torch.arange(8)))


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_compiled_backward_matches_eager(backend, reduce):
    gen = torch.Generator().manual_seed(8)
    ptr, col = random_csr(20, 15, 5, gen)
    x = torch.randn(15, 4, generator=gen, requires_grad=True)
    value = torch.randn(col.numel(), generator=gen, requires_grad=True)

    def loss(a, v):
        return (ops.spmm(ptr, col, a, v, reduce, validate=False) ** 2).sum()

    eager = torch.autograd.grad(loss(x, value), (x, value))
    compiled = torch.autograd.grad(torch.compile(loss, fullgraph=True)(x, value), (x, value))
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b)


def test_trusted_path_skips_the_value_checks(backend, monkeypatch):
    x = torch.randn(3, 2)
    col = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="x must have at least one dimension"):
        ops.spmm(torch.tensor([0, 0]), col[:0], torch.tensor(1.0), validate=False)  # shape checks still run
    if backend == "cpp":
        shifted = torch.tensor([1, 2, 3])  # ptr[0] != 0, but every access stays in bounds
        with pytest.raises(ValueError, match="ptr must start at 0"):
            ops.spmm(shifted, col, x)
        torch.testing.assert_close(ops.spmm(shifted, col, x, validate=False), x[1:])
    else:
        from graphequi.ops import _registry

        def refuse(*args, **kwargs):
            raise AssertionError("value check ran")

        monkeypatch.setattr(_registry, "_check_ptr", refuse)
        monkeypatch.setattr(_registry, "_check_index_range", refuse)
        ptr = torch.tensor([0, 1, 3])
        torch.testing.assert_close(ops.spmm(ptr, col, x, validate=False), torch.stack([x[0], x[1] + x[2]]))
        with pytest.raises(AssertionError, match="value check ran"):
            ops.spmm(ptr, col, x)


def test_bad_inputs_raise_like_scatter(backend):
    x = torch.randn(4, 3)
    ptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 3, 1])
    with pytest.raises(IndexError, match="col contains 4, out of range"):
        ops.spmm(ptr, torch.tensor([0, 4, 1]), x)
    with pytest.raises(IndexError, match="col contains a negative entry"):
        ops.spmm(ptr, torch.tensor([0, -1, 1]), x, reduce="max")
    with pytest.raises(ValueError, match="ptr must start at 0"):
        ops.spmm(torch.tensor([1, 2, 3]), col, x)
    with pytest.raises(ValueError, match="non-decreasing"):
        ops.spmm(torch.tensor([0, 3, 2, 3]), col, x)
    with pytest.raises(ValueError, match=r"ptr\[-1\] must equal col.numel\(\) = 3"):
        ops.spmm(torch.tensor([0, 2, 2]), col, x)
    with pytest.raises(ValueError, match="ptr must have at least one entry"):
        ops.spmm(ptr[:0], col, x)
    with pytest.raises(TypeError, match="col must be an int64 or int32"):
        ops.spmm(ptr, col.float(), x)
    with pytest.raises(TypeError, match="ptr and col must have the same dtype"):
        ops.spmm(ptr.int(), col, x)
    with pytest.raises(ValueError, match="col must be one-dimensional"):
        ops.spmm(ptr, col.view(3, 1), x)
    with pytest.raises(TypeError, match="mean.*floating-point x"):
        ops.spmm(ptr, col, x.long(), reduce="mean")
    with pytest.raises(TypeError, match="x must be a real"):
        ops.spmm(ptr, col, x.bool())
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ops.spmm(ptr, col, [[1.0]])
    with pytest.raises(ValueError, match=r"value must be \[E\] = \[3\] or \[E, F...\] = \[3, 3\]"):
        ops.spmm(ptr, col, x, torch.ones(4))
    with pytest.raises(ValueError, match=r"value must be \[E\] = \[3\] or \[E, F...\]"):
        ops.spmm(ptr, col, x, torch.ones(3, 2))
    with pytest.raises(TypeError, match="value must have the dtype of x"):
        ops.spmm(ptr, col, x, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduce must be one of"):
        ops.spmm(ptr, col, x, reduce="prod")
    with pytest.raises(ValueError, match="csc colptr must have"):
        ops.spmm(ptr, col, x, csc=(torch.zeros(3, dtype=torch.long), col, col))
    with pytest.raises(TypeError, match="csc must be a tuple"):
        ops.spmm(ptr, col, x, csc=(col, col))


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpp_ops_called_directly_raise_instead_of_crashing():
    x = torch.randn(4, 3)
    ptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 3, 1])
    with pytest.raises(ValueError, match="2-D"):
        torch.ops.graphequi.spmm(ptr, col, x[0], None, None, None, None, "sum", True)
    with pytest.raises(IndexError, match="out of range"):
        torch.ops.graphequi.spmm_arg(ptr, torch.tensor([0, 9, 1]), x, None, "max", True)
    with pytest.raises(ValueError, match="reduce must be 'min' or 'max'"):
        torch.ops.graphequi.spmm_arg(ptr, col, x, None, "sum", True)
    with pytest.raises(IndexError, match="out of range for num_cols"):
        torch.ops.graphequi.csr_transpose(ptr, col, 2, False)  # always checked: it writes through col


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("kind", ["tensor", "unsorted", "row_sorted", "col_sorted"])
def test_edge_index_follows_pyg_message_direction(backend, kind, reduce):
    gen = torch.Generator().manual_seed(9)
    N, E = 40, 300
    edge_index = torch.randint(0, N, (2, E), generator=gen)
    edge_index[:, :5] = edge_index[:, 5:10]  # duplicate edges
    x = torch.randn(N, 2, 3, generator=gen)
    weight = torch.rand(E, generator=gen)
    adj = edge_index
    if kind != "tensor":
        adj = EdgeIndex(edge_index, sparse_size=(N, N))
        if kind != "unsorted":
            adj, perm = adj.sort_by(kind.split("_")[0])
            edge_index, weight = edge_index[:, perm], weight[perm]
    csr = ops.to_csr(adj, num_nodes=N, value=weight)
    assert csr.ptr.numel() == N + 1
    expected = pyg_scatter(x[edge_index[0]] * weight.view(-1, 1, 1), edge_index[1], 0, N, reduce)
    torch.testing.assert_close(csr.spmm(x, reduce), expected)
    # the cached transpose drives the backward: compare with the gather + scatter gradient
    leaf = x.clone().requires_grad_(True)
    grad_out = torch.randn(N, 2, 3, generator=gen)
    (got,) = torch.autograd.grad(csr.spmm(leaf, reduce), leaf, grad_out)
    (ref,) = torch.autograd.grad(
        ops.scatter(leaf[edge_index[0]] * weight.view(-1, 1, 1), edge_index[1], 0, N, reduce), leaf, grad_out)
    torch.testing.assert_close(got, ref)


def test_edge_index_is_not_resorted_when_sorted():
    edge_index = EdgeIndex(torch.tensor([[2, 0, 1, 2], [0, 1, 1, 2]]), sparse_size=(3, 3), sort_order="col")
    csr = ops.to_csr(edge_index)
    # sorted by target already: the CSR is edge_index itself
    assert csr.col.data_ptr() == edge_index.as_tensor()[0].data_ptr()
    assert csr.ptr.tolist() == [0, 1, 3, 4] and csr.csc[2].tolist() == [1, 2, 0, 3]


def test_sparse_csr_tensor_is_a_times_x(backend):
    gen = torch.Generator().manual_seed(10)
    ptr, col = random_csr(25, 18, 5, gen)
    value = torch.randn(col.numel(), generator=gen)
    A = torch.sparse_csr_tensor(ptr, col, value, (25, 18))
    x = torch.randn(18, 6, generator=gen)
    csr = ops.to_csr(A)
    torch.testing.assert_close(csr.spmm(x), A.to_dense() @ x)
    rows = torch.repeat_interleave(torch.arange(25), ptr.diff())
    for reduce in REDUCES:
        torch.testing.assert_close(csr.spmm(x, reduce), pyg_scatter(x[col] * value.view(-1, 1), rows, 0, 25, reduce))


def test_torch_sparse_tensor():
    torch_sparse = pytest.importorskip("torch_sparse")
    gen = torch.Generator().manual_seed(11)
    ptr, col = random_csr(25, 18, 5, gen)
    value = torch.randn(col.numel(), generator=gen)
    adj = torch_sparse.SparseTensor(rowptr=ptr, col=col, value=value, sparse_sizes=(25, 18))
    x = torch.randn(18, 6, generator=gen, requires_grad=True)
    csr = ops.to_csr(adj)
    out = csr.spmm(x)
    torch.testing.assert_close(out, adj.to_dense() @ x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, adj.to_dense().T @ torch.ones(25, 6))


def test_to_csr_rejects_what_it_cannot_read():
    with pytest.raises(TypeError, match="adj must be"):
        ops.to_csr([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        ops.to_csr(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index must be an int64 or int32"):
        ops.to_csr(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="disagrees"):
        ops.to_csr(EdgeIndex(torch.tensor([[0, 1], [1, 0]]), sparse_size=(2, 2)), num_nodes=5)


def test_empty_matrix(backend):
    for reduce in REDUCES:
        out = ops.spmm(torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.randn(2, 3),
                       reduce=reduce)
        assert torch.equal(out, torch.zeros(3, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_instruction_sets_give_identical_spmm(dtype, assert_same_on_every_cpu_isa):
    """Baseline and AVX2 copies of the spmm kernels: bit-identical values,
    winners and gradients (x and value)."""
    gen = torch.Generator().manual_seed(12)
    ptr, col = random_csr(3_000, 2_000, 20, gen)
    x = torch.randn(2_000, 19, generator=gen, dtype=dtype)  # odd F: vector body plus scalar tail
    x[::97, 3] = float("nan")
    x[1::5] = x[::5][: x[1::5].size(0)]  # ties
    value = torch.randn(col.numel(), generator=gen, dtype=dtype)

    def run_all():
        results = []
        for weights in (None, value):
            for reduce in REDUCES:
                leaf = x.clone().requires_grad_(True)
                w = None if weights is None else weights.clone().requires_grad_(True)
                out = ops.spmm(ptr, col, leaf, w, reduce)
                inputs = (leaf,) if w is None else (leaf, w)
                results += [out, *torch.autograd.grad(out.nan_to_num().sum(), inputs)]
                if reduce in ("min", "max"):
                    results += list(torch.ops.graphequi.spmm_arg(ptr, col, x, weights, reduce, True))
        return results

    assert_same_on_every_cpu_isa(run_all)


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpu_isa_choice_is_cached_and_checked():
    with pytest.raises(ValueError, match="'auto', 'avx2' or 'baseline'"):
        _backend.set_cpu_isa("sse9")
    previous = _backend.set_cpu_isa("baseline")
    try:
        assert _backend.cpu_isa() == "baseline"
    finally:
        _backend.set_cpu_isa(previous)
    # the environment variable is read once; an invalid value fails every kernel call
    code = ("import torch, graphequi.ops as o\n"
            "try:\n    o.spmm(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1, 2))\n"
            "except ValueError as e:\n    print('ValueError', e)\n")
    env = dict(os.environ, GRAPHEQUI_CPU_ISA="sse9", GRAPHEQUI_BACKEND="cpp")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "ValueError" in out.stdout and "GRAPHEQUI_CPU_ISA" in out.stdout


def test_to_csr_checks_edge_index_before_sorting_it():
    # an out-of-range edge_index would make the sort write out of bounds
    for bad, match in (([[0, 1], [1, 1001]], "node 1001, out of range for 3 nodes"),
                       ([[0, -1], [1, 0]], "negative")):
        with pytest.raises(IndexError, match=match):
            ops.to_csr(torch.tensor(bad), num_nodes=3)
    with pytest.raises(IndexError, match="out of range"):
        ops.to_csr(EdgeIndex(torch.tensor([[0, 1], [1, 7]]), sparse_size=(3, 3)))


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("weighted", [False, True])
def test_min_max_backward_kernel_matches_its_torch_formulation_and_a_loop(reduce, weighted):
    gen = torch.Generator().manual_seed(21)
    G, N, E, F = 7, 9, 40, 5
    ptr = ops.index_to_ptr(torch.randint(0, G, (E,), generator=gen).sort().values, G)
    col = torch.randint(0, N, (E,), generator=gen)
    x = torch.randn(N, F, generator=gen, dtype=torch.float64)
    value = torch.rand(E, generator=gen, dtype=torch.float64) + 0.5 if weighted else None
    grad = torch.randn(G, F, generator=gen, dtype=torch.float64)
    _, arg = torch.ops.graphequi.spmm_arg(ptr, col, x, value, reduce, True)
    csc = torch.ops.graphequi.csr_transpose(ptr, col, N, True)
    got = torch.ops.graphequi.spmm_arg_grad(*csc, arg, grad, value)
    expected = torch.zeros(N, F, dtype=torch.float64)
    for i in range(G):
        for f in range(F):
            k = int(arg[i, f])
            if k >= 0:
                expected[col[k], f] += grad[i, f] * (value[k] if weighted else 1.0)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(torch.ops.graphequi_torch.spmm_arg_grad(*csc, arg, grad, value), got)
    with pytest.raises(IndexError, match="csc row"):
        torch.ops.graphequi.spmm_arg_grad(csc[0], csc[1] + G, csc[2], arg, grad, value)


# --- a value per edge and feature (value [E, F...]) -------------------------------

def feature_loop_reference(ptr, col, x, value, reduce):
    """Python loops in float64: out[i] = sum_k value[k] * x[col[k]] elementwise (mean: / degree)."""
    xf, vf = x.double().reshape(x.size(0), -1), value.double().reshape(value.size(0), -1)
    out = torch.zeros(ptr.numel() - 1, xf.size(1), dtype=torch.float64)
    for i in range(ptr.numel() - 1):
        lo, hi = int(ptr[i]), int(ptr[i + 1])
        for k in range(lo, hi):
            out[i] += vf[k] * xf[int(col[k])]
        if reduce == "mean" and hi > lo:
            out[i] /= hi - lo
    return out.reshape((ptr.numel() - 1,) + x.shape[1:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_feature_values_match_loop_reference(backend, reduce, dtype):
    gen = torch.Generator().manual_seed(20)
    ptr, col = random_csr(23, 17, 6, gen)
    x = torch.randn(17, 2, 3, generator=gen).to(dtype)
    value = torch.randn(col.numel(), 2, 3, generator=gen).to(dtype)
    got = ops.spmm(ptr, col, x, value, reduce)
    assert got.shape == (23, 2, 3) and got.dtype == dtype
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got.double(), feature_loop_reference(ptr, col, x, value, reduce), rtol=tol, atol=tol)
    assert bool((got[::4] == 0).all())


def test_feature_values_equal_the_scalar_path_when_constant_across_features(backend):
    gen = torch.Generator().manual_seed(21)
    ptr, col = random_csr(30, 20, 5, gen)
    x = torch.randn(20, 8, generator=gen, dtype=torch.float64)
    value = torch.randn(col.numel(), generator=gen, dtype=torch.float64)
    for reduce in ("sum", "mean"):
        torch.testing.assert_close(ops.spmm(ptr, col, x, value.unsqueeze(1).expand(-1, 8), reduce),
                                   ops.spmm(ptr, col, x, value, reduce))


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_feature_values_gradcheck_and_edge_index_order(backend, reduce):
    gen = torch.Generator().manual_seed(22)
    num_nodes = 6
    edge_index = torch.randint(0, num_nodes, (2, 15), generator=gen)
    x = torch.randn(num_nodes, 3, generator=gen, dtype=torch.float64)
    value = torch.randn(15, 3, generator=gen, dtype=torch.float64)
    assert_gradcheck(lambda a, v: ops.to_csr(edge_index, num_nodes, value=v).spmm(a, reduce), x, value)
    # edge_index order: value rows follow their edges through the CSR sort
    ref = pyg_scatter(value * x[edge_index[0]], edge_index[1], 0, num_nodes, reduce)
    torch.testing.assert_close(ops.to_csr(edge_index, num_nodes, value=value).spmm(x, reduce), ref)
    perm = torch.randperm(15, generator=gen)
    torch.testing.assert_close(ops.to_csr(edge_index[:, perm], num_nodes, value=value[perm]).spmm(x, reduce), ref)


def test_feature_values_precomputed_transpose_and_backends_agree():
    gen = torch.Generator().manual_seed(23)
    ptr, col = random_csr(300, 200, 12, gen)
    x = torch.randn(200, 9, generator=gen)
    value = torch.randn(col.numel(), 9, generator=gen)
    grad = torch.randn(300, 9, generator=gen)
    results = {}
    for name in BACKENDS:
        with ops.use_backend(name):
            for reduce in ("sum", "mean"):
                for csc in (None, torch.ops.graphequi_torch.csr_transpose(ptr, col, 200, True)):
                    a, v = x.clone().requires_grad_(), value.clone().requires_grad_()
                    out = ops.spmm(ptr, col, a, v, reduce, csc=csc)
                    results.setdefault(reduce, []).append((out, *torch.autograd.grad(out, (a, v), grad)))
    for runs in results.values():
        for other in runs[1:]:
            for a, b in zip(runs[0], other):
                torch.testing.assert_close(a, b)


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck_spmm_feature_ops(ns):
    gen = torch.Generator().manual_seed(24)
    ptr, col = random_csr(8, 6, 4, gen)
    op = getattr(torch.ops, ns)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    value = torch.randn(col.numel(), 3, generator=gen, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    csc = op.csr_transpose(ptr, col, 6, True)
    perm = torch.randperm(col.numel(), generator=gen)
    for reduce in ("sum", "mean"):
        torch.library.opcheck(op.spmm_feature.default, (ptr, col, x, value, None, None, None, None, reduce, True))
        torch.library.opcheck(op.spmm_feature.default, (ptr, col, x, value, None, *csc, reduce, False))
        torch.library.opcheck(op.spmm_feature.default, (ptr, col, x, value, perm, None, None, None, reduce, True))
        torch.library.opcheck(op.spmm_feature_value_grad.default, (ptr, col, grad, x.detach(), reduce, True))


@pytest.mark.parametrize("ns", NAMESPACES)
def test_spmm_feature_value_perm_reads_permuted_rows(ns):
    """value_perm[k] names edge k's value row: the same as reordering value,
    in values and in gradients (which go back to the named rows)."""
    gen = torch.Generator().manual_seed(27)
    ptr, col = random_csr(12, 9, 5, gen)
    op = getattr(torch.ops, ns).spmm_feature.default
    x = torch.randn(9, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    value = torch.randn(col.numel(), 4, generator=gen, dtype=torch.float64, requires_grad=True)
    perm = torch.randperm(col.numel(), generator=gen)
    for reduce in ("sum", "mean"):
        got = op(ptr, col, x, value, perm, None, None, None, reduce, True)
        ref = op(ptr, col, x, value[perm], None, None, None, None, reduce, True)
        torch.testing.assert_close(got, ref)
        g = torch.randn_like(got)
        for a, b in zip(torch.autograd.grad(got, (x, value), g), torch.autograd.grad(ref, (x, value), g)):
            torch.testing.assert_close(a, b)
        assert_gradcheck(lambda a, v: op(ptr, col, a, v, perm, None, None, None, reduce, True), x, value)
    with pytest.raises(IndexError, match="value_perm"):
        op(ptr, col, x, value, perm + col.numel(), None, None, None, "sum", True)


def test_feature_values_compile_fullgraph(backend):
    gen = torch.Generator().manual_seed(25)
    ptr, col = random_csr(20, 15, 5, gen)
    x = torch.randn(15, 4, generator=gen)
    value = torch.randn(col.numel(), 4, generator=gen)

    def fn(a, v):
        return ops.spmm(ptr, col, a, v, "mean", validate=False).relu()

    assert_compiles(fn, x, value)


def test_feature_values_bad_input(backend):
    x = torch.randn(4, 3)
    ptr, col = torch.tensor([0, 2, 3]), torch.tensor([0, 3, 1])
    value = torch.ones(3, 3)
    with pytest.raises(ValueError, match="a value per edge and feature supports reduce 'sum' or 'mean'"):
        ops.spmm(ptr, col, x, value, reduce="max")
    with pytest.raises(TypeError, match="value must have the dtype of x"):
        ops.spmm(ptr, col, x, value.double())
    with pytest.raises(IndexError, match="col contains 4, out of range"):
        ops.spmm(ptr, torch.tensor([0, 4, 1]), x, value)
    with pytest.raises(ValueError, match="ptr must start at 0"):
        ops.spmm(torch.tensor([1, 2, 3]), col, x, value)
    with pytest.raises(TypeError, match="mean.*floating-point x"):
        ops.spmm(ptr, col, x.long(), value.long(), reduce="mean")
    ints = (x * 4).round()
    torch.testing.assert_close(ops.spmm(ptr, col, ints.long(), value.long()),
                               ops.spmm(ptr, col, ints, value).long())  # integers: sum only
    nan = x.clone()
    nan[3, 1] = float("nan")
    out = ops.spmm(ptr, col, nan, value)
    assert torch.isnan(out[0, 1]) and not torch.isnan(out[0, 0]) and not torch.isnan(out[1]).any()
    with pytest.raises(ValueError, match="one entry \\(or row\\) per edge"):
        ops.to_csr(torch.tensor([[0, 1], [1, 0]]), 2, value=torch.ones(3, 2))
    if HAS_CPP:
        with pytest.raises(ValueError, match=r"value must be \[E, F\]"):
            torch.ops.graphequi.spmm_feature(ptr, col, x, torch.ones(3, 2), None, None, None, None, "sum", True)
        with pytest.raises(ValueError, match="spmm_feature takes reduce 'sum' or 'mean'"):
            torch.ops.graphequi.spmm_feature(ptr, col, x, value, None, None, None, None, "max", True)
        with pytest.raises(TypeError, match="value_perm must be int64"):
            torch.ops.graphequi.spmm_feature(ptr, col, x, value, col.int(), None, None, None, "sum", True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_instruction_sets_give_identical_feature_spmm(dtype, assert_same_on_every_cpu_isa):
    gen = torch.Generator().manual_seed(26)
    ptr, col = random_csr(2_000, 1_500, 20, gen)
    x = torch.randn(1_500, 19, generator=gen, dtype=dtype)
    value = torch.randn(col.numel(), 19, generator=gen, dtype=dtype)

    def run_all():
        results = []
        for reduce in ("sum", "mean"):
            a, v = x.clone().requires_grad_(), value.clone().requires_grad_()
            out = ops.spmm(ptr, col, a, v, reduce)
            results += [out, *torch.autograd.grad(out.sum(), (a, v))]
        return results

    assert_same_on_every_cpu_isa(run_all)

"""Op registration: opcheck, schemas, backend selection, bad input."""
import os
import subprocess
import sys

import pytest
import torch

import graphequi.ops as ops
from graphequi.ops import _registry

HAS_CPP = "cpu" in ops.cpp_devices()
NAMESPACES = (["graphequi"] if HAS_CPP else []) + ["graphequi_torch"]


def _samples():
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(2, 9, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 2, 2, 1, 0, 3, 3, 3, 1])
    sorted_index = index.sort().values
    ptr = ops.index_to_ptr(sorted_index, 5)
    grad = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    arg = torch.randint(0, 9, (2, 5, 3), generator=gen)
    return src, index, ptr, grad, arg


@pytest.mark.parametrize("ns", NAMESPACES)
def test_opcheck_every_op(ns):
    src, index, ptr, grad, arg = _samples()
    op = getattr(torch.ops, ns)
    cases = [
        (op.segment.default, (src, ptr, "sum")),
        (op.segment.default, (src, ptr, "mean")),
        (op.segment_arg.default, (src, ptr, "max")),
        (op.segment_arg.default, (src, ptr, "min")),
        (op.scatter.default, (src, index, 5, "sum")),
        (op.scatter.default, (src, index, 5, "mean")),
        (op.scatter_arg.default, (src, index, 5, "max")),
        (op.scatter_arg.default, (src, index, 5, "min")),
        (op.gather_csr.default, (grad, ptr, None, 9, "mean")),
        (op.gather_coo.default, (grad, index, None, "sum")),
    ]
    for fn, args in cases:
        torch.library.opcheck(fn, args)
    # min/max adjoints need a consistent arg: take it from the forward op
    _, seg_arg = op.segment_arg(src.detach(), ptr, "max")
    torch.library.opcheck(op.gather_csr.default, (grad, ptr, seg_arg, 9, "max"))
    _, coo_arg = op.scatter_arg(src.detach(), index, 5, "min")
    torch.library.opcheck(op.gather_coo.default, (grad, index, coo_arg, "min"))


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpp_schemas_equal_python_schemas():
    for name, schema in _registry.SCHEMAS.items():
        cpp = str(getattr(torch.ops.graphequi, name).default._schema)
        py = str(getattr(torch.ops.graphequi_torch, name).default._schema)
        assert cpp.replace("graphequi::", "") == py.replace("graphequi_torch::", "") == schema


def test_backend_env_var_forces_torch():
    code = "import graphequi.ops as o; print(o.backend())"
    env = dict(os.environ, GRAPHEQUI_BACKEND="torch")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"
    env["GRAPHEQUI_BACKEND"] = "bogus"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "GRAPHEQUI_BACKEND" in bad.stderr


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_default_backend_is_cpp_when_built():
    assert ops.backend() == "cpp"


BACKENDS = ["cpp", "torch"] if HAS_CPP else ["torch"]


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_input_raises_named_errors(name):
    src = torch.randn(5, 3)
    idx = torch.tensor([0, 1, 1, 2, 0])
    with ops.use_backend(name):
        with pytest.raises(IndexError, match="out of range"):
            ops.scatter(src, torch.tensor([0, 1, 7, 2, 0]), dim_size=3)
        with pytest.raises(IndexError, match="negative"):
            ops.scatter(src, torch.tensor([0, -1, 1, 2, 0]), dim_size=3)
        with pytest.raises(IndexError, match="negative"):
            ops.scatter(src, torch.tensor([0, -1, 1, 2, 0]), dim_size=3, reduce="max")
        with pytest.raises(ValueError, match="index has 4 entries"):
            ops.scatter(src, idx[:4], dim_size=3)
        with pytest.raises(TypeError, match="index must be an int64 or int32"):
            ops.scatter(src, idx.float(), dim_size=3)
        with pytest.raises(ValueError, match="index must be one-dimensional"):
            ops.scatter(src, idx.view(5, 1), dim_size=3)
        with pytest.raises(IndexError, match="dim=2 is out of range"):
            ops.scatter(src, idx, dim=2, dim_size=3)
        with pytest.raises(TypeError, match="mean.*floating"):
            ops.scatter(src.long(), idx, dim_size=3, reduce="mean")
        with pytest.raises(ValueError, match="reduce must be one of"):
            ops.scatter(src, idx, dim_size=3, reduce="prod")
        with pytest.raises(TypeError, match="src must be a torch.Tensor"):
            ops.scatter([1.0, 2.0], idx)
        with pytest.raises(TypeError, match="src must be a real"):
            ops.scatter(src.bool(), idx, dim_size=3)
        with pytest.raises(ValueError, match="non-decreasing"):
            ops.segment(src, torch.tensor([0, 3, 2, 5]))
        with pytest.raises(ValueError, match=r"ptr\[-1\] must equal"):
            ops.segment(src, torch.tensor([0, 2, 4]))
        with pytest.raises(ValueError, match="ptr must start at 0"):
            ops.segment(src, torch.tensor([1, 2, 5]), reduce="max")
        with pytest.raises(TypeError, match="ptr must be an int64 or int32"):
            ops.segment(src, torch.tensor([0.0, 5.0]))
        with pytest.raises(ValueError, match="dim_size must be non-negative"):
            ops.scatter(src, idx, dim_size=-1)


@pytest.mark.skipif(not HAS_CPP, reason="extension not built")
def test_cpp_ops_called_directly_raise_instead_of_crashing():
    src = torch.randn(1, 5, 3)
    with pytest.raises(ValueError, match="3-D"):
        torch.ops.graphequi.segment(src[0], torch.tensor([0, 5]), "sum")
    with pytest.raises(IndexError, match="out of range"):
        torch.ops.graphequi.scatter(src, torch.tensor([0, 1, 9, 2, 0]), 3, "sum")
    with pytest.raises(ValueError, match="reduce must be"):
        torch.ops.graphequi.segment(src, torch.tensor([0, 5]), "prod")
    with pytest.raises(ValueError, match="one entry per row"):
        torch.ops.graphequi.scatter_arg(src, torch.tensor([0, 1]), 3, "max")
    with pytest.raises(ValueError, match="arg is required"):
        torch.ops.graphequi.gather_coo(src, torch.tensor([0, 1, 2]), None, "max")


def test_empty_inputs():
    for name in BACKENDS:
        with ops.use_backend(name):
            empty = torch.zeros(0, 4)
            idx = torch.zeros(0, dtype=torch.long)
            for reduce in ("sum", "mean", "min", "max"):
                assert torch.equal(ops.scatter(empty, idx, 0, 3, reduce), torch.zeros(3, 4))
                assert ops.scatter(empty, idx, reduce=reduce).shape == (0, 4)
                assert ops.segment(empty, torch.zeros(1, dtype=torch.long), reduce).shape == (0, 4)


def test_index_ptr_roundtrip_and_errors():
    index = torch.tensor([0, 0, 1, 3, 3, 3])
    ptr = ops.index_to_ptr(index, 5)
    assert ptr.tolist() == [0, 2, 3, 3, 6, 6]
    assert torch.equal(ops.ptr_to_index(ptr), index)
    assert torch.equal(ops.ptr_to_index(ptr, 6), index)
    assert ops.index_to_ptr(index.int(), 5).dtype == torch.int32
    with pytest.raises(ValueError, match="sorted"):
        ops.index_to_ptr(torch.tensor([1, 0]), 2)
    with pytest.raises(IndexError, match="index values must lie"):
        ops.index_to_ptr(torch.tensor([0, 4]), 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        ops.ptr_to_index(torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match="does not match num_rows"):
        ops.ptr_to_index(torch.tensor([0, 3]), 4)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("reduce", ["min", "max"])
def test_value_ops_with_min_max_recompute_winners_in_backward(ns, reduce):
    """The value ops (no winning rows) are differentiable too."""
    from graphequi.testing import assert_gradcheck

    op = getattr(torch.ops, ns)
    src = torch.randn(1, 9, 2, dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 1, 0, 3, 3, 3, 1])
    ptr = ops.index_to_ptr(index.sort().values, 4)
    assert_gradcheck(lambda x: op.scatter(x, index, 5, reduce), src)
    assert_gradcheck(lambda x: op.segment(x, ptr, reduce), src)
    torch.library.opcheck(op.scatter.default, (src.requires_grad_(), index, 5, reduce))

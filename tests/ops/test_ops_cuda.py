"""CUDA kernels: compile checks everywhere nvcc exists, runtime checks on a GPU."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import graphequi.ops as ops

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "csrc" / "cuda"
NVCC = shutil.which("nvcc")


def _cuda_home():
    if NVCC is None:
        return None
    out = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True)
    for candidate in (os.environ.get("CUDA_HOME"), "/usr/local/cuda", *sorted(Path("/usr/local").glob("cuda-*"))):
        if candidate and (Path(candidate) / "include" / "cuda_runtime_api.h").exists():
            return Path(candidate)
    return None


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("source", sorted(p.name for p in CUDA_DIR.glob("*.cu")))
def test_cuda_kernels_compile_for_sm80_and_sm90(source, tmp_path):
    cmd = [NVCC, "-c", "-std=c++17", "-O1",
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           str(CUDA_DIR / source), "-o", str(tmp_path / "kernel.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kernel.o").stat().st_size > 0


@pytest.mark.skipif(_cuda_home() is None, reason="CUDA toolkit headers not found")
def test_cuda_glue_parses_against_torch_headers(tmp_path):
    """The ATen glue compiles (syntax and types) against torch's headers.

    A CPU wheel of torch lacks the one CMake-generated CUDA header; an empty
    stand-in suffices because the glue uses no macro from it."""
    from torch.utils.cpp_extension import include_paths

    stub = tmp_path / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#pragma once\n")
    cmd = ["g++", "-std=c++17", "-fsyntax-only", *(f"-I{p}" for p in include_paths()),
           f"-I{_cuda_home() / 'include'}", f"-I{tmp_path}", f"-I{ROOT / 'csrc'}", str(CUDA_DIR / "reduce_cuda.cpp")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


_skip_without_gpu = pytest.mark.skipif(not torch.cuda.is_available() or "cuda" not in ops.cpp_devices(),
                                       reason="needs a GPU and the CUDA build of the extension")


def needs_gpu(test):
    """Runtime GPU tests: marked ``cuda`` (``pytest -m cuda`` selects them on a
    device machine) and skipped where there is no GPU build."""
    return pytest.mark.cuda(_skip_without_gpu(test))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
@pytest.mark.parametrize("F", [1, 5, 64])
@pytest.mark.parametrize("sorted_index", [False, True])
def test_cuda_matches_cpu(dtype, reduce, F, sorted_index):
    if reduce == "mean" and not dtype.is_floating_point:
        pytest.skip("mean needs floating point")
    gen = torch.Generator().manual_seed(0)
    E, G = 5000, 300
    src = (torch.randn(E, F, generator=gen) * 4).to(dtype)
    index = torch.randint(0, G, (E,), generator=gen)
    if sorted_index:
        index = index.sort().values
    expected = ops.scatter(src, index, 0, G + 3, reduce)
    got = ops.scatter(src.cuda(), index.cuda(), 0, G + 3, reduce).cpu()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    if reduce in ("min", "max"):
        _, arg_cpu = ops.scatter_arg(src, index, 0, G + 3, reduce)
        _, arg_gpu = ops.scatter_arg(src.cuda(), index.cuda(), 0, G + 3, reduce)
        assert torch.equal(arg_gpu.cpu(), arg_cpu)  # deterministic, lowest row on ties


@needs_gpu
@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
def test_cuda_gradcheck_and_bad_index(reduce):
    from graphequi.testing import assert_gradcheck

    src = torch.randn(20, 3, dtype=torch.float64, device="cuda")
    index = torch.randint(0, 6, (20,), device="cuda")
    assert_gradcheck(lambda x: ops.scatter(x, index, 0, 6, reduce), src)
    ptr = ops.index_to_ptr(index.sort().values, 6)
    assert_gradcheck(lambda x: ops.segment(x, ptr, reduce), src)
    with pytest.raises(IndexError):
        ops.scatter(src, torch.full((20,), 9, device="cuda"), 0, 6, reduce)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
@pytest.mark.parametrize("per_feature", [False, True])
def test_cuda_spmm_matches_cpu(dtype, reduce, per_feature):
    """spmm with a value per edge, or per edge and feature (sum/mean), on the
    GPU against the CPU kernels, forward and backward."""
    if per_feature and reduce in ("min", "max"):
        pytest.skip("a value per edge and feature takes sum or mean")
    gen = torch.Generator().manual_seed(1)
    N, E, F = 300, 4000, 37
    edge_index = torch.randint(0, N, (2, E), generator=gen)
    x = torch.randn(N, F, generator=gen).to(dtype)
    value = torch.randn((E, F) if per_feature else (E,), generator=gen).to(dtype)
    grad = torch.randn(N, F, generator=gen).to(dtype)
    results = []
    for device in ("cpu", "cuda"):
        a, v = x.to(device).requires_grad_(), value.to(device).requires_grad_()
        out = ops.to_csr(edge_index.to(device), N, value=v).spmm(a, reduce)
        results.append([t.cpu() for t in (out, *torch.autograd.grad(out, (a, v), grad.to(device)))])
    tol = 3e-2 if dtype == torch.bfloat16 else 1e-5
    for got, expected in zip(results[1], results[0]):
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@needs_gpu
def test_cuda_spmm_feature_gradcheck_and_value_perm():
    from graphequi.testing import assert_gradcheck

    gen = torch.Generator().manual_seed(2)
    edge_index = torch.randint(0, 6, (2, 20), generator=gen).cuda()
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64).cuda()
    value = torch.randn(20, 3, generator=gen, dtype=torch.float64).cuda()
    for reduce in ("sum", "mean"):
        assert_gradcheck(lambda a, v: ops.to_csr(edge_index, 6, value=v).spmm(a, reduce), x, value)
    csr = ops.to_csr(edge_index, 6)
    perm = torch.randperm(20, generator=gen).cuda()
    op = torch.ops.graphequi.spmm_feature.default
    torch.testing.assert_close(op(csr.ptr, csr.col, x, value, perm, None, None, None, "sum", True),
                               op(csr.ptr, csr.col, x, value[perm], None, None, None, None, "sum", True))
    with pytest.raises(IndexError):
        op(csr.ptr, csr.col, x, value, perm + 20, None, None, None, "sum", True)


@needs_gpu
def test_cuda_depthwise_mix_matches_cpu_with_gradients():
    from graphequi.testing import assert_gradcheck

    gen = torch.Generator().manual_seed(4)
    w, x = torch.randn(6, 5, 8, generator=gen), torch.randn(40, 5, 8, generator=gen)
    torch.testing.assert_close(ops.depthwise_mix(w.cuda(), x.cuda()).cpu(), ops.depthwise_mix(w, x),
                               rtol=1e-5, atol=1e-5)
    assert_gradcheck(ops.depthwise_mix, w[:3, :2, :3].double().cuda(), x[:4, :2, :3].double().cuda(), gradgrad=True)


@needs_gpu
def test_cuda_symmetric_pair_features_matches_cpu_with_gradients():
    from graphequi.testing import assert_gradcheck

    pairs = torch.randn(50, 2, 9, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ops.symmetric_pair_features(pairs.cuda()).cpu(), ops.symmetric_pair_features(pairs))
    assert_gradcheck(ops.symmetric_pair_features, pairs[:6, :, :3].double().cuda(), gradgrad=True)

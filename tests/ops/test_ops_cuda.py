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


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available() or "cuda" not in ops.cpp_devices(),
                               reason="needs a GPU and the CUDA build of the extension")


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

"""Fixtures of the kernel tests."""
import pytest
import torch

import graphequi.ops as ops
from graphequi.ops import _backend


@pytest.fixture
def assert_same_on_every_cpu_isa():
    """``check(run)`` runs ``run() -> list of tensors`` with the baseline-x86-64
    and the AVX2 copy of the C++ kernels and asserts bit-identical results (NaN
    in the same places). Skips, saying why, where there is nothing to compare."""
    if "cpu" not in ops.cpp_devices():
        pytest.skip("extension not built")
    if not _backend.cpu_supports_avx2():
        pytest.skip("this CPU (or build) has no AVX2 kernels to compare with the baseline")

    def check(run):
        with ops.use_backend("cpp"):
            previous = _backend.set_cpu_isa("baseline")
            try:
                baseline = run()
                _backend.set_cpu_isa("avx2")
                avx2 = run()
            finally:
                _backend.set_cpu_isa(previous)
        assert len(baseline) == len(avx2)
        for a, b in zip(baseline, avx2):
            assert torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan())
    return check

"""Offsets are int64 inside the kernels: tensors with more than 2^31 elements."""
import pytest
import torch

import graphequi.ops as ops

BACKENDS = ["cpp", "torch"] if "cpu" in ops.cpp_devices() else ["torch"]


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_more_than_2_pow_31_elements(backend):
    F = 2**29 + 3  # 4 rows x F features = 2^31 + 12 int8 elements (2 GiB)
    try:
        src = torch.zeros(4, F, dtype=torch.int8)
    except RuntimeError:
        pytest.skip("not enough memory for a 2 GiB tensor")
    # markers past the 2^31-th element: an int32 offset would wrap around
    src[3, F - 1] = 7
    src[2, F - 2] = 5
    with ops.use_backend(backend):
        unsorted = ops.scatter(src, torch.tensor([1, 0, 0, 1]), dim_size=2, reduce="max")
        assert unsorted[1, F - 1].item() == 7 and unsorted[0, F - 2].item() == 5
        assert int(unsorted.sum()) == 12
        ptr = torch.tensor([0, 2, 4])
        segmented = ops.segment(src, ptr, reduce="sum")
        assert segmented[1, F - 1].item() == 7 and segmented[1, F - 2].item() == 5
        assert int(segmented.sum()) == 12

"""Fixtures shared by the whole suite.

Every test starts from the same random state and leaves the thread count as it
found it, so that a test's outcome never depends on which tests ran before it
or on ``PYTHONHASHSEED``.
"""
import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_global_rngs():
    # tests that want another stream pass their own torch.Generator / np.random.Generator
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

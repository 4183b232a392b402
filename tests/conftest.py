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


@pytest.fixture
def fake_rmd17():
    """``make(folder, molecule="ethanol")``: writes rMD17-layout npz files of
    random 3-atom frames (1000 per file, so the 950/50 split exists) under
    ``folder/src/rmd17_npz`` and returns ``folder/src``."""
    def make(folder, molecule="ethanol", frames=1000):
        out = folder / "src" / "rmd17_npz"
        out.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for part in ("train", "test"):
            np.savez(out / f"rmd17_{molecule}_{part}_01.npz", nuclear_charges=np.array([6, 1, 8], dtype=np.uint8),
                     coords=rng.normal(size=(frames, 3, 3)), energies=np.arange(frames, dtype=np.float64),
                     forces=rng.normal(size=(frames, 3, 3)))
        return folder / "src"
    return make

"""Charged N-body: the RNG replay reproduces the reference charges, the
vectorized simulator equals a per-simulation loop, the dataset's layout."""
import numpy as np
import pytest
import torch

from graphequi.datasets import NBodyCharged
from graphequi.datasets.nbody_sim import (draw_initial_states,
                                          simulate_charged)


def test_charges_match_reference_arrays(shared_data):
    folder = shared_data("nbody_charged5_small_charges")
    rng = np.random.RandomState(43)
    for split, num in (("train", 10000), ("valid", 2000), ("test", 2000)):
        charges = draw_initial_states(rng, num).charges
        ref = np.load(folder / f"charges_{split}_charged5_initvel1small.npy")
        assert ref.shape == charges.shape and np.array_equal(ref, charges), split


def reference_loop(charges, loc0, vel0, length, freq, dt=0.001, vel_norm=0.5, box=5.0, walls=False):
    """One simulation, scalar loops over particles (a dense reference)."""
    n = charges.shape[0]
    loc, vel = loc0.copy(), vel0 * vel_norm / np.sqrt((vel0 ** 2).sum(0, keepdims=True))

    def clamp():
        for d in range(3):
            for i in range(n):
                if loc[d, i] > box:
                    loc[d, i], vel[d, i] = 2 * box - loc[d, i], -abs(vel[d, i])
                if loc[d, i] < -box:
                    loc[d, i], vel[d, i] = -2 * box - loc[d, i], abs(vel[d, i])

    def force():
        f = np.zeros((3, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    r = loc[:, i] - loc[:, j]
                    f[:, i] += charges[i, 0] * charges[j, 0] * r / np.sqrt((r ** 2).sum()) ** 3
        return np.clip(f, -0.1 / dt, 0.1 / dt)

    clamp()
    vel += dt * force()
    saved = []
    for i in range(1, length):
        loc += dt * vel
        if walls:
            clamp()
        if i % freq == 0:
            saved.append(loc.copy())
        vel += dt * force()
    return np.stack(saved[:length // freq - 1])


@pytest.mark.parametrize("walls", [False, True])
def test_vectorized_simulator_matches_loop(walls):
    init = draw_initial_states(np.random.RandomState(0), 3, num_saved=4)
    loc, vel = simulate_charged(init, length=500, sample_freq=100, walls=walls)
    assert loc.shape == (3, 4, 3, 5) and vel.shape == loc.shape
    for s in range(3):
        ref = reference_loop(init.charges[s], init.loc[s], init.vel[s], 500, 100, walls=walls)
        np.testing.assert_allclose(loc[s], ref, rtol=1e-9, atol=1e-9)


def test_walls_fold_only_the_initial_state():
    """The benchmark's particles leave the box freely after the initial fold;
    with walls=True they never do."""
    init = draw_initial_states(np.random.RandomState(1), 2, num_saved=4)
    init.loc[:, 0, 0] = 4.9   # particle 0 starts next to the wall at x = 5 ...
    init.vel[:, :, 0] = np.array([1.0, 0.0, 0.0])
    free, _ = simulate_charged(init, length=500, sample_freq=100)
    walled, _ = simulate_charged(init, length=500, sample_freq=100, walls=True)
    assert np.all(free[:, -1, 0, 0] > 5.0)          # ... and flies through it at speed 0.5
    assert np.all(np.abs(walled) <= 5.0)


def test_dataset_layout_and_determinism(tmp_path):
    kw = dict(num_train=12, num_valid=4, num_test=4, max_train=6, log=False)
    train = NBodyCharged(tmp_path, "train", **kw)
    valid = NBodyCharged(tmp_path, "valid", **kw)
    assert len(train) == 6 and len(valid) == 4
    g = train[0]
    assert g.pos.shape == (5, 3) and g.vec.shape == (5, 1, 3) and g.y.shape == (5, 3)
    assert g.edge_index.shape == (2, 20) and set(g.x.view(-1).tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(g.edge_attr[:, 0], g.x[g.edge_index[0], 0] * g.x[g.edge_index[1], 0])
    charges = np.load(tmp_path / train.raw_dir / "charges_train.npy")
    assert charges.shape == (12, 5, 1)
    again = NBodyCharged(tmp_path / "again", "train", **kw)
    assert torch.equal(again[3].y, train[3].y)
    with pytest.raises(ValueError, match="split"):
        NBodyCharged(tmp_path, "val", **kw)
    with pytest.raises(ValueError, match="frame"):
        NBodyCharged(tmp_path, "train", frame_in=40, frame_out=30, **kw)

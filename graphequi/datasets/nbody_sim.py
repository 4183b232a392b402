r"""The charged-particles simulator of the N-body benchmark (Kipf et al.,
"Neural Relational Inference", 2018; used by Satorras et al., "E(n)
Equivariant Graph Neural Networks", 2021), re-implemented in numpy and
vectorized over simulations.

Physics: :math:`n` particles with charges :math:`q \in \{-1, +1\}`,
Coulomb forces :math:`F_i = \sum_{j \ne i} q_i q_j (p_i - p_j) / \lVert p_i -
p_j \rVert^3` clipped to :math:`\pm 0.1 / \Delta t` per coordinate, a half
velocity step followed by leapfrog steps of :math:`\Delta t = 0.001`.
Frames are saved every ``sample_freq`` steps starting at step
``sample_freq`` (``length / sample_freq - 1`` frames). The box
:math:`[-5, 5]^3` only folds the *initial* positions back inside (elastic
walls applied once): the EGNN generator that defines the benchmark has the
per-step wall collision of the original NRI simulator switched off, so the
particles move freely afterwards. ``walls=True`` restores NRI's collisions
at every step (a different dataset).

Random numbers: the reference draws, for each simulation in turn, from one
legacy ``numpy`` stream seeded once: ``choice`` of the charges ``(n, 1)``,
``randn(3, n)`` positions, ``randn(3, n)`` velocities, and after the
trajectory two ``randn(T_save, 3, n)`` observation-noise arrays (drawn even
with zero noise). :func:`draw_initial_states` replays exactly this order,
so the charges are bit-identical to the reference datasets; trajectories
agree up to floating-point rounding (batched products instead of one
``dot`` per simulation).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ChargedInitialStates", "draw_initial_states", "simulate_charged"]

CHARGE_TYPES = np.array([-1.0, 0.0, 1.0])
CHARGE_PROB = [0.5, 0.0, 0.5]


class ChargedInitialStates(NamedTuple):
    """Per simulation: ``charges [S, n, 1]``, ``loc [S, 3, n]``, ``vel [S, 3, n]``
    (velocities before normalisation)."""

    charges: np.ndarray
    loc: np.ndarray
    vel: np.ndarray


def draw_initial_states(rng: np.random.RandomState, num_sims: int, n_balls: int = 5,
                        num_saved: int = 49, loc_std: float = 1.0) -> ChargedInitialStates:
    """Draw ``num_sims`` simulations' random numbers from ``rng`` in the
    reference's order (advancing ``rng`` past their noise draws too)."""
    charges = np.empty((num_sims, n_balls, 1))
    loc = np.empty((num_sims, 3, n_balls))
    vel = np.empty((num_sims, 3, n_balls))
    for s in range(num_sims):
        charges[s] = rng.choice(CHARGE_TYPES, size=(n_balls, 1), p=CHARGE_PROB)
        loc[s] = rng.randn(3, n_balls) * loc_std
        vel[s] = rng.randn(3, n_balls)
        rng.randn(num_saved, 3, n_balls)   # observation noise of loc
        rng.randn(num_saved, 3, n_balls)   # observation noise of vel
    return ChargedInitialStates(charges, loc, vel)


def _clamp(loc: np.ndarray, vel: np.ndarray, box: float) -> None:
    """Elastic walls, in place."""
    over = loc > box
    loc[over] = 2 * box - loc[over]
    vel[over] = -np.abs(vel[over])
    under = loc < -box
    loc[under] = -2 * box - loc[under]
    vel[under] = np.abs(vel[under])


def _forces(loc: np.ndarray, edges: np.ndarray, strength: float, max_f: float) -> np.ndarray:
    """Clipped Coulomb forces, ``loc [S, 3, n]`` -> ``[S, 3, n]``."""
    a = np.swapaxes(loc, 1, 2)                                   # [S, n, 3]
    sq = (a ** 2).sum(-1)
    l2 = sq[:, :, None] + sq[:, None, :] - 2 * a @ np.swapaxes(a, 1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = strength * edges / np.power(l2, 1.5)
    n = loc.shape[-1]
    size[:, np.arange(n), np.arange(n)] = 0.0
    diff = loc[:, :, :, None] - loc[:, :, None, :]               # [S, 3, n, n]
    f = (size[:, None, :, :] * diff).sum(-1)
    return np.clip(f, -max_f, max_f)


def simulate_charged(init: ChargedInitialStates, length: int = 5000, sample_freq: int = 100,
                     dt: float = 0.001, vel_norm: float = 0.5, box: float = 5.0,
                     strength: float = 1.0, walls: bool = False, progress: bool = False):
    """Run the simulations of ``init`` together.

    Args:
        init: from :func:`draw_initial_states`.
        length: steps :math:`T`.
        sample_freq: steps between saved frames.
        dt: time step.
        vel_norm: initial speed of every particle.
        box: half side of the box (folds the initial positions inside).
        strength: interaction strength.
        walls: elastic walls at every step too (NRI's original simulator;
            not the benchmark's).
        progress: tqdm bar over steps.

    Returns:
        ``(loc, vel)``, each ``[S, T_save, 3, n]`` with ``T_save = length //
        sample_freq - 1``.
    """
    if length % sample_freq:
        raise ValueError("length must be a multiple of sample_freq")
    num_saved = length // sample_freq - 1
    edges = init.charges @ np.swapaxes(init.charges, 1, 2)       # [S, n, n]
    loc_next = init.loc.copy()
    vel_next = init.vel.copy()
    norm = np.sqrt((vel_next ** 2).sum(axis=1, keepdims=True))
    vel_next = vel_next * vel_norm / norm
    num_sims = loc_next.shape[0]
    loc = np.zeros((num_sims, num_saved, 3, loc_next.shape[-1]))
    vel = np.zeros_like(loc)
    _clamp(loc_next, vel_next, box)
    max_f = 0.1 / dt
    vel_next += dt * _forces(loc_next, edges, strength, max_f)
    steps = range(1, length)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="n-body steps")
    counter = 0
    for i in steps:
        loc_next += dt * vel_next
        if walls:
            _clamp(loc_next, vel_next, box)
        if i % sample_freq == 0 and counter < num_saved:
            loc[:, counter], vel[:, counter] = loc_next, vel_next
            counter += 1
        vel_next += dt * _forces(loc_next, edges, strength, max_f)
    return loc, vel

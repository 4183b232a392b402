"""Invariants, grids, cutoff and lifting."""
import math

import pytest
import torch

from graphequi.geometry import (bundle_fiber_invariants, bundle_spatial_invariants,
                                bundle_spatial_invariants_2d, circle_grid, distance, fibonacci_sphere,
                                fully_connected_graph, lift_edges, lifted_orientations,
                                polynomial_cutoff, position_orientation_invariants, safe_norm)
from graphequi.testing import assert_e3_equivariant, assert_gradcheck, random_rotation


def test_fibonacci_sphere_deterministic_and_spread():
    a, b = fibonacci_sphere(64, dtype=torch.float64), fibonacci_sphere(64, dtype=torch.float64)
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=-1), torch.ones(64, dtype=torch.float64))
    # nearly balanced: the mean of the grid is close to 0
    assert a.mean(0).norm() < 0.05
    # every pair distinct
    d = torch.cdist(a, a) + 10 * torch.eye(64, dtype=torch.float64)
    assert d.min() > 0.1
    with pytest.raises(ValueError, match="positive"):
        fibonacci_sphere(0)
    assert torch.allclose(circle_grid(4, dtype=torch.float64),
                          torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float64),
                          atol=1e-15)


def _cloud(n=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    ori = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64), dim=-1)
    return pos, ori, fully_connected_graph(n)


def test_position_orientation_invariants_brute_force_and_invariance():
    pos, ori, ei = _cloud()
    got = position_orientation_invariants(pos, ori, ei)
    for e in range(ei.size(1)):
        j, i = ei[:, e].tolist()
        rel = pos[j] - pos[i]
        a = float(rel @ ori[i])
        b = float((rel - a * ori[i]).norm())
        c = float(ori[i] @ ori[j])
        assert torch.allclose(got[e], torch.tensor([a, b, c], dtype=torch.float64))
    # rotate positions and orientations together
    rot = random_rotation(torch.Generator().manual_seed(1), reflect=True)
    moved = position_orientation_invariants(pos @ rot.T + 3.0, ori @ rot.T, ei)
    assert torch.allclose(moved, got, atol=1e-12)


def test_bundle_invariants():
    pos, _, ei = _cloud()
    grid = fibonacci_sphere(10, dtype=torch.float64)
    rel = pos[ei[0]] - pos[ei[1]]
    spatial = bundle_spatial_invariants(rel, grid)
    assert spatial.shape == (ei.size(1), 10, 2)
    # |r|^2 = a^2 + b^2 for every orientation
    assert torch.allclose(spatial.pow(2).sum(-1), rel.pow(2).sum(-1, keepdim=True).expand(-1, 10))
    rot = random_rotation(torch.Generator().manual_seed(2))
    assert torch.allclose(bundle_spatial_invariants(rel @ rot.T, grid @ rot.T), spatial, atol=1e-12)
    fiber = bundle_fiber_invariants(grid)
    assert fiber.shape == (10, 10, 1) and torch.allclose(fiber[..., 0], grid @ grid.T)
    assert torch.allclose(distance(pos, ei)[:, 0], rel.norm(dim=-1))
    # distance through the shared asserts (invariant under E(3))
    assert_e3_equivariant(lambda p: distance(p, ei), pos)


def test_bundle_2d_signed():
    rel = torch.tensor([[0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    grid = circle_grid(4, dtype=torch.float64)
    s = bundle_spatial_invariants_2d(rel, grid)
    assert torch.allclose(s[:, 0], torch.tensor([[0.0, 1.0], [0.0, -1.0]], dtype=torch.float64), atol=1e-15)
    # rotation invariant, reflection flips the sign of the perpendicular part
    c, si = math.cos(0.7), math.sin(0.7)
    rot = torch.tensor([[c, -si], [si, c]], dtype=torch.float64)
    assert torch.allclose(bundle_spatial_invariants_2d(rel @ rot.T, grid @ rot.T), s, atol=1e-12)
    flip = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(bundle_spatial_invariants_2d(rel @ flip, grid @ flip)[..., 1], -s[..., 1],
                          atol=1e-12)


def test_safe_norm_gradient_at_zero_and_gradcheck():
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    safe_norm(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2, 3, dtype=torch.float64))
    # NaN propagates: it is not a zero vector
    nan = torch.tensor([[float("nan"), 0.0, 0.0], [3.0, 4.0, 0.0]])
    assert torch.isnan(safe_norm(nan)[0]) and safe_norm(nan)[1] == 5.0
    assert torch.isnan(distance(nan, torch.tensor([[0], [1]]))).all()
    pos, ori, ei = _cloud(5)
    assert_gradcheck(lambda p, o: position_orientation_invariants(p, o, ei), pos, ori)
    grid = fibonacci_sphere(6, dtype=torch.float64)
    assert_gradcheck(lambda r: bundle_spatial_invariants(r, grid), pos[ei[0]] - pos[ei[1]])


def test_polynomial_cutoff_smooth():
    x = torch.linspace(0, 1.5, 301, dtype=torch.float64, requires_grad=True)
    u = polynomial_cutoff(x, r=1.0, p=5)
    v = u.detach()
    assert float(v[0]) == 1.0 and bool((v[x >= 1] == 0).all()) and bool(((v >= 0) & (v <= 1)).all())
    (g,) = torch.autograd.grad(u.sum(), x)
    # closed form u'(x) = -p(p+1)(p+2)/2 x^(p-1) (1-x)^2 inside, 0 outside: C^1 (and C^2) at x = 1
    xd = x.detach()
    expected = torch.where(xd < 1, -105.0 * xd ** 4 * (1 - xd) ** 2, torch.zeros_like(xd))
    assert torch.allclose(g, expected, atol=1e-12)
    with pytest.raises(ValueError, match="r must be"):
        polynomial_cutoff(x, r=-1.0)


def test_lift_edges_brute_force():
    ei = torch.tensor([[1, 2, 0, 2], [0, 0, 1, 1]])   # 0<-1, 0<-2, 1<-0, 1<-2
    lifted = lift_edges(ei, 3)
    assert torch.equal(lifted.base, ei[1])
    expected = set()
    for u in range(4):
        for v in range(4):
            bu, bv = int(ei[1, u]), int(ei[1, v])
            base_edge = any(int(ei[0, e]) == bv and int(ei[1, e]) == bu for e in range(4))
            if bu == bv or base_edge:
                expected.add((v, u))
    got = lifted.edge_index.t().tolist()
    assert set(map(tuple, got)) == expected and len(got) == len(expected)
    assert got == sorted(got, key=lambda e: (e[1], e[0]))
    no_loop = lift_edges(ei, 3, loop=False).edge_index
    assert bool((no_loop[0] != no_loop[1]).all()) and no_loop.size(1) == len(expected) - 4
    pos = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [0, 3.0, 0]])
    ori = lifted_orientations(pos, ei)
    assert torch.allclose(ori[0], torch.tensor([1.0, 0, 0])) and torch.allclose(ori[1], torch.tensor([0, 1.0, 0]))

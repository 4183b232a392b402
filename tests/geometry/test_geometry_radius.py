"""radius_graph / fully_connected_graph against a dense brute force."""
import math

import pytest
import torch

from graphequi.geometry import fully_connected_graph, radius_graph


def brute_force(pos, r, batch=None, max_num_neighbors=None, loop=False):
    """All (j, i) with |p_j - p_i|^2 < r^2 in the same graph, sorted by (i, j),
    the lowest-index max_num_neighbors sources kept per target."""
    n = pos.size(0)
    batch = torch.zeros(n, dtype=torch.long) if batch is None else batch
    d2 = ((pos[None, :, :] - pos[:, None, :]) ** 2).sum(-1)   # [i, j]
    mask = (d2 < r * r) & (batch[:, None] == batch[None, :])
    if not loop:
        mask.fill_diagonal_(False)
    edges = []
    for i in range(n):
        js = mask[i].nonzero().view(-1).tolist()
        if max_num_neighbors is not None:
            js = js[:max_num_neighbors]
        edges += [(j, i) for j in js]
    return torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("cap", [None, 3])
@pytest.mark.parametrize("method", ["cells", "dense", "auto"])
def test_matches_brute_force(dim, loop, cap, method):
    gen = torch.Generator().manual_seed(dim * 10 + loop)
    pos = torch.rand(150, dim, generator=gen) * 2
    batch = torch.randint(0, 3, (150,), generator=gen)       # unsorted on purpose
    got = radius_graph(pos, 0.4, batch, max_num_neighbors=cap, loop=loop, method=method)
    assert torch.equal(got, brute_force(pos, 0.4, batch, cap, loop))


def test_cell_list_above_dense_threshold():
    gen = torch.Generator().manual_seed(7)
    pos = torch.rand(1500, 3, generator=gen)
    batch = torch.randint(0, 2, (1500,), generator=gen)
    got = radius_graph(pos, 0.12, batch, max_num_neighbors=5)          # auto -> cells
    assert torch.equal(got, radius_graph(pos, 0.12, batch, max_num_neighbors=5, method="dense"))
    assert torch.equal(got, brute_force(pos, 0.12, batch, 5))


def test_small_chunks_and_flow():
    gen = torch.Generator().manual_seed(1)
    pos = torch.randn(300, 3, generator=gen, dtype=torch.float64)
    ref = radius_graph(pos, 0.8, max_num_neighbors=None)
    assert torch.equal(radius_graph(pos, 0.8, max_num_neighbors=None, chunk_candidates=7, method="cells"), ref)
    assert torch.equal(ref, brute_force(pos, 0.8))
    flipped = radius_graph(pos, 0.8, max_num_neighbors=None, flow="target_to_source")
    assert torch.equal(flipped, ref.flip(0))


def test_degenerate_clouds():
    # all points coincide; a line in 3-D; huge spread with tiny r; r = inf
    same = torch.zeros(6, 3)
    cells = dict(method="cells", max_num_neighbors=None)
    assert torch.equal(radius_graph(same, 0.1, **cells), brute_force(same, 0.1))
    line = torch.stack([torch.linspace(0, 1, 20), torch.zeros(20), torch.zeros(20)], -1)
    assert torch.equal(radius_graph(line, 0.11, **cells), brute_force(line, 0.11))
    spread = torch.tensor([[0.0, 0, 0], [1e12, 0, 0], [1e-9, 0, 0]], dtype=torch.float64)
    assert radius_graph(spread, 1e-6, method="cells").tolist() == [[2, 0], [0, 2]]
    pos = torch.randn(7, 3)
    assert torch.equal(radius_graph(pos, math.inf, **cells), fully_connected_graph(7))
    assert torch.equal(radius_graph(pos, math.inf, max_num_neighbors=None), fully_connected_graph(7))


@pytest.mark.parametrize("method", ["cells", "dense"])
def test_empty_and_isolated(method):
    assert radius_graph(torch.empty(0, 3), 1.0, method=method).shape == (2, 0)
    far = torch.tensor([[0.0, 0, 0], [10.0, 0, 0]])
    assert radius_graph(far, 1.0, method=method).shape == (2, 0)
    assert fully_connected_graph(0).shape == (2, 0)


def test_fully_connected_batched():
    batch = torch.tensor([1, 0, 1, 1, 0])
    got = fully_connected_graph(5, batch)
    pos = torch.zeros(5, 3)
    assert torch.equal(got, brute_force(pos, 1.0, batch))
    assert torch.equal(fully_connected_graph(5, batch, loop=True), brute_force(pos, 1.0, batch, loop=True))


def test_bad_input():
    pos = torch.rand(4, 3)
    with pytest.raises(ValueError, match="r must be"):
        radius_graph(pos, -1.0)
    with pytest.raises(ValueError, match="r must be"):
        radius_graph(pos, float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        radius_graph(torch.tensor([[0.0, float("nan"), 0]]), 1.0)
    with pytest.raises(ValueError, match="shape"):
        radius_graph(torch.rand(4), 1.0)
    with pytest.raises(TypeError, match="floating"):
        radius_graph(torch.ones(4, 3, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="batch"):
        radius_graph(pos, 1.0, torch.zeros(3, dtype=torch.long))
    with pytest.raises(IndexError, match="negative"):
        radius_graph(pos, 1.0, torch.tensor([0, -1, 0, 0]))
    with pytest.raises(ValueError, match="max_num_neighbors"):
        radius_graph(pos, 1.0, max_num_neighbors=-2)
    with pytest.raises(ValueError, match="flow"):
        radius_graph(pos, 1.0, flow="both")
    with pytest.raises(ValueError, match="method"):
        radius_graph(pos, 1.0, method="kdtree")
    # r^2 must be representable where the squared distances are compared
    for r, dtype in ((1e20, torch.float32), (1e-20, torch.float32), (300.0, torch.float16)):
        with pytest.raises(ValueError, match="out of range"):
            radius_graph(pos.to(dtype), r)


def test_extreme_scales_in_float64():
    pos = torch.rand(30, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for scale in (1e20, 1e-20):
        for method in ("dense", "cells"):
            assert torch.equal(radius_graph(pos * scale, 0.4 * scale, max_num_neighbors=None, method=method),
                               brute_force(pos, 0.4))


def test_deterministic():
    pos = torch.rand(500, 3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(radius_graph(pos, 0.2), radius_graph(pos, 0.2))

"""Contraction plans: caching, memory limit, joint sharing, opt_einsum paths,
workspace reuse and autograd."""
import opt_einsum
import pytest
import torch

from graphequi.poly import basis, evaluate, evaluate_each, plan, select
from graphequi.poly import planning as plan_module
from graphequi.testing import assert_gradcheck


def test_plans_are_cached_per_size_bucket():
    polys = basis(2, 1)
    assert plan(polys, 33) is plan(polys, 64)
    assert plan(polys, 65) is not plan(polys, 64)
    assert plan(polys, 40, strategy="independent") is not plan(polys, 40)


@pytest.mark.parametrize("strategy", ["joint", "independent"])
def test_intermediates_respect_the_n_cubed_memory_limit(strategy):
    for polys in (select("ppgn++", 6), basis(4, 1, connected=True)):
        p = plan(polys, 38, strategy=strategy)
        assert max(p.slot_legs) <= 3


def test_joint_plan_shares_intermediates():
    polys = tuple(g for d in range(1, 5) for g in basis(d, 1))
    p = plan(polys, 80)
    assert p.flops_independent == plan(polys, 80, strategy="independent").flops
    assert p.flops * 2 < p.flops_independent
    assert p.num_steps < plan(polys, 80, strategy="independent").num_steps
    ppgn = plan(select("ppgn++", 6), 38)
    assert ppgn.flops < ppgn.flops_independent


def test_independent_plans_follow_opt_einsum():
    n = 64
    for g in select("ppgn++", 6):
        optimizer = opt_einsum.DynamicProgramming(minimize="flops", search_outer=True)
        _, info = opt_einsum.contract_path(g.einsum_equation(), *[(n, n)] * g.degree, shapes=True,
                                           optimize=optimizer, memory_limit=n ** 3)
        ours = plan_module._build((g,), n, "independent")
        # same pairwise steps; leaf reductions are counted slightly differently
        assert abs(ours.flops - info.opt_cost) <= 4 * n * n, (g, ours.flops, info.opt_cost)


def test_workspace_reuse_does_not_alias_outputs():
    polys = basis(3, 2, connected=True)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(3, 9, 9, generator=gen)
    X = X + X.transpose(1, 2)
    first = evaluate(polys, X)
    kept = first.clone()
    second = evaluate(polys, X * 2)
    torch.testing.assert_close(first, kept)
    torch.testing.assert_close(second, kept * 8)  # homogeneous of degree 3


def test_gradients_flow_in_float64():
    polys = basis(2, 1, connected=True, directed=True)

    def fn(X):
        return evaluate(polys, X).sum(-1)

    X = torch.randn(2, 4, 4, dtype=torch.float64)
    assert_gradcheck(fn, X)


def test_mixed_marks_in_one_plan():
    polys = select("ppgn++", 6)
    A = (torch.rand(2, 7, 7, generator=torch.Generator().manual_seed(1)) < 0.6).double().triu(1)
    A = A + A.transpose(1, 2)
    values = evaluate_each(polys, A)
    assert [v.dim() - 1 for v in values] == [g.num_marks for g in polys]
    for g, v in zip(polys, values):
        torch.testing.assert_close(v, evaluate([g], A)[..., 0])


def test_plan_repr_and_errors():
    p = plan(basis(1, 0), 10)
    assert "Plan(" in repr(p) and "flops=" in repr(p)
    with pytest.raises(ValueError, match="at least one"):
        plan([], 10)
    with pytest.raises(ValueError, match="strategy"):
        plan(basis(1, 0), 10, strategy="greedy")


def test_gradients_through_shared_and_fused_steps():
    # The PPGN++ plan shares intermediates and fuses matrix-vector steps.
    polys = tuple(g for g in select("ppgn++", 6) if g.num_marks == 2)
    assert any(type(st).__name__ == "_FusedMatvecStep" for st in plan(polys, 4).steps)

    def fn(X):
        return evaluate(polys, X + X.transpose(-1, -2)).sum(-1)

    assert_gradcheck(fn, torch.rand(1, 4, 4, dtype=torch.float64))


def test_chunked_evaluation_equals_one_pass(monkeypatch):
    from graphequi.poly import evaluation as evaluate_module

    polys = select("ppgn++", 6)
    A = (torch.rand(7, 9, 9, generator=torch.Generator().manual_seed(2)) < 0.5).double().triu(1)
    A = A + A.transpose(1, 2)
    mask = torch.ones(7, 9, dtype=torch.bool)
    mask[3, 6:] = False
    whole = evaluate_each(polys, A, mask=mask)
    monkeypatch.setattr(evaluate_module, "_CHUNK_BYTES", 1)  # one graph per chunk
    for a, b in zip(evaluate_each(polys, A, mask=mask), whole):
        torch.testing.assert_close(a, b)

"""Contraction plans: caching, memory limit, joint sharing, FLOP counts,
immutability, workspace reuse across calls and threads, and autograd."""
import pytest
import torch

from graphequi.poly import basis, evaluate, evaluate_each, plan, select
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


def _recount_flops(p, n: int) -> int:
    """FLOPs per graph of ``p``'s steps, recounted from their shapes under
    opt_einsum's convention: a pairwise step over ``k`` indices costs
    ``n**k``, twice that when it sums an index; reading an edge with its
    unkept legs summed costs ``n**2`` (a diagonal read is free)."""
    total = 0
    for st in p.steps:
        kind = type(st).__name__
        if kind == "_BmmStep":
            total += 2 * n ** (st.num_batch + st.num_rows + st.num_inner + st.num_cols)
        elif kind == "_FusedMatvecStep":
            total += len(st.outs) * 2 * n ** (st.num_batch + st.num_rows + st.num_inner)
        elif kind == "_ElementwiseStep":
            legs = st.num_batch + st.num_rows + st.num_inner + st.num_cols
            total += (2 if st.mode == "dot" else 1) * n ** legs
        elif kind == "_LeafStep":
            total += 0 if st.kind == "diag" else n ** 2
        else:
            assert kind == "_CopyStep", kind
    return total


@pytest.mark.parametrize("strategy", ["joint", "independent"])
def test_flops_match_a_recount_of_the_steps(strategy):
    for polys in (select("ppgn++", 6), basis(3, 2, connected=True), basis(2, 0)):
        p = plan(polys, 64, strategy=strategy)
        assert p.flops == _recount_flops(p, p.n) > 0
        assert p.count_flops(16) == _recount_flops(p, 16)


def test_joint_plans_cost_at_most_the_independent_plans():
    for polys in (select("ppgn++", 6), basis(3, 1), basis(4, 0, connected=True),
                  tuple(g for d in range(1, 4) for g in basis(d, 2))):
        joint, independent = plan(polys, 38), plan(polys, 38, strategy="independent")
        assert joint.flops_independent == independent.flops == independent.flops_independent
        assert joint.flops <= independent.flops


def test_plans_are_immutable_and_plan_does_not_change_them():
    import dataclasses

    polys = basis(2, 1)
    p = plan(polys, 20)
    before = (p.flops, p.flops_independent, p.steps, p.outputs)
    assert plan(polys, 20) is p and (p.flops, p.flops_independent, p.steps, p.outputs) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.flops_independent = 0


def test_one_cached_plan_called_from_two_threads():
    import sys
    import threading

    polys = tuple(select("ppgn++", 6))
    p = plan(polys, 12)
    gen = torch.Generator().manual_seed(5)
    inputs = []
    for _ in range(2):
        A = (torch.rand(6, 12, 12, generator=gen) < 0.5).double().triu(1)
        inputs.append(A + A.transpose(1, 2))
    expected = [p(X) for X in inputs]  # single-threaded reference
    barrier = threading.Barrier(2)
    failures = []

    own_workspace = []

    def work(i):
        own_workspace.append(p._pools() == {})  # the main thread's buffers are not shared
        barrier.wait()
        for _ in range(30):
            try:
                got = p(inputs[i])
            except Exception as err:  # e.g. a buffer taken by the other thread in between
                failures.append((i, repr(err)))
                return
            if not all(torch.equal(a, b) for a, b in zip(got, expected[i])):
                failures.append((i, "wrong values"))
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, inside the workspace bookkeeping too
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == [] and own_workspace == [True, True]


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

    X = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
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

    X = torch.rand(1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert_gradcheck(fn, X)


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

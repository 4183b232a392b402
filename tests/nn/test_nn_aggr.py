"""graphequi.nn.aggr against PyG's aggregations, inside PyG layers, and compiled."""
import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr
from torch_geometric.nn import GINConv, MultiAggregation, SAGEConv

from graphequi.nn import aggr
from graphequi.testing import assert_compiles, assert_gradcheck

PAIRS = [(aggr.SumAggregation, pyg_aggr.SumAggregation), (aggr.MeanAggregation, pyg_aggr.MeanAggregation),
         (aggr.MaxAggregation, pyg_aggr.MaxAggregation), (aggr.MinAggregation, pyg_aggr.MinAggregation)]
IDS = [ours.__name__ for ours, _ in PAIRS]


def inputs(gen, num_rows=40, groups=9, trailing=(5,)):
    x = torch.randn((num_rows,) + trailing, generator=gen, dtype=torch.float64)
    index = torch.randint(0, groups - 2, (num_rows,), generator=gen)  # the last two groups stay empty
    return x, index, groups


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
def test_agrees_with_pyg_on_unsorted_index_with_empty_groups(ours, theirs):
    gen = torch.Generator().manual_seed(0)
    x, index, groups = inputs(gen)
    torch.testing.assert_close(ours()(x, index, dim_size=groups), theirs()(x, index, dim_size=groups))


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
def test_agrees_with_pyg_on_ptr_input(ours, theirs):
    gen = torch.Generator().manual_seed(1)
    x, index, groups = inputs(gen)
    index = index.sort().values
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(index, minlength=groups).cumsum(0)])
    torch.testing.assert_close(ours()(x, ptr=ptr), theirs()(x, ptr=ptr))
    torch.testing.assert_close(ours()(x, index, dim_size=groups), theirs()(x, ptr=ptr))


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
@pytest.mark.parametrize("dim", [0, 1, -2, -1])
def test_agrees_with_pyg_along_any_dim(ours, theirs, dim):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 12, 4, generator=gen, dtype=torch.float64)
    size = x.size(dim)
    index = torch.randint(0, 5, (size,), generator=gen)
    torch.testing.assert_close(ours()(x, index, dim_size=6, dim=dim), theirs()(x, index, dim_size=6, dim=dim))


@pytest.mark.parametrize("ours, theirs", PAIRS[:2], ids=IDS[:2])
def test_sum_and_mean_gradients_equal_pyg(ours, theirs):
    gen = torch.Generator().manual_seed(3)
    x, index, groups = inputs(gen)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    weight = torch.randn(groups, 5, generator=gen, dtype=torch.float64)
    (ga,) = torch.autograd.grad((ours()(a, index, dim_size=groups) * weight).sum(), a)
    (gb,) = torch.autograd.grad((theirs()(b, index, dim_size=groups) * weight).sum(), b)
    torch.testing.assert_close(ga, gb)


def test_max_gradient_goes_to_one_winner_where_pyg_splits_ties():
    x = torch.tensor([[1.0], [3.0], [3.0], [2.0]], requires_grad=True)
    index = torch.tensor([0, 0, 0, 1])
    (ours,) = torch.autograd.grad(aggr.MaxAggregation()(x, index, dim_size=2).sum(), x)
    (theirs,) = torch.autograd.grad(pyg_aggr.MaxAggregation()(x, index, dim_size=2).sum(), x)
    assert ours.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]  # lowest winning row
    assert theirs.flatten().tolist() == [0.0, 0.5, 0.5, 1.0]
    assert ours.sum() == theirs.sum()  # both are subgradients of the same total


@pytest.mark.parametrize("cls", [p[0] for p in PAIRS], ids=IDS)
def test_gradcheck(cls):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)  # distinct values: max/min differentiable
    index = torch.randint(0, 6, (20,), generator=gen)
    assert_gradcheck(lambda v: cls()(v, index, dim_size=7), x)


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=IDS)
def test_as_the_aggr_of_pyg_layers(ours, theirs):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(12, 4, generator=gen)
    edge_index = torch.randint(0, 12, (2, 40), generator=gen)
    for make in (lambda a: GINConv(torch.nn.Linear(4, 6), aggr=a), lambda a: SAGEConv(4, 6, aggr=a)):
        torch.manual_seed(0)
        mine = make(ours())
        torch.manual_seed(0)
        ref = make(theirs())
        torch.testing.assert_close(mine(x, edge_index), ref(x, edge_index))
        # edge order does not matter
        perm = torch.randperm(40, generator=gen)
        torch.testing.assert_close(mine(x, edge_index[:, perm]), ref(x, edge_index), atol=1e-5, rtol=1e-5)


def test_inside_multi_aggregation():
    gen = torch.Generator().manual_seed(6)
    x, index, groups = inputs(gen, trailing=(3,))
    mine = MultiAggregation([aggr.SumAggregation(), aggr.MaxAggregation(), aggr.MeanAggregation()])
    ref = MultiAggregation(["sum", "max", "mean"])
    torch.testing.assert_close(mine(x, index, dim_size=groups), ref(x, index, dim_size=groups))


def test_compiles_without_graph_breaks():
    gen = torch.Generator().manual_seed(7)
    x, index, groups = inputs(gen, trailing=(3,))
    for module in (aggr.SumAggregation(), aggr.MaxAggregation()):
        assert_compiles(lambda v, i: module(v, i, dim_size=groups), x.float(), index)


def test_bad_input_is_a_clear_error():
    agg = aggr.SumAggregation()
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="dim_size"):  # PyG's Aggregation.__call__ words it
        agg(x, torch.tensor([0, 1, 2, 3, 9]), dim_size=4)
    with pytest.raises(IndexError, match="negative"):
        agg(x, torch.tensor([0, 1, -1, 3, 0]), dim_size=4)
    with pytest.raises(TypeError, match="index"):
        agg(x, torch.tensor([0.0, 1, 2, 3, 0]), dim_size=4)
    with pytest.raises(ValueError, match="entries"):
        agg(x, torch.tensor([0, 1]), dim_size=4)
    with pytest.raises(ValueError, match="ptr"):
        agg(x, ptr=torch.tensor([0, 2, 9]))
    with pytest.raises(TypeError, match="mean"):
        aggr.MeanAggregation()(torch.arange(5).view(5, 1), torch.zeros(5, dtype=torch.long), dim_size=1)
    assert repr(aggr.MaxAggregation()) == "MaxAggregation()"

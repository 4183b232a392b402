"""AssociativityRegularizer: it records exactly what each LCM layer
aggregates, its penalty is the mean of the layers' associativity losses on
those rows, hooks do not outlive the recording, and bad input is refused."""
import pytest
import torch
from torch_geometric.nn import GINConv

from graphequi.nn.aggr import AssociativityRegularizer, LCMAggregation, SumAggregation


class TwoLCMLayers(torch.nn.Module):
    def __init__(self, cell="gru", **kwargs):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = GINConv(torch.nn.Linear(5, 8), aggr=LCMAggregation(5, 5, cell=cell, **kwargs))
        self.conv2 = GINConv(torch.nn.Linear(8, 8), aggr=LCMAggregation(8, 8, cell=cell, **kwargs))

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def graph(seed=0, nodes=10, edges=30):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(nodes, 5, generator=gen), torch.randint(0, nodes, (2, edges), generator=gen)


def test_penalty_is_the_mean_loss_on_the_recorded_rows():
    model = TwoLCMLayers()
    x, edge_index = graph()
    seen = []
    hooks = [conv.aggr_module.register_forward_pre_hook(lambda m, args, kw: seen.append(args[0]), with_kwargs=True)
             for conv in (model.conv1, model.conv2)]
    reg = AssociativityRegularizer(model, num_triples=16, generator=torch.Generator().manual_seed(3))
    with reg.recording():
        model(x, edge_index)
    for hook in hooks:
        hook.remove()
    got = reg.penalty()
    gen = torch.Generator().manual_seed(3)
    layers = (model.conv1.aggr_module, model.conv2.aggr_module)
    expected = torch.stack([layer.associativity_loss(rows, 16, gen) for layer, rows in zip(layers, seen)]).mean()
    assert [rows.shape for rows in seen] == [(30, 5), (30, 8)]  # one gathered message per edge
    assert torch.equal(got, expected) and got > 0
    got.backward()
    for layer in layers:
        assert layer.cell.weight.grad.abs().sum() > 0


def test_nothing_is_recorded_outside_the_block_and_penalty_clears():
    model = TwoLCMLayers(cell="mlp")
    x, edge_index = graph(1)
    reg = AssociativityRegularizer(model)
    model(x, edge_index)
    assert reg.penalty() == 0
    with reg.recording():
        model(x, edge_index)
    assert reg.penalty() > 0
    assert reg.penalty() == 0  # consumed
    for conv in (model.conv1, model.conv2):
        assert not conv.aggr_module._forward_pre_hooks


def test_exact_cells_and_empty_aggregations_give_zero():
    model = TwoLCMLayers(cell="max")  # max is exactly associative in floats
    x, edge_index = graph(2)
    reg = AssociativityRegularizer(model)
    with reg.recording():
        model(x, edge_index)
    assert reg.penalty() == 0
    with reg.recording():
        model(x, edge_index[:, :0])  # no edges: no rows to sample, nothing recorded
    assert reg.penalty() == 0 and not reg.penalty().requires_grad


def test_bad_input():
    plain = GINConv(torch.nn.Linear(5, 5), aggr=SumAggregation())
    with pytest.raises(ValueError, match="no LCMAggregation"):
        AssociativityRegularizer(plain)
    with pytest.raises(ValueError, match="num_triples must be positive"):
        AssociativityRegularizer(TwoLCMLayers(), num_triples=0)
    assert "layers=2" in repr(AssociativityRegularizer(TwoLCMLayers()))

"""LCMAggregation: against a dense per-group reference, batch independence,
order invariance, exact cells, compilation, use inside PyG layers, bad input."""
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GINConv, SAGEConv

from graphequi import ops
from graphequi.nn.aggr import LCMAggregation
from graphequi.nn.aggr.lcm import OrderedGRUCell, SymmetricGRUCell, SymmetricMLPCell, precedes
from graphequi.testing import assert_compiles, assert_gradcheck, assert_permutation_equivariant

LEARNED = ["gru", "ordered-gru", "mlp"]
CELLS = {"gru": SymmetricGRUCell, "ordered-gru": OrderedGRUCell, "mlp": SymmetricMLPCell}


def make(cell="gru", in_channels=5, out_channels=6, seed=0, dtype=torch.float64, **kwargs):
    torch.manual_seed(seed)
    agg = LCMAggregation(in_channels, out_channels, cell=cell, **kwargs).to(dtype)
    if isinstance(agg.identity, torch.nn.Parameter):  # a non-trivial identity exercises the padding
        with torch.no_grad():
            agg.identity.normal_(generator=torch.Generator().manual_seed(seed))
    return agg


def inputs(seed=0, num_rows=60, groups=10, in_channels=5, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_rows, in_channels, generator=gen, dtype=dtype)
    index = torch.randint(0, groups - 1, (num_rows,), generator=gen)  # the last group stays empty
    index[: num_rows // 3] = 2  # one large group: several levels, odd counts on the way
    return x, index, groups


def dense_reference(agg, x, index, groups):
    """Group by group: sort by the canonical keys with Python's sort, then
    pair neighbours level by level, padding with the identity."""
    h, e = agg.embed(x), agg.identity_element(x.dtype)
    keys = (x.double().unsqueeze(1) * agg.order_keys).sum(-1).tolist()
    out = []
    for g in range(groups):
        rows = sorted((i for i in range(x.size(0)) if int(index[i]) == g), key=lambda i: tuple(keys[i]))
        level = [h[i:i + 1] for i in rows]
        if not level:
            out.append(e)
            continue
        while len(level) > 1:
            level = [agg.combine(level[k], level[k + 1] if k + 1 < len(level) else e.unsqueeze(0))
                     for k in range(0, len(level), 2)]
        out.append(level[0][0])
    return torch.stack(out)


@pytest.mark.parametrize("cell", LEARNED)
def test_matches_dense_reference_for_index_ptr_and_static_sizes(cell):
    agg = make(cell)
    x, index, groups = inputs()
    expected = dense_reference(agg, x, index, groups)
    torch.testing.assert_close(agg(x, index, dim_size=groups), expected)
    torch.testing.assert_close(agg(x, index, dim_size=groups, max_num_elements=64), expected)
    order = torch.sort(index, stable=True).indices
    ptr = ops.index_to_ptr(index[order], groups)
    torch.testing.assert_close(agg(x[order], ptr=ptr), expected)


@pytest.mark.parametrize("cell", LEARNED)
def test_batch_independence_is_bitwise(cell):
    """A group's output is the same alone and among groups of any size."""
    agg, gemm = make(cell, batch_invariant=True), make(cell)
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    alone = agg(target, torch.zeros(7, dtype=torch.long), dim_size=1)
    for others in (1, 2, 9, 130):  # other groups, up to a hub of 130 elements
        rest = torch.randn(others + 40, 5, generator=gen, dtype=torch.float64)
        rest_index = torch.cat([torch.full((others,), 2), torch.randint(0, 4, (40,), generator=gen)])
        rest_index[rest_index == 1] = 3
        x = torch.cat([rest, target])
        index = torch.cat([rest_index, torch.ones(7, dtype=torch.long)])
        perm = torch.randperm(x.size(0), generator=gen)
        batched = agg(x[perm], index[perm], dim_size=5)
        assert torch.equal(batched[1], alone[0])
        # the default GEMMs may round differently, but only in the last bits
        torch.testing.assert_close(gemm(x[perm], index[perm], dim_size=5)[1], alone[0])


@pytest.mark.parametrize("cell", LEARNED)
def test_row_permutation_invariance_is_bitwise(cell):
    agg = make(cell, batch_invariant=True)
    x, index, groups = inputs(2)
    ref = agg(x, index, dim_size=groups)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        perm = torch.randperm(x.size(0), generator=gen)
        assert torch.equal(agg(x[perm], index[perm], dim_size=groups), ref)


def test_without_canonical_order_the_input_order_counts():
    agg = make("gru", canonical_order=False)
    x, index, groups = inputs(4)
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(agg(x[perm], index[perm], dim_size=groups), agg(x, index, dim_size=groups))


def graph(seed, num_nodes=14, num_edges=50, channels=5):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    edge_index[1, :12] = 3  # a hub; the last node is isolated
    edge_index[:, edge_index[0] == num_nodes - 1] = 0
    edge_index[:, edge_index[1] == num_nodes - 1] = 1
    return Data(x=torch.randn(num_nodes, channels, generator=gen, dtype=torch.float64), edge_index=edge_index)


@pytest.mark.parametrize("cell", LEARNED)
@pytest.mark.parametrize("layer", ["gin", "sage"])
def test_node_and_edge_permutation_equivariance_inside_pyg_layers(cell, layer):
    torch.manual_seed(0)
    agg = LCMAggregation(5, 5, cell=cell)
    conv = (GINConv(torch.nn.Linear(5, 4), aggr=agg) if layer == "gin" else SAGEConv(5, 4, aggr=agg)).double()
    data = graph(5)
    out = conv(data.x, data.edge_index)
    assert torch.isfinite(out).all()  # the isolated node included
    assert_permutation_equivariant(lambda d: conv(d.x, d.edge_index), data, output="node")


@pytest.mark.parametrize("cell, batch_invariant", [(c, b) for c in LEARNED for b in (False, True)])
def test_cells_are_exactly_commutative(cell, batch_invariant):
    torch.manual_seed(0)
    op = CELLS[cell](8, batch_invariant=batch_invariant)
    gen = torch.Generator().manual_seed(1)
    for rows in (1, 3, 33):
        a, b = torch.randn(rows, 8, generator=gen), torch.randn(rows, 8, generator=gen)
        assert torch.equal(op(a, b), op(b, a))


def test_ordered_gru_cell_is_a_gru_step_on_the_ordered_pair():
    torch.manual_seed(0)
    op = OrderedGRUCell(6).double()
    ref = torch.nn.GRUCell(6, 6).double()
    with torch.no_grad():
        ref.weight_ih.copy_(op.weight[:18])
        ref.weight_hh.copy_(op.weight[18:])
        ref.bias_ih.copy_(op.bias[:18])
        ref.bias_hh.copy_(op.bias[18:])
    gen = torch.Generator().manual_seed(3)
    a, b = (torch.randn(20, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    first = precedes(a, b, op.order_keys)
    assert 0 < int(first.sum()) < 20  # both orders occur
    lo = torch.where(first.unsqueeze(-1), a, b)
    hi = torch.where(first.unsqueeze(-1), b, a)
    torch.testing.assert_close(op(a, b), ref(lo, hi))
    assert not bool((precedes(a, b, op.order_keys) & precedes(b, a, op.order_keys)).any())
    assert not bool(precedes(a, a, op.order_keys).any())


def test_max_cell_equals_scatter_max_exactly():
    agg = make("max", identity=float("-inf"))
    x, index, groups = inputs(6)
    out = agg(x, index, dim_size=groups)
    nonempty = ops.scatter(torch.ones_like(index), index, dim_size=groups) > 0
    assert torch.equal(out[nonempty], ops.scatter(agg.embed(x), index, dim_size=groups, reduce="max")[nonempty])
    assert torch.equal(out[~nonempty], torch.full_like(out[~nonempty], float("-inf")))


def test_tree_bookkeeping_on_random_group_sizes():
    """The exact sum cell on integers: every row is counted once, for any mix
    of group sizes (empty, single, one big group, more groups than rows), with
    exact and with static (bounded) level sizes."""
    agg = make("sum", in_channels=3, out_channels=3, identity=0.0, project=False)
    gen = torch.Generator().manual_seed(14)
    for trial in range(60):
        rows, groups = int(torch.randint(0, 40, (1,), generator=gen)), int(torch.randint(1, 12, (1,), generator=gen))
        x = torch.randint(-9, 9, (rows, 3), generator=gen).double()
        index = torch.randint(0, groups, (rows,), generator=gen) * (trial % 3 != 0)
        expected = ops.scatter(x, index, dim_size=groups)
        largest = int(ops.scatter(torch.ones_like(index), index, dim_size=groups).max())
        assert torch.equal(agg(x, index, dim_size=groups), expected)
        assert torch.equal(agg(x, index, dim_size=groups, max_num_elements=largest + trial % 5), expected)


def test_sum_cell_equals_scatter_sum():
    agg = make("sum", in_channels=6, identity=0.0, project=False)
    gen = torch.Generator().manual_seed(7)
    x = torch.randint(-50, 50, (80, 6), generator=gen).double()  # integers: every order sums exactly
    index = torch.randint(0, 7, (80,), generator=gen)
    assert torch.equal(agg(x, index, dim_size=9), ops.scatter(x, index, dim_size=9, reduce="sum"))
    assert agg.associativity_loss(x, generator=gen) == 0
    assert agg.identity_loss(x, generator=gen) == 0


@pytest.mark.parametrize("cell", LEARNED + ["max"])
def test_empty_groups_return_the_identity(cell):
    agg = make(cell, identity=float("-inf") if cell == "max" else "learned")
    x, index, groups = inputs(8)
    out = agg(x, index, dim_size=groups + 3)
    for g in (groups - 1, groups, groups + 2):
        assert torch.equal(out[g], agg.identity_element(x.dtype))
    empty = agg(x[:0], index[:0], dim_size=3)
    assert torch.equal(empty, agg.identity_element(x.dtype).expand(3, -1))
    assert agg(x[:0], index[:0], dim_size=0).shape == (0, 6)
    single = agg(x[:1], torch.tensor([0]), dim_size=1)  # one element: itself, no cell applied
    assert torch.equal(single[0], agg.embed(x[:1])[0])


def test_zeros_and_tensor_identities():
    assert torch.equal(LCMAggregation(3, 4, identity="zeros").identity, torch.zeros(4))
    e = torch.arange(4.0)
    agg = LCMAggregation(3, 4, identity=e)
    assert torch.equal(agg(torch.randn(2, 3), torch.tensor([1, 1]), dim_size=2)[0], e)
    assert "identity" not in dict(agg.named_parameters())


@pytest.mark.parametrize("cell", LEARNED)
def test_gradcheck(cell):
    agg = make(cell, in_channels=3, out_channels=4)
    x, index, groups = inputs(9, num_rows=13, groups=4, in_channels=3)
    assert_gradcheck(lambda v: agg(v, index, dim_size=groups), x)


@pytest.mark.parametrize("cell", ["gru", "ordered-gru", pytest.param("mlp", marks=pytest.mark.slow)])
def test_compiles_given_dim_size_and_max_num_elements(cell):
    agg = make(cell, dtype=torch.float32)
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(12, 5, generator=gen)
    index = torch.tensor([3, 0, 3, 3, 1, 3, 0, 3, 1, 1, 0, 3])  # group 2 empty; sizes 3, 3, 6: three levels
    assert_compiles(lambda v, i: agg(v, i, dim_size=5, max_num_elements=6), x, index)


def test_associativity_loss():
    agg = make("gru")
    x, _, _ = inputs(11)
    gen = torch.Generator().manual_seed(0)
    loss = agg.associativity_loss(x, num_triples=64, generator=gen)
    assert loss.dim() == 0 and loss > 0
    again = agg.associativity_loss(x, num_triples=64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loss, again)
    loss.backward()
    assert agg.cell.weight.grad is not None and agg.cell.weight.grad.abs().sum() > 0
    assert make("max", identity=float("-inf")).associativity_loss(x, generator=gen) == 0


class TwoLayer(torch.nn.Module):
    def __init__(self, layer, cell):
        super().__init__()
        if layer == "gin":
            self.conv1 = GINConv(torch.nn.Linear(5, 8), aggr=LCMAggregation(5, 5, cell=cell))
            self.conv2 = GINConv(torch.nn.Linear(8, 8), aggr=LCMAggregation(8, 8, cell=cell))
        else:
            self.conv1 = SAGEConv(5, 8, aggr=LCMAggregation(5, 5, cell=cell))
            self.conv2 = SAGEConv(8, 8, aggr=LCMAggregation(8, 8, cell=cell))
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x, edge_index):
        return self.head(self.conv2(self.conv1(x, edge_index).relu(), edge_index)).squeeze(-1)


def train(layer, cell, steps=4):
    torch.manual_seed(0)
    model = TwoLayer(layer, cell)
    data = graph(12)
    x, y = data.x.float(), torch.randn(data.num_nodes, generator=torch.Generator().manual_seed(1))
    initial = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x, data.edge_index), y)
        loss = loss + 0.1 * model.conv1.aggr_module.associativity_loss(x, 32, torch.Generator().manual_seed(2))
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses), initial, [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("layer", ["gin", "sage"])
@pytest.mark.parametrize("cell", LEARNED)
def test_trains_inside_pyg_layers_deterministically(layer, cell):
    losses, initial, final = train(layer, cell)
    assert torch.isfinite(losses).all()
    assert any(not torch.equal(a, b) for a, b in zip(initial, final))
    losses2, _, final2 = train(layer, cell)
    assert torch.equal(losses, losses2)
    assert all(torch.equal(a, b) for a, b in zip(final, final2))


def test_nan_propagates_to_its_group_only():
    agg = make("gru", batch_invariant=True)
    x, index, groups = inputs(13)
    clean = agg(x, index, dim_size=groups)
    x = x.clone()
    x[0, 1] = float("nan")
    out = agg(x, index, dim_size=groups)
    g = int(index[0])
    assert torch.isnan(out[g]).all()
    others = torch.arange(groups) != g
    assert torch.equal(out[others], clean[others])


def test_bad_input_is_a_clear_error():
    agg = LCMAggregation(5, 6)
    x, index = torch.randn(4, 5), torch.tensor([0, 1, 1, 2])
    with pytest.raises(ValueError, match="in_channels=5"):
        agg(torch.randn(4, 3), index, dim_size=3)
    with pytest.raises(ValueError, match=r"\[E, in_channels\]"):
        agg(torch.randn(2, 4, 5), index, dim_size=3)
    with pytest.raises(ValueError, match="dim"):
        agg(x, index, dim_size=3, dim=-1)
    with pytest.raises(TypeError, match="floating"):
        agg(torch.ones(4, 5, dtype=torch.long), index, dim_size=3)
    with pytest.raises(TypeError, match="index"):
        agg(x, index.float(), dim_size=3)
    with pytest.raises(IndexError, match="negative"):
        agg(x, torch.tensor([0, -1, 1, 2]), dim_size=3)
    with pytest.raises(ValueError, match="dim_size"):  # PyG's Aggregation.__call__ words it
        agg(x, torch.tensor([0, 1, 5, 2]), dim_size=3)
    with pytest.raises(ValueError, match="entries"):
        agg(x, torch.tensor([0, 1]), dim_size=3)
    with pytest.raises(ValueError, match="ptr"):
        agg(x, ptr=torch.tensor([0, 3, 2, 4]))
    with pytest.raises(ValueError, match="max_num_elements"):
        agg(x, index, dim_size=3, max_num_elements=1)
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        LCMAggregation(5, 6, project=False)
    with pytest.raises(ValueError, match="cell"):
        LCMAggregation(5, 6, cell="lstm")
    with pytest.raises(ValueError, match="identity"):
        LCMAggregation(5, 6, identity=torch.zeros(3))
    with pytest.raises(ValueError, match="num_triples"):
        agg.associativity_loss(x, num_triples=0)


def test_repr_and_reset_parameters():
    agg = LCMAggregation(5, 6, cell="mlp")
    assert repr(agg) == ("LCMAggregation(5, 6, cell='mlp', identity='learned', project=True, "
                         "canonical_order=True)")
    with torch.no_grad():
        agg.identity.fill_(3.0)
    before = agg.cell.lin1.weight.detach().clone()
    agg.reset_parameters()
    assert torch.equal(agg.identity, torch.zeros(6)) and not torch.equal(before, agg.cell.lin1.weight)
    custom = LCMAggregation(4, 4, cell=torch.maximum, identity=float("-inf"), project=False)
    x = torch.randn(5, 4)
    assert torch.equal(custom(x, torch.zeros(5, dtype=torch.long), dim_size=1)[0], x.max(0).values)

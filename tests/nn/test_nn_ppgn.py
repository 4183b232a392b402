import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import from_networkx, to_dense_adj, to_dense_batch

from graphequi.nn import PPGNPlusPlus
from graphequi.nn.ppgn import PairBatchNorm, PPGNBlock, _pair_keep, dense_nodes, dense_pair_features, dense_pairs
from graphequi.testing import (assert_compiles, assert_compiles_once, assert_gradcheck,
                               assert_permutation_equivariant)
from graphequi.transforms import ValidateGraph



def reference_block_forward(block, x, mask):
    """PPGNBlock.forward written channels-last with the explicit concatenations."""
    keep = _pair_keep(mask, x.dtype).squeeze(0).unsqueeze(-1)
    x = x.permute(1, 2, 3, 0)
    eye = torch.diag_embed(mask.to(x.dtype)).unsqueeze(-1)
    x = torch.cat([x, eye], dim=-1)
    a = block.mlp1(torch.cat([x, x.transpose(1, 2)], dim=-1)) * keep
    b = block.mlp2(x) * keep
    y = torch.matmul(a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    out = block.skip(torch.cat([x, y], dim=-1)).permute(3, 0, 1, 2)
    if block.norm is not None:
        return block.norm(out, mask)
    return out * keep.squeeze(-1).unsqueeze(0)

def random_graph(n, p, seed, num_types=5, num_bond_types=3):
    g = nx.gnp_random_graph(n, p, seed=seed)
    data = from_networkx(g) if g.number_of_edges() else Data(edge_index=torch.empty(2, 0, dtype=torch.long))
    data.num_nodes = n
    gen = torch.Generator().manual_seed(seed)
    data.x = torch.randint(num_types, (n, 1), generator=gen)
    # one bond type per undirected edge, so both directions agree
    e = data.edge_index
    key = torch.minimum(e[0], e[1]) * n + torch.maximum(e[0], e[1])
    data.edge_attr = (key * 7 + seed) % num_bond_types + 1
    return data


def add_pair_features(data):
    """Equivariant pair channels (A^2, A^3 per pair, row-major per graph), a
    stand-in for PolynomialFeatures(level='pair') that is recomputed from the
    (possibly permuted) edge_index."""
    data = data.clone()
    batch = data.batch if getattr(data, "batch", None) is not None else torch.zeros(data.num_nodes, dtype=torch.long)
    rows = []
    for b in range(int(batch.max()) + 1):
        nodes = (batch == b).nonzero().view(-1)
        n, first = nodes.numel(), int(nodes[0])
        inside = (batch[data.edge_index[0]] == b)
        a = to_dense_adj(data.edge_index[:, inside] - first, max_num_nodes=n)[0]
        a2 = a @ a
        rows.append(torch.stack([a2, a2 @ a], dim=-1).view(n * n, 2))
    data.poly_pair_attr = torch.cat(rows)
    return data


def zinc_like_model(**kw):
    kw = dict(hidden_channels=16, num_layers=3, node_vocab=5, edge_vocab=4, poly_channels=2) | kw
    torch.manual_seed(0)
    return PPGNPlusPlus(1, **kw)


@pytest.fixture
def graphs():
    return [random_graph(n, 0.4, seed) for seed, n in enumerate([6, 9, 4, 7])]


def test_ppgn_is_permutation_invariant(graphs):
    model = zinc_like_model().eval()
    batch = Batch.from_data_list(graphs)
    assert_permutation_equivariant(lambda d: model(add_pair_features(d)), batch, output="graph")


def test_ppgn_sum_readout_is_permutation_invariant(graphs):
    model = zinc_like_model(readout="sum", norm=False).double().eval()
    batch = Batch.from_data_list(graphs)
    assert_permutation_equivariant(lambda d: model(add_pair_features(d)), batch, output="graph",
                                   atol=1e-9, rtol=1e-9)


def test_ppgn_same_output_alone_and_in_padded_batch(graphs):
    model = zinc_like_model().eval()
    alone = torch.cat([model(add_pair_features(Batch.from_data_list([g]))) for g in graphs])
    # the 9-node graph forces padding of all the others
    together = model(add_pair_features(Batch.from_data_list(graphs)))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    # a graph without `batch` attribute is a batch of one
    torch.testing.assert_close(model(add_pair_features(graphs[2])), alone[2:3], atol=1e-5, rtol=1e-5)


def test_ppgn_padding_does_not_leak(graphs):
    model = zinc_like_model().train()  # batch-norm in training mode too
    batch = add_pair_features(Batch.from_data_list(graphs))
    _, mask = model.to_dense(batch)
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    outputs = []
    hooks = [blk.register_forward_hook(lambda m, i, o: outputs.append(o)) for blk in model.blocks]
    model(batch)
    for h in hooks:
        h.remove()
    assert len(outputs) == model.num_layers
    assert (~pair_mask).any()
    for out in outputs:
        out = out.permute(1, 2, 3, 0)  # blocks are channel-major
        assert out[~pair_mask].abs().max() == 0
        assert out[pair_mask].abs().max() > 0


def test_pair_batch_norm_ignores_padded_entries():
    torch.manual_seed(0)
    norm = PairBatchNorm(3).train()
    x = torch.randn(3, 2, 4, 4)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    out = norm(x, mask)
    real = x.permute(1, 2, 3, 0)[pair_mask]
    expected = (real - real.mean(0)) / torch.sqrt(real.var(0, unbiased=False) + norm.bn.eps)
    torch.testing.assert_close(out.permute(1, 2, 3, 0)[pair_mask], expected, atol=1e-5, rtol=1e-5)
    assert out.permute(1, 2, 3, 0)[~pair_mask].abs().max() == 0
    garbage = x.clone()
    garbage.permute(1, 2, 3, 0)[~pair_mask] = 1e6
    torch.testing.assert_close(PairBatchNorm(3).train()(garbage, mask), out)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_pair_batch_norm_matches_batchnorm1d_on_the_real_rows(momentum):
    # same outputs, gradients and running statistics as nn.BatchNorm1d on the gathered rows,
    # over several training steps and then in eval mode
    torch.manual_seed(0)
    norm = PairBatchNorm(3).double()
    norm.bn.momentum = momentum
    ref = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    with torch.no_grad():
        norm.bn.weight.uniform_(0.5, 2), norm.bn.bias.uniform_(-1, 1)
    ref.load_state_dict(norm.bn.state_dict())
    for step in range(3):
        mask = torch.rand(2, 5) < 0.7
        mask[:, 0] = True
        pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
        x = (torch.randn(3, 2, 5, 5, dtype=torch.double) * 3 + step).requires_grad_()
        out = norm(x, mask)
        rows = x.permute(1, 2, 3, 0)[pair_mask]
        expected = ref(rows)
        torch.testing.assert_close(out.permute(1, 2, 3, 0)[pair_mask], expected)
        g = torch.randn_like(expected)
        grad, = torch.autograd.grad((out.permute(1, 2, 3, 0)[pair_mask] * g).sum(), x)
        grad_ref, = torch.autograd.grad((expected * g).sum(), x)
        torch.testing.assert_close(grad, grad_ref)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(norm.bn.state_dict()[key], value)
    norm.eval(), ref.eval()
    torch.testing.assert_close(norm(x, mask).permute(1, 2, 3, 0)[pair_mask],
                               ref(x.permute(1, 2, 3, 0)[pair_mask]))


def test_ppgn_distinguishes_graphs_1wl_cannot():
    # C6 and two disjoint triangles: both 2-regular on 6 nodes (same 1-WL colors),
    # but 2-FWL/PPGN tells them apart (triangles).
    c6 = from_networkx(nx.cycle_graph(6))
    tt = from_networkx(nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)))
    torch.manual_seed(0)
    model = PPGNPlusPlus(1, hidden_channels=8, num_layers=2, readout="sum", norm=False).double().eval()
    out = model(Batch.from_data_list([c6, tt]))
    assert (out[0] - out[1]).abs().item() > 1e-6


def test_ppgn_reference_zinc_config_has_about_half_a_million_parameters():
    model = PPGNPlusPlus(1, hidden_channels=95, num_layers=8, node_vocab=28, edge_vocab=4, poly_channels=12)
    count = sum(p.numel() for p in model.parameters())
    assert 400_000 <= count <= 650_000, count


def test_ppgn_gradcheck_float64():
    g = add_pair_features(Batch.from_data_list([random_graph(4, 0.6, 1), random_graph(3, 0.7, 2)]))
    torch.manual_seed(0)
    model = PPGNPlusPlus(1, hidden_channels=3, num_layers=2, node_vocab=5, poly_channels=2,
                         norm=False).double().eval()

    def fn(pair):
        d = g.clone()
        d.poly_pair_attr = pair
        return model(d)

    assert_gradcheck(fn, g.poly_pair_attr)


def test_ppgn_reset_parameters_and_repr():
    model = zinc_like_model()
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > len(before) // 2
    text = repr(model)
    assert text.startswith("PPGNPlusPlus(") and "num_layers=3" in text and "poly_channels=2" in text


def test_dense_pair_features_layout():
    values = torch.arange(4 + 9, dtype=torch.float).unsqueeze(-1)
    batch, ptr = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 2, 5])
    dense = dense_pair_features(Data(v=values), "v", batch, ptr, 3)
    assert dense.shape == (2, 3, 3, 1)
    assert dense[0, 1, 0, 0] == 2 and dense[0, 2].abs().sum() == 0 and dense[1, 2, 1, 0] == 4 + 7
    with pytest.raises(ValueError, match="node pairs"):
        dense_pair_features(Data(v=values), "v", batch, ptr, 3, num_pairs=14)


def test_dense_builders_equal_pyg():
    gen = torch.Generator().manual_seed(5)
    counts = torch.tensor([3, 1, 4])
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    batch = torch.repeat_interleave(torch.arange(3), counts)
    edges = [torch.randint(0, n, (2, 2 * n), generator=gen) + ptr[b] for b, n in enumerate(counts.tolist())]
    edge_index = torch.cat(edges, dim=1)
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]
    e = torch.randn(edge_index.size(1), 2, generator=gen, dtype=torch.float64)
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    for size in (4, 6):
        torch.testing.assert_close(dense_pairs(edge_index, batch, ptr, size, e),
                                   to_dense_adj(edge_index, batch, e, max_num_nodes=size))
        torch.testing.assert_close(dense_pairs(edge_index, batch, ptr, size, dtype=torch.float64),
                                   to_dense_adj(edge_index, batch, max_num_nodes=size).double())
        torch.testing.assert_close(dense_nodes(x, batch, ptr, size),
                                   to_dense_batch(x, batch, max_num_nodes=size)[0])
    assert_gradcheck(lambda v, w: dense_pairs(edge_index, batch, ptr, 4, v).sum(-1)
                     + dense_nodes(w, batch, ptr, 4).sum(-1).unsqueeze(-1), e, x)


def test_fixed_max_num_nodes_gives_the_same_output_and_compiles_once(graphs):
    torch.manual_seed(0)
    model = zinc_like_model().eval()
    fixed = zinc_like_model(max_num_nodes=12).eval()
    fixed.load_state_dict(model.state_dict())
    batches = [add_pair_features(Batch.from_data_list(gs)) for gs in (graphs, graphs[:3], graphs[1:] + graphs)]
    for data in batches:
        torch.testing.assert_close(fixed(data), model(data), atol=1e-5, rtol=1e-4)
    assert_compiles(fixed, batches[0], dynamic=True)
    # aot_eager: inductor adds guards on size ranges of its own (how it decomposes a
    # small matrix product, when it accumulates in a helper), which recompile a few
    # times over a wide span of batch sizes; what the model itself must not do is
    # specialise on a size, and dynamo with AOT autograd shows exactly that.
    assert_compiles_once(fixed, [(data,) for data in batches], atol=1e-5, rtol=1e-4, backend="aot_eager")
    assert "max_num_nodes=12" in repr(fixed)
    with pytest.raises(ValueError, match="more than max_num_nodes=5"):
        zinc_like_model(max_num_nodes=5).eval()(batches[0])
    with pytest.raises(ValueError, match="max_num_nodes must be >= 1"):
        PPGNPlusPlus(1, max_num_nodes=0)


def test_ppgn_bad_input_raises(graphs):
    model = zinc_like_model().eval()
    good = add_pair_features(Batch.from_data_list(graphs))

    def broken(**changes):
        d = good.clone()
        for k, v in changes.items():
            d[k] = v
        return d

    with pytest.raises(TypeError, match="integer type ids"):
        model(broken(x=good.x.float()))
    with pytest.raises(ValueError, match="outside"):
        model(broken(x=good.x + 10))
    with pytest.raises(IndexError, match="edge_index contains node"):
        model(broken(edge_index=good.edge_index + 100))
    with pytest.raises(IndexError, match="edge_index contains a negative"):
        model(broken(edge_index=good.edge_index - 100))
    with pytest.raises(ValueError, match="node pairs"):
        model(broken(poly_pair_attr=good.poly_pair_attr[:-1]))
    with pytest.raises(ValueError, match="channels"):
        model(broken(poly_pair_attr=good.poly_pair_attr[:, :1]))
    nan = good.poly_pair_attr.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="poly_pair_attr contains NaN"):  # where data enters
        ValidateGraph()(broken(poly_pair_attr=nan))
    with pytest.raises(TypeError, match="int64 or int32"):
        model(broken(edge_index=good.edge_index.float()))
    d = good.clone()
    del d.poly_pair_attr
    with pytest.raises(ValueError, match="PolynomialFeatures"):
        model(d)
    empty = Batch.from_data_list([graphs[0], Data(edge_index=torch.empty(2, 0, dtype=torch.long),
                                                  x=torch.empty(0, 1, dtype=torch.long),
                                                  edge_attr=torch.empty(0, dtype=torch.long), num_nodes=0)])
    with pytest.raises(ValueError, match="empty graph"):
        zinc_like_model(poly_channels=0).eval()(empty)
    with pytest.raises(ValueError, match="readout"):
        PPGNPlusPlus(1, readout="max")
    with pytest.raises(ValueError, match="readout_scale"):
        PPGNPlusPlus(1, readout="sum", readout_scale=0.0)


def test_sum_readout_scale_divides_diagonal_by_s_and_off_diagonal_by_s_squared():
    g = Batch.from_data_list([from_networkx(nx.cycle_graph(5)), from_networkx(nx.path_graph(4))])
    torch.manual_seed(0)
    plain = PPGNPlusPlus(1, hidden_channels=4, num_layers=2, readout="sum", norm=False).double().eval()
    scaled = PPGNPlusPlus(1, hidden_channels=4, num_layers=2, readout="sum", readout_scale=3.0,
                          norm=False).double().eval()
    scaled.load_state_dict(plain.state_dict())
    pooled = {}
    for name, model in (("plain", plain), ("scaled", scaled)):
        model.head.register_forward_hook(lambda m, inp, out, name=name: pooled.__setitem__(name, inp[0]))
        model(g)
    h = plain.hidden_channels
    torch.testing.assert_close(pooled["scaled"][:, :h], pooled["plain"][:, :h] / 3.0)
    torch.testing.assert_close(pooled["scaled"][:, h:], pooled["plain"][:, h:] / 9.0)
    assert "readout_scale=3" in repr(scaled)


@pytest.mark.parametrize("mlp_layers", [1, 2, 3])
def test_block_without_concatenations_equals_the_formula(mlp_layers):
    torch.manual_seed(0)
    block = PPGNBlock(5, 7, mlp_layers=mlp_layers, norm=False).double()
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    x = torch.randn(5, 2, 4, 4, dtype=torch.double) * pair_mask
    torch.testing.assert_close(block(x, mask), reference_block_forward(block, x, mask))


def test_pair_batch_norm_under_bfloat16_autocast_keeps_float32_statistics():
    torch.manual_seed(0)
    norm, ref = PairBatchNorm(4).train(), PairBatchNorm(4).train()
    mask = torch.rand(3, 6) < 0.7
    mask[:, 0] = True
    x = torch.randn(4, 3, 6, 6) * 2 + 5  # an offset that bfloat16 sums would blur
    expected = ref(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x.bfloat16(), mask)
    assert out.dtype == torch.bfloat16
    assert norm.bn.running_mean.dtype == torch.float32
    # the statistics match float32's up to the rounding of x itself to bfloat16
    torch.testing.assert_close(norm.bn.running_mean, ref.bn.running_mean, rtol=4e-3, atol=1e-3)
    torch.testing.assert_close(norm.bn.running_var, ref.bn.running_var, rtol=2e-2, atol=1e-3)
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=3e-2)


def test_ppgn_forward_and_backward_under_bfloat16_autocast(graphs):
    model = zinc_like_model()
    batch = add_pair_features(Batch.from_data_list(graphs))
    expected = model(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out.dtype == torch.float32  # readout and head are not rounded to bfloat16
    torch.testing.assert_close(out, expected, rtol=5e-2, atol=5e-2)
    out.sum().backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.grad is not None)

import doctest

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data

import graphequi.nn.spen as spen_module
import graphequi.nn.spen_basis as basis_module
import graphequi.nn.spen_conv as conv_module
import graphequi.nn.spen_layout as layout_module
from graphequi.nn import SPEN, SPENConv, SizeMap, build_spen, spen_conv_ragged
from graphequi.nn.spen import _bucket_step
from graphequi.nn.spen_basis import (NUM_BASIS, basis_1_to_0, basis_1_to_1, basis_1_to_2, basis_2_to_0,
                                     basis_2_to_1, basis_2_to_2)
from graphequi.nn.spen_layout import EgoNetLayout, RaggedEgoNets
from graphequi.testing import assert_compiles, assert_gradcheck, assert_permutation_equivariant
from graphequi.transforms import EgoNetBags

BASES = {(2, 2): basis_2_to_2, (2, 1): basis_2_to_1, (1, 2): basis_1_to_2, (1, 1): basis_1_to_1,
         (2, 0): basis_2_to_0, (1, 0): basis_1_to_0}


def random_graph(n, p, seed, isolated=0, hub=False):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.triu(torch.rand(n, n, generator=gen) < p, diagonal=1)
    if hub:  # one high-degree node: ego-net sizes spread over a wide range
        mask[0, 1:] = True
    mask[n - isolated:] = False
    mask[:, n - isolated:] = False
    u, v = mask.nonzero().t()
    edge_index = torch.cat([torch.stack([u, v]), torch.stack([v, u])], dim=1)
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]
    return Data(x=torch.randn(n, 3, generator=gen), edge_index=edge_index,
                edge_attr=torch.randn(edge_index.size(1), 2, generator=gen), num_nodes=n)


def model64(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("node_in_channels", 3)
    kwargs.setdefault("edge_in_channels", 2)
    return SPEN(2, hidden_channels=5, num_layers=2, **kwargs).double().eval()


def as_double(data):
    data = data.clone()
    data.x, data.edge_attr = data.x.double(), data.edge_attr.double()
    return data


def test_doctests():
    for module in (spen_module, conv_module, layout_module, basis_module):
        assert doctest.testmod(module, extraglobs={"torch": torch}).failed == 0, module.__name__


# --------------------------------------------------------------------------- bases
def _input(order, m, gen):
    shape = (2, 3, m, m) if order == 2 else (2, 3, m)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def _permute(t, perm, order):
    if order == 0:
        return t
    t = t[..., perm] if order >= 1 else t
    if order == 2:
        t = t[..., perm, :]
    return t


@pytest.mark.parametrize("orders", list(BASES))
def test_each_basis_element_is_equivariant(orders):
    i, o = orders
    gen = torch.Generator().manual_seed(1)
    m = 5
    x = _input(i, m, gen)
    out = BASES[orders](x)
    assert out.size(2) == NUM_BASIS[orders]
    for _ in range(3):
        perm = torch.randperm(m, generator=gen)
        got = BASES[orders](_permute(x, perm, i))
        for k in range(NUM_BASIS[orders]):  # element by element
            torch.testing.assert_close(got[:, :, k], _permute(out[:, :, k], perm, o))


@pytest.mark.parametrize("orders", list(BASES))
def test_basis_is_linearly_independent(orders):
    # equivariant + linearly independent + Bell-number many = a basis of the
    # equivariant maps (Maron et al. 2019, Thm. 1)
    i, _ = orders
    m = 5
    dim = m ** i
    units = torch.eye(dim, dtype=torch.float64).view((dim, 1) + (m,) * i)
    images = BASES[orders](units).reshape(dim, NUM_BASIS[orders], -1)  # [input unit, k, output]
    matrix = images.permute(1, 0, 2).reshape(NUM_BASIS[orders], -1)
    assert torch.linalg.matrix_rank(matrix) == NUM_BASIS[orders]


def conv_by_basis(conv, x1, x2):
    """SPENConv written as the linear combination of the stacked bases."""
    m = x2.size(-1)
    eye = torch.eye(m, dtype=x2.dtype)
    w = conv.basis_weights()
    y2 = (torch.einsum("dck,bckij->bdij", w["w22"], basis_2_to_2(x2))
          + torch.einsum("dck,bckij->bdij", w["w12"], basis_1_to_2(x1))
          + w["bias2"][:, 0, None, None] * eye + w["bias2"][:, 1, None, None])
    y1 = (torch.einsum("dck,bcki->bdi", w["w21"], basis_2_to_1(x2))
          + torch.einsum("dck,bcki->bdi", w["w11"], basis_1_to_1(x1)) + w["bias1"][:, None])
    return y1, y2


def _random_conv(c=(3, 4), d=(2, 5)):
    torch.manual_seed(0)
    conv = SPENConv(c, d).double()
    with torch.no_grad():
        conv.bias.normal_()
    return conv


@pytest.mark.parametrize("m", [1, 2, 6])
def test_conv_fused_matches_basis_and_is_equivariant(m):
    conv = _random_conv()
    gen = torch.Generator().manual_seed(2)
    x1 = torch.randn(4, 3, m, generator=gen, dtype=torch.float64)
    x2 = torch.randn(4, 4, m, m, generator=gen, dtype=torch.float64)
    y1, y2 = conv(x1, x2)
    r1, r2 = conv_by_basis(conv, x1, x2)
    torch.testing.assert_close(y1, r1)
    torch.testing.assert_close(y2, r2)
    perm = torch.randperm(m, generator=gen)
    p1, p2 = conv(x1[..., perm], x2[..., perm, :][..., perm])
    torch.testing.assert_close(p1, y1[..., perm])
    torch.testing.assert_close(p2, y2[..., perm, :][..., perm])


def test_conv_bad_shapes_and_repr():
    conv = SPENConv((3, 4), (2, 5))
    with pytest.raises(ValueError, match="x2 must be"):
        conv(torch.randn(2, 3, 5), torch.randn(2, 4, 5, 4))
    with pytest.raises(ValueError, match="x1 must be"):
        conv(torch.randn(2, 2, 5), torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="disagree"):
        conv(torch.randn(2, 3, 4), torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="positive"):
        SPENConv((0, 1), (1, 1))
    plain = SPENConv((3, 4), (2, 5), bias=False)
    assert plain.bias is None and "bias=False" in repr(plain)
    assert repr(conv) == "SPENConv(in=(node=3, pair=4), out=(node=2, pair=5), bias=True)"
    before = conv.weight_stats.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.weight_stats)
    w = conv.basis_weights()
    assert {k: tuple(v.shape) for k, v in w.items()} == {
        "w22": (5, 4, 15), "w12": (5, 3, 5), "w21": (2, 4, 5), "w11": (2, 3, 2),
        "bias2": (5, 2), "bias1": (2,)}
    # every stored weight is exactly one basis weight (27 blocks, no entry twice)
    total = sum(v.numel() for k, v in w.items() if k.startswith("w"))
    assert total == sum(p.numel() for n, p in conv.named_parameters() if n.startswith("weight"))


# --------------------------------------------------------------------------- slow reference
def reference_spen(model, data):
    """SPEN written as the paper states it: a Python loop over ego-nets, dense
    tensors per ego-net, dictionaries for the shared node/pair features."""
    k = 1
    n = data.num_nodes
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(data.edge_index.t().tolist())
    ego = [[r] + sorted(set(nx.single_source_shortest_path_length(g, r, cutoff=k)) - {r}) for r in range(n)]
    node_count = {u: sum(u in e for e in ego) for u in range(n)}
    pair_count = {}
    for e in ego:
        for a in e:
            for b in e:
                pair_count[a, b] = pair_count.get((a, b), 0) + 1
    hx = model.node_encoder(data.x)
    he = model.edge_encoder(data.edge_attr)
    h1 = {u: torch.cat([hx[u], torch.log1p(torch.tensor([float(node_count[u])], dtype=hx.dtype))])
          for u in range(n)}
    adj = {p: torch.zeros(1, dtype=hx.dtype) for p in pair_count}
    emb = {p: torch.zeros(he.size(1), dtype=hx.dtype) for p in pair_count}
    for j, (u, v) in enumerate(data.edge_index.t().tolist()):
        adj[u, v] = adj[u, v] + 1
        emb[u, v] = emb[u, v] + he[j]
    h2 = {p: torch.cat([adj[p], emb[p], torch.log1p(torch.tensor([float(c)], dtype=hx.dtype))])
          for p, c in pair_count.items()}
    for convs in model.convs:
        out1, out2 = {}, {}
        for e in ego:
            m = len(e)
            conv = convs[model.size_map.group(m)]
            mark = torch.zeros(m, dtype=hx.dtype)
            mark[0] = 1
            x1 = torch.stack([torch.cat([h1[u], mark[a:a + 1]]) for a, u in enumerate(e)], dim=-1)[None]
            x2 = torch.stack([torch.stack([h2[u, v] for v in e], dim=-1) for u in e], dim=-2)[None]
            y1, y2 = conv_by_basis(conv, x1, x2)
            for a, u in enumerate(e):
                out1.setdefault(u, []).append(y1[0, :, a])
                for b, v in enumerate(e):
                    out2.setdefault((u, v), []).append(y2[0, :, a, b])
        h1 = {u: torch.relu(torch.stack(vals).mean(0)) for u, vals in out1.items()}
        h2 = {p: torch.relu(torch.stack(vals).mean(0)) for p, vals in out2.items()}
    z = []
    for e in ego:
        diag = torch.stack([h2[u, u] for u in e]).mean(0)
        full = torch.stack([h2[u, v] for u in e for v in e]).mean(0)
        z.append(torch.cat([diag, full, torch.stack([h1[u] for u in e]).mean(0), h1[e[0]]]))
    return model.head(torch.stack(z).mean(0, keepdim=True))


@pytest.mark.parametrize("size_map,layout,pad", [(3, "ragged", False), ("shared", "ragged", False),
                                                 (3, "buckets", False), ("shared", "buckets", False),
                                                 ("shared", "buckets", True), (3, "buckets", True),
                                                 ("shared", "buckets", "group"), (3, "buckets", "group")])
def test_matches_slow_per_subgraph_reference(size_map, layout, pad):
    model = model64(size_map=size_map, norm="none", layout=layout, pad=pad)
    graphs = [random_graph(9, 0.3, 0, isolated=1, hub=True), random_graph(6, 0.5, 1),
              random_graph(5, 0.2, 2, isolated=2)]
    graphs = [as_double(g) for g in graphs]
    batch = Batch.from_data_list([EgoNetBags()(g) for g in graphs])
    sizes = set(batch.ego_size.tolist())
    assert len(sizes) >= 4 and 1 in sizes and max(sizes) > 3  # mixed sizes, merged groups in use
    got = model(batch)
    expected = torch.cat([reference_spen(model, g) for g in graphs])
    torch.testing.assert_close(got, expected)


def test_padded_buckets():
    data = EgoNetBags()(random_graph(12, 0.3, 9, isolated=1, hub=True))
    exact = EgoNetLayout.from_data(data)
    padded = EgoNetLayout.from_data(data, SizeMap.shared(), pad=True)
    sizes = sorted(set(data.ego_size.tolist()))
    assert [b.size for b in exact.buckets] == sizes
    assert len(padded.buckets) < len(sizes) and padded.padded
    for b in padded.buckets:
        m = b.size
        true = b.sizes if b.sizes is not None else torch.full((b.subgraphs.numel(),), m)
        assert int(true.max()) == m and int(true.min()) > m // 2  # one power-of-two range, no wider
        assert torch.equal(true, data.ego_size[b.subgraphs])
        assert torch.equal(b.nodes == data.num_nodes, torch.arange(m) >= true[:, None])
    for layout in (exact, padded):
        assert torch.equal(layout.node_count, torch.bincount(data.ego_node, minlength=data.num_nodes))
        assert torch.equal(layout.pair_count, torch.bincount(data.ego_pair, minlength=layout.num_pairs))
    # per-size weight groups never share a bucket
    grouped = EgoNetLayout.from_data(data, SizeMap.up_to(3), pad=True)
    assert [b.size for b in grouped.buckets if b.group < 3] == [s for s in sizes if s <= 3]
    # pad="group": one bucket per weight group, padded to its largest ego-net
    single = EgoNetLayout.from_data(data, SizeMap.shared(), pad="group")
    assert len(single.buckets) == 1 and single.buckets[0].size == max(sizes)
    assert torch.equal(single.pair_count, exact.pair_count)
    per_group = EgoNetLayout.from_data(data, SizeMap.up_to(3), pad="group")
    assert [b.size for b in per_group.buckets] == [s for s in sizes if s <= 3] + [max(sizes)]
    with pytest.raises(ValueError, match="pad must be one of"):
        EgoNetLayout.from_data(data, pad="max")


def _ragged_case(size_map=None, seed=10):
    gen = torch.Generator().manual_seed(seed)
    graphs = [random_graph(9, 0.3, seed, isolated=1, hub=True), random_graph(6, 0.5, seed + 1)]
    batch = Batch.from_data_list([EgoNetBags()(g) for g in graphs])
    ego = RaggedEgoNets.from_data(batch, size_map)
    x1 = torch.randn(ego.node_index.numel(), 3, generator=gen, dtype=torch.float64)
    x2 = torch.randn(ego.pair_index.numel(), 4, generator=gen, dtype=torch.float64)
    return batch, ego, x1, x2


def _ragged_by_loop(convs, ego, x1, x2):
    """Every ego-net's rows through its group's SPENConv, one ego-net at a time."""
    out1, out2 = [], []
    groups = [g for g, count, _, _ in ego.groups for _ in range(count)]
    for s, m in enumerate(ego.sizes.tolist()):
        v = x1[ego.node_ptr[s]:ego.node_ptr[s + 1]].t().reshape(1, -1, m)
        x = x2[ego.pair_ptr[s]:ego.pair_ptr[s + 1]].t().reshape(1, -1, m, m)
        y1, y2 = convs[groups[s]](v, x)
        out1.append(y1[0].t())
        out2.append(y2[0].permute(1, 2, 0).reshape(m * m, -1))
    return torch.cat(out1), torch.cat(out2)


@pytest.mark.parametrize("size_map", [None, SizeMap.up_to(3)])
def test_ragged_layer_matches_per_ego_net_conv(size_map):
    _, ego, x1, x2 = _ragged_case(size_map)
    convs = [_random_conv((3, 4), (2, 5)) for _ in range((size_map or SizeMap.shared()).num_groups)]
    for i, conv in enumerate(convs):  # distinct weights per group
        with torch.no_grad():
            for p in conv.parameters():
                p.add_(0.1 * i)
    assert len(ego.groups) == (1 if size_map is None else 4)
    got = spen_conv_ragged(convs, ego, x1, x2)
    expected = _ragged_by_loop(convs, ego, x1, x2)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    # the hand-built transposes of the layout's CSR matrices carry the gradients
    assert_gradcheck(lambda a, b: spen_conv_ragged(convs, ego, a, b), x1, x2)


def test_ragged_layout_structure():
    batch, ego, _, _ = _ragged_case(SizeMap.up_to(3))
    # subgraphs sorted by weight group, every node's and pair's ego-nets counted as in the data
    group = torch.tensor([SizeMap.up_to(3).group(m) for m in ego.sizes.tolist()])
    assert bool((group[1:] >= group[:-1]).all())
    assert torch.equal(torch.sort(ego.subgraphs).values, torch.arange(batch.num_nodes))
    assert torch.equal(ego.sizes, batch.ego_size[ego.subgraphs])
    assert torch.equal(ego.node_count, torch.bincount(batch.ego_node, minlength=batch.num_nodes))
    assert torch.equal(ego.pair_count, torch.bincount(batch.ego_pair, minlength=ego.num_pairs))
    assert torch.equal(ego.transpose[ego.transpose], torch.arange(ego.pair_index.numel()))
    # pair (a, b) and its transpose hold the global pairs (u, v) and (v, u); the diagonal (u, u)
    u, v = batch.ego_pair_index[:, ego.pair_index]
    assert torch.equal(u[ego.transpose], v) and torch.equal(v[ego.transpose], u)
    assert torch.equal(u[ego.diagonal], ego.node_index) and torch.equal(v[ego.diagonal], ego.node_index)
    assert torch.equal(ego.node_index[ego.node_ptr[:-1]], ego.subgraphs)  # the centre comes first
    assert torch.equal(ego.center.view(-1).nonzero().view(-1), ego.node_ptr[:-1])


def test_ragged_and_buckets_agree_with_gradients():
    graphs = [as_double(random_graph(n, 0.3, s, isolated=s % 2, hub=s == 0)) for s, n in enumerate((9, 6, 11))]
    batch = Batch.from_data_list([EgoNetBags()(g) for g in graphs])
    for size_map in (3, "shared"):
        ragged, buckets = model64(size_map=size_map).train(), model64(size_map=size_map, layout="buckets").train()
        out_r, out_b = ragged(batch), buckets(batch)
        torch.testing.assert_close(out_r, out_b)
        out_r.square().sum().backward()
        out_b.square().sum().backward()
        for (name, p), q in zip(ragged.named_parameters(), buckets.parameters()):
            torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_ragged_layer_compiles_and_checks_shapes():
    _, ego, x1, x2 = _ragged_case(SizeMap.up_to(3))
    convs = [SPENConv((3, 4), (2, 5)).double() for _ in range(4)]
    assert_compiles(lambda a, b: spen_conv_ragged(convs, ego, a, b), x1, x2)
    with pytest.raises(ValueError, match="local rows of the ego-nets"):
        spen_conv_ragged(convs, ego, x1[:-1], x2)
    with pytest.raises(ValueError, match="local rows of the ego-nets"):
        spen_conv_ragged(convs, ego, x1, x2[:, :3])


def test_batching_invariance_and_determinism():
    model = model64()
    graphs = [random_graph(n, 0.3, s, isolated=s % 2, hub=s == 0) for s, n in enumerate((8, 5, 11, 3))]
    bags = [EgoNetBags()(as_double(g)) for g in graphs]
    batched = model(Batch.from_data_list(bags))
    torch.testing.assert_close(batched, torch.cat([model(b) for b in bags]))
    assert torch.equal(batched, model(Batch.from_data_list(bags)))


@pytest.mark.parametrize("hops", [1, 2])
def test_invariant_to_node_and_edge_permutations(hops):
    model = model64()
    transform = EgoNetBags(num_hops=hops)
    data = as_double(random_graph(10, 0.3, 3, isolated=1, hub=True))
    assert_permutation_equivariant(lambda d: model(transform(d)), data, output="graph", trials=3)
    batch = Batch.from_data_list([as_double(random_graph(n, 0.4, s)) for s, n in enumerate((6, 8))])
    assert_permutation_equivariant(
        lambda b: model(Batch.from_data_list([transform(g) for g in b.to_data_list()])), batch,
        output="graph", trials=2)


def test_gradcheck_tiny_graph():
    model = model64(norm="none")
    data = EgoNetBags()(as_double(random_graph(4, 0.6, 4, isolated=1)))

    def fn(x, edge_attr):
        d = data.clone()
        d.x, d.edge_attr = x, edge_attr
        return model(d)

    assert_gradcheck(fn, data.x, data.edge_attr)


def test_compiles_inside_a_size_bucket():
    # one bucket through one layer (gather, SPENConv, flatten): the whole per-size work
    gen = torch.Generator().manual_seed(5)
    data = EgoNetBags()(random_graph(9, 0.4, 6))
    layout = EgoNetLayout.from_data(data)
    h1 = torch.randn(data.num_nodes, 2, generator=gen)
    h2 = torch.randn(layout.num_pairs, 4, generator=gen)
    x1, x2 = max(layout.gather(h1, h2), key=lambda t: t[0].size(0))
    conv = SPENConv((3, 4), (2, 5))
    assert_compiles(lambda a, b: _bucket_step(conv, a, b), x1, x2)
    padded = EgoNetLayout.from_data(data, SizeMap.shared(), pad=True)
    bucket, (x1, x2) = next((b, t) for b, t in zip(padded.buckets, padded.gather(h1, h2))
                            if b.sizes is not None)
    assert_compiles(lambda a, b, s: _bucket_step(conv, a, b, s), x1, x2, bucket.sizes)


def test_isolated_nodes_and_edgeless_graph():
    model = model64(norm="none")
    data = as_double(random_graph(5, 0.0, 7))
    assert data.edge_index.numel() == 0
    out = model(EgoNetBags()(data))
    torch.testing.assert_close(out, reference_spen(model, data))


def test_bad_input():
    model = model64()
    data = EgoNetBags()(as_double(random_graph(6, 0.5, 8)))
    with pytest.raises(ValueError, match="EgoNetBags"):
        model(as_double(random_graph(6, 0.5, 8)))
    bad = data.clone()
    bad.x = bad.x[:-1]
    with pytest.raises(ValueError, match="data.x has 5 rows"):
        model(bad)
    bad = data.clone()
    bad.edge_attr = bad.edge_attr[:-1]
    with pytest.raises(ValueError, match="edge_attr has"):
        model(bad)
    bad = data.clone()
    bad.ego_node = bad.ego_node[:-1]
    with pytest.raises(ValueError, match="do not match ego_size"):
        model(bad)
    bad = data.clone()
    bad.ego_size = bad.ego_size.float()
    with pytest.raises(TypeError, match="int64"):
        model(bad)
    bad = data.clone()
    del bad.x
    with pytest.raises(ValueError, match="data.x` is missing"):
        model(bad)
    empty = data.clone()
    empty.num_nodes = 0
    for key in ("ego_size", "ego_node", "ego_pair"):
        empty[key] = empty[key][:0]
    empty.x = empty.x[:0]
    empty.edge_index = empty.edge_index[:, :0]
    empty.edge_attr = empty.edge_attr[:0]
    empty.ego_edge_pair = empty.ego_edge_pair[:0]
    empty.ego_pair_index = empty.ego_pair_index[:, :0]
    with pytest.raises(ValueError, match="empty graph"):
        model(empty)
    with pytest.raises(ValueError, match="SizeMap edges"):
        SizeMap((3, 2))
    with pytest.raises(ValueError, match="norm"):
        SPEN(1, norm="layer")
    with pytest.raises(ValueError, match="size_map"):
        SPEN(1, size_map="per-node")
    with pytest.raises(ValueError, match="layout must be"):
        SPEN(1, layout="dense")
    with pytest.raises(ValueError, match="needs layout='buckets'"):
        SPEN(1, pad=True)


def test_size_map_groups_and_builder():
    shared = SPEN(1, hidden_channels=4, num_layers=2, size_map="shared")
    assert all(len(c) == 1 for c in shared.convs)
    per_size = SPEN(1, hidden_channels=4, num_layers=2, size_map=SizeMap.up_to(4))
    assert all(len(c) == 5 for c in per_size.convs)
    assert "size_groups=5" in repr(per_size) and repr(per_size).endswith("layout='ragged')")
    assert repr(SPEN(1, layout="buckets", pad=True)).endswith("pad=True)")

    class Task:
        num_outputs, node_vocab, node_in_channels, edge_vocab, edge_in_channels = 3, None, 7, None, None

    model = build_spen(Task(), hidden_channels=8, num_layers=1)
    assert model.node_encoder.in_channels == 7 and model.out_channels == 3

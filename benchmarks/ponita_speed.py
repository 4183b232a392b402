"""PONITA speed and memory: the separable convolution against a
non-separable [E, O, O] one and a plain EGNN layer, forward+backward per
batch at n-body and aspirin sizes; plus the equivariance error of grid-mode
PONITA against the grid size (and with frame averaging).

Anchors, alternated in one run, medians:

* ``ponita (separable)``: graphequi's :class:`Ponita` (spatial kernel
  [E, O, C] then fiber kernel [O, O, C]);
* ``non-separable``: the same network with one kernel [E, O, O, C] on the
  three invariants (a, b, c) of every (target orientation, source
  orientation) pair, as a full R^3 x S^2 group convolution (written here);
* ``egnn``: Satorras et al.'s E(n)-GNN layer (written here, same width and depth);
* ``e3nn (NequIP-style)``, when e3nn is importable (the optional ``bench``
  extra, ``pip install graphequi[bench]``): a tensor-product convolution
  with features ``C x 0e + C x 1o + C x 2e`` and spherical harmonics up to
  l = 2, per-edge path weights from a radial MLP, a gate nonlinearity and a
  residual (:class:`E3nnConv`, written here on e3nn's public modules).

A second table compares **one layer** at equal width C: a PONITA block
(:class:`~graphequi.nn.ponita.PonitaBlock`: separable conv on [N, O, C]
plus its ConvNeXt MLP) against one :class:`E3nnConv`, each given the
per-forward geometry it shares between layers (PONITA's kernel bases, e3nn's
spherical harmonics and radial embedding), forward + backward.

Memory is the bytes autograd saves for backward (activations), measured
with saved-tensor hooks, plus peak CUDA memory on ``--device cuda``.

    python benchmarks/ponita_speed.py            # hidden 64, 4 layers, O = 12
    python benchmarks/ponita_speed.py --small    # seconds; used by a smoke test

Writes ``benchmarks/results/ponita_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from graphequi import ops
from graphequi.geometry import (bundle_fiber_invariants, bundle_spatial_invariants, edge_vectors,
                                fibonacci_sphere, fully_connected_graph, radius_graph, safe_norm)
from graphequi.nn import FrameAveraging, Ponita
from graphequi.nn.ponita import KernelBasis, csr_adjacency
from graphequi.testing import random_rotation

RESULTS = Path(__file__).resolve().parent / "results"

try:
    from e3nn import o3
    from e3nn.math import soft_one_hot_linspace
    from e3nn.nn import FullyConnectedNet, Gate
    E3NN = __import__("e3nn").__version__
except ImportError:
    o3, E3NN = None, None

E3NN_LMAX, E3NN_RADIAL, E3NN_CUTOFF = 2, 8, 5.0


def e3nn_geometry(pos, edge_index):
    """What an e3nn convolution computes once per forward: the spherical
    harmonics of the edge vectors ``[E, 9]`` and their radial embedding ``[E, R]``."""
    rel = edge_vectors(pos, edge_index)
    sh = o3.spherical_harmonics(o3.Irreps.spherical_harmonics(E3NN_LMAX), rel, normalize=True,
                                normalization="component")
    radial = soft_one_hot_linspace(rel.norm(dim=-1), 0.0, E3NN_CUTOFF, E3NN_RADIAL, basis="bessel",
                                   cutoff=True) * E3NN_RADIAL ** 0.5
    return sh, radial


class E3nnConv(nn.Module):
    """One NequIP-style interaction: linear, tensor-product convolution with
    the edge harmonics (``uvu`` paths to l <= 2, weights per edge from a radial
    MLP), sum over neighbours, linear, gate, residual."""

    def __init__(self, channels):
        super().__init__()
        c = channels
        self.irreps = o3.Irreps(f"{c}x0e + {c}x1o + {c}x2e")
        sh = o3.Irreps.spherical_harmonics(E3NN_LMAX)
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(self.irreps):
            for j, (_, ir_sh) in enumerate(sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in self.irreps:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        self.lin_in = o3.Linear(self.irreps, self.irreps)
        self.tp = o3.TensorProduct(self.irreps, sh, o3.Irreps(mid), instructions,
                                   shared_weights=False, internal_weights=False)
        self.radial = FullyConnectedNet([E3NN_RADIAL, 64, self.tp.weight_numel], torch.nn.functional.silu)
        gated = o3.Irreps(f"{c}x1o + {c}x2e")
        self.gate = Gate(o3.Irreps(f"{c}x0e"), [torch.nn.functional.silu], o3.Irreps(f"{2 * c}x0e"),
                         [torch.sigmoid], gated)
        self.lin_out = o3.Linear(o3.Irreps(mid).simplify(), self.gate.irreps_in)
        self.mid = o3.Irreps(mid)

    def forward(self, h, edge_index, sh, radial):
        src, dst = edge_index
        msg = self.tp(self.lin_in(h).index_select(0, src), sh, self.radial(radial))
        agg = ops.scatter(msg, dst, 0, h.size(0), "sum")
        return h + self.gate(self.lin_out(agg))


class E3nnModel(nn.Module):
    """Embedding, ``num_layers`` :class:`E3nnConv`, an invariant and a vector readout."""

    def __init__(self, in_scalars, hidden, num_layers):
        super().__init__()
        self.convs = nn.ModuleList(E3nnConv(hidden) for _ in range(num_layers))
        irreps = self.convs[0].irreps
        self.embed = o3.Linear(o3.Irreps(f"{in_scalars}x0e + 1x1o"), irreps)
        self.readout = o3.Linear(irreps, o3.Irreps("1x0e + 1x1o"))

    def forward(self, data):
        sh, radial = e3nn_geometry(data.pos, data.edge_index)
        h = self.embed(torch.cat([data.x, data.vec[:, 0]], -1))
        for conv in self.convs:
            h = conv(h, data.edge_index, sh, radial)
        out = self.readout(h)
        return out[:, 0], out[:, 1:]


def layer_step(name, hidden, num_ori, data):
    """A closure running one layer forward+backward on its precomputed
    per-forward geometry, and the layer's parameter count."""
    torch.manual_seed(0)
    n, device = data.num_nodes, data.pos.device
    if name.startswith("ponita block"):
        net = Ponita(data.x.size(1), hidden, 1, in_vectors=1, num_layers=1, num_ori=num_ori).to(device)
        grid = net.grid
        with torch.no_grad():
            spatial = net.spatial_basis(bundle_spatial_invariants(edge_vectors(data.pos, data.edge_index), grid))
            fiber = net.fiber_basis(bundle_fiber_invariants(grid))
        block = net.blocks[0]
        h = torch.randn(n, num_ori, hidden, device=device, requires_grad=True)
        adj = data.edge_index  # "(edge_index)": gathered [E, O, C] messages, then a scatter
        if name == "ponita block":  # the adjacency as Ponita.forward shares it between layers
            adj, (spatial,) = csr_adjacency(adj, n, spatial)
        return (lambda: block(h, adj, spatial, fiber, None).square().sum()), \
            sum(p.numel() for p in block.parameters())
    conv = E3nnConv(hidden).to(device)
    with torch.no_grad():
        sh, radial = e3nn_geometry(data.pos, data.edge_index)
    h = torch.randn(n, conv.irreps.dim, device=device, requires_grad=True)
    return (lambda: conv(h, data.edge_index, sh, radial).square().sum()), \
        sum(p.numel() for p in conv.parameters())


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class NonSeparablePonita(nn.Module):
    """Grid features [N, O, C]; per layer one kernel k[e, o, l, c] of
    (r.o, |r - (r.o)o|, o.l): y[i, o] = sum_j (1/O) sum_l k[e, o, l] * x[j, l]."""

    def __init__(self, in_scalars, hidden, num_layers, num_ori, in_vectors=1):
        super().__init__()
        self.register_buffer("grid", fibonacci_sphere(num_ori))
        self.basis = KernelBasis(3, hidden, hidden)
        self.embed = nn.Linear(in_scalars + in_vectors, hidden)
        self.kernels = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(num_layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, 4 * hidden), nn.GELU(),
                                                nn.Linear(4 * hidden, hidden)) for _ in range(num_layers))
        self.readout = nn.Linear(hidden, 2)

    def forward(self, data):
        grid, ei = self.grid, data.edge_index
        rel = edge_vectors(data.pos, ei)
        a = rel @ grid.T                                                   # [E, O]
        b = safe_norm(rel[:, None] - a[..., None] * grid[None])            # [E, O]
        c = grid @ grid.T                                                  # [O, O]
        o = grid.size(0)
        inv = torch.stack([a[:, :, None].expand(-1, -1, o), b[:, :, None].expand(-1, -1, o),
                           c[None].expand(a.size(0), -1, -1)], -1)         # [E, O, O, 3]
        basis = self.basis(inv)                                            # [E, O, O, B]
        feats = torch.cat([data.x[:, None].expand(-1, o, -1), torch.einsum("nvd,od->nov", data.vec, grid)], -1)
        h = self.embed(feats)
        for kernel, mlp in zip(self.kernels, self.mlps):
            k = kernel(basis)                                              # [E, O, O, C]
            msg = torch.einsum("eolc,elc->eoc", k, h.index_select(0, ei[0])) / o
            h = h + mlp(ops.scatter(msg, ei[1], 0, h.size(0), "sum"))
        out = self.readout(h)
        return out[..., 0].mean(1), torch.einsum("no,od->nd", out[..., 1], grid) / o


class EGNNLayer(nn.Module):
    """h_i' = h_i + phi_h(h_i, sum_j m_ij), x_i' = x_i + mean_j (x_i - x_j) phi_x(m_ij),
    m_ij = phi_e(h_i, h_j, |x_i - x_j|^2) (Satorras et al., 2021)."""

    def __init__(self, hidden):
        super().__init__()
        self.edge = nn.Sequential(nn.Linear(2 * hidden + 1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.coord = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.node = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h, x, ei):
        src, tgt = ei
        rel = x[tgt] - x[src]
        m = self.edge(torch.cat([h[tgt], h[src], (rel * rel).sum(-1, keepdim=True)], -1))
        x = x + ops.scatter(rel * self.coord(m), tgt, 0, x.size(0), "mean")
        return h + self.node(torch.cat([h, ops.scatter(m, tgt, 0, h.size(0), "sum")], -1)), x


class EGNN(nn.Module):
    def __init__(self, in_scalars, hidden, num_layers):
        super().__init__()
        self.embed = nn.Linear(in_scalars + 1, hidden)
        self.layers = nn.ModuleList(EGNNLayer(hidden) for _ in range(num_layers))
        self.out = nn.Linear(hidden, 1)

    def forward(self, data):
        h = self.embed(torch.cat([data.x, data.vec.norm(dim=-1)], -1))
        x = data.pos
        for layer in self.layers:
            h, x = layer(h, x, data.edge_index)
        return self.out(h)[:, 0], x - data.pos


def make_batch(kind, batch_size, device):
    gen = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(batch_size):
        if kind == "nbody":
            pos = torch.randn(5, 3, generator=gen)
            x = torch.randint(0, 2, (5, 1), generator=gen).float() * 2 - 1
            ei = fully_connected_graph(5)
        else:   # aspirin-sized: 21 atoms, ~1.4 A spacing, radius 5 A
            pos = torch.randn(21, 3, generator=gen) * 1.6
            x = torch.nn.functional.one_hot(torch.randint(0, 3, (21,), generator=gen), 3).float()
            ei = radius_graph(pos, 5.0)
        graphs.append(Data(pos=pos, x=x, vec=torch.randn(pos.size(0), 1, 3, generator=gen), edge_index=ei))
    return Batch.from_data_list(graphs).to(device)


def saved_bytes(fn):
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


def step(model, data):
    def run():
        out = model(data)
        parts = [t for t in (out if isinstance(out, tuple) else (out,)) if t is not None]
        return sum(p.square().sum() for p in parts)
    return run


def equivariance_errors(orientations, hidden, layers):
    """max |f(Rp) - R f(p)| / max |f(p)| of node vectors, float64, random weights."""
    gen = torch.Generator().manual_seed(1)
    pos = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    data = Data(pos=pos, x=torch.randn(8, 1, generator=gen, dtype=torch.float64),
                vec=torch.randn(8, 1, 3, generator=gen, dtype=torch.float64), edge_index=fully_connected_graph(8))
    rots = [random_rotation(gen, reflect=k % 2 == 1) for k in range(6)]
    rows = []
    torch.set_grad_enabled(False)
    for o in orientations:
        torch.manual_seed(0)
        net = Ponita(1, hidden, 1, in_vectors=1, out_vectors=1, num_layers=layers, num_ori=o,
                     task_level="node", layer_scale=None).double()
        for name, model in (("ponita", net), ("ponita + FA(E3)", FrameAveraging(net))):
            ref = model(data).vector
            errs = []
            for rot in rots:
                moved = data.clone()
                moved.pos, moved.vec = pos @ rot.T + 0.5, data.vec @ rot.T
                errs.append(float((model(moved).vector - ref @ rot.T).abs().max() / ref.abs().max()))
            rows.append({"num_ori": o, "model": name, "rel_error": max(errs)})
    torch.set_grad_enabled(True)
    return rows


def fiber_mix_table(sizes, args, device):
    """The fiber kernel alone (``[O, O, C]`` times the ``[N, O, C]`` features of
    every node, forward + backward for both): ``graphequi.ops.depthwise_mix``
    against the ``torch.einsum`` a user would write, alternated, medians."""
    print(f"\n| workload | fiber mix [N, O, C] (C = {args.hidden}) | einsum ms | depthwise_mix ms | einsum / depthwise_mix |")
    print("|---|---|---|---|---|")
    rows = []
    for label, (kind, bs) in sizes.items():
        n = make_batch(kind, bs, device).num_nodes
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, args.num_ori, args.hidden, generator=gen).to(device).requires_grad_(True)
        w = torch.randn(args.num_ori, args.num_ori, args.hidden, generator=gen).to(device).requires_grad_(True)
        fns = {"einsum": lambda: torch.einsum("olc,nlc->noc", w, x).square().sum(),
               "depthwise_mix": lambda: ops.depthwise_mix(w, x).square().sum()}
        times = {name: [] for name in fns}
        for round_ in range(5 * args.repeats + 1):      # round 0 warms up
            for name, fn in fns.items():
                t = timed(fn, device)
                if round_:
                    times[name].append(t)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        row = {"workload": label, "nodes": n, "num_ori": args.num_ori, "channels": args.hidden,
               "einsum_ms": ms["einsum"], "depthwise_mix_ms": ms["depthwise_mix"],
               "ratio": ms["einsum"] / ms["depthwise_mix"]}
        rows.append(row)
        print(f"| {label} | [{n}, {args.num_ori}, {args.hidden}] | {ms['einsum']:.2f} | {ms['depthwise_mix']:.2f} | "
              f"{row['ratio']:.2f} |")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--num-ori", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--layers-only", action="store_true",
                        help="only the per-layer table (PONITA block, fused and gathered, against e3nn)")
    parser.add_argument("--out", default=str(RESULTS / "ponita_speed.json"))
    args = parser.parse_args(argv)
    if args.small:
        args.hidden, args.layers, args.num_ori, args.repeats = 8, 1, 4, 1
    device = torch.device(args.device)
    sizes = {"nbody (100 x 5 atoms)": ("nbody", 4 if args.small else 100),
             "aspirin (5 x 21 atoms, r=5)": ("aspirin", 1 if args.small else 5)}
    rows = []
    print("| workload | N | E | model | fwd+bwd ms | ratio to separable | saved MB | peak CUDA MB |")
    print("|---|---|---|---|---|---|---|---|")
    for label, (kind, bs) in ({} if args.layers_only else sizes).items():
        data = make_batch(kind, bs, device)
        in_s = data.x.size(1)
        torch.manual_seed(0)
        models = {
            "ponita (separable)": Ponita(in_s, args.hidden, 1, in_vectors=1, out_vectors=1, num_layers=args.layers,
                                         num_ori=args.num_ori, task_level="node"),
            "non-separable": NonSeparablePonita(in_s, args.hidden, args.layers, args.num_ori),
            "egnn": EGNN(in_s, args.hidden, args.layers),
        }
        if o3 is not None:
            models["e3nn (NequIP-style)"] = E3nnModel(in_s, args.hidden, args.layers)
        models = {k: m.to(device) for k, m in models.items()}
        mem, peak = {}, {}
        for name, model in models.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            loss, mem[name] = saved_bytes(step(model, data))
            loss.backward()
            peak[name] = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else None
        times = {name: [] for name in models}
        for _ in range(1):   # warm-up round, not timed
            for model in models.values():
                step(model, data)().backward()
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(timed(step(model, data), device))
        base = statistics.median(times["ponita (separable)"])
        for name in models:
            ms = 1e3 * statistics.median(times[name])
            row = {"workload": label, "nodes": data.num_nodes, "edges": data.num_edges, "model": name,
                   "ms": ms, "ratio": ms / (1e3 * base), "saved_mb": mem[name] / 2 ** 20, "peak_cuda_mb": peak[name]}
            rows.append(row)
            pk = "-" if peak[name] is None else f"{peak[name]:.0f}"
            print(f"| {label} | {data.num_nodes} | {data.num_edges} | {name} | {ms:.1f} | {row['ratio']:.2f} | "
                  f"{row['saved_mb']:.1f} | {pk} |")
    layer_rows = []
    if o3 is not None:
        print(f"\n| workload | one layer, C = {args.hidden} | params | fwd+bwd ms | e3nn / ponita |")
        print("|---|---|---|---|---|")
        for label, (kind, bs) in sizes.items():
            data = make_batch(kind, bs, device)
            layers = {name: layer_step(name, args.hidden, args.num_ori, data)
                      for name in ("ponita block", "ponita block (edge_index)", "e3nn conv")}
            times = {name: [] for name in layers}
            for round_ in range(args.repeats + 1):      # round 0 warms up
                for name, (fn, _) in layers.items():
                    t = timed(fn, device)
                    if round_:
                        times[name].append(t)
            ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
            for name, (_, params) in layers.items():
                row = {"workload": label, "layer": name, "params": params, "ms": ms[name],
                       "e3nn_over_ponita": ms["e3nn conv"] / ms["ponita block"]}
                layer_rows.append(row)
                print(f"| {label} | {name} | {params} | {ms[name]:.1f} | {row['e3nn_over_ponita']:.2f} |")
    mix_rows = fiber_mix_table(sizes, args, device)
    orientations = [] if args.layers_only else [4, 8] if args.small else [4, 8, 16, 32, 64]
    eq = equivariance_errors(orientations, 8 if args.small else 16, 1 if args.small else 2)
    print("\n| num_ori | model | relative equivariance error (vectors, max over 6 rigid motions) |")
    print("|---|---|---|")
    for r in eq:
        print(f"| {r['num_ori']} | {r['model']} | {r['rel_error']:.2e} |")
    result = {"benchmark": "ponita_speed", "device": args.device, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "hidden": args.hidden, "layers": args.layers, "num_ori": args.num_ori,
              "e3nn": E3NN or "not installed (columns skipped)", "rows": rows, "layers_table": layer_rows,
              "fiber_mix": mix_rows, "equivariance": eq}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

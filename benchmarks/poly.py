"""Benchmark of the equivariant polynomial engine (graphequi.poly).

Workloads
    * ppgn++/pair : the 12 ``select('ppgn++')`` polynomials with their own
      marks (1 invariant, 1 node-level, 10 pair-level), as PPGN++ consumes them;
    * ppgn++/node : the same, each brought to at most one mark (the second
      mark of pair-level ones unmarked, i.e. summed out);
    * basis4/node : the full node-level basis of degree 1..4 (371 polynomials);
    on random graphs with n in {38, 80, 160} in batches, and
    * zinc        : all ppgn++ features (pair level) of the 2000 official
      ZINC-12k val+test graphs, end to end through PolynomialFeatures.

Methods (all on the same inputs, in one run)
    graphequi    joint plan, every pairwise step a batched matmul;
    independent  one opt_einsum path per polynomial, same executor;
    (a) ref      per graph and polynomial ``torch.einsum`` (torch's default
                 path search): what the paper's code does;
    (b) unplanned  ``torch.einsum`` with ``torch.backends.opt_einsum.enabled = False``;
    (c) opt_einsum ``opt_einsum.contract(optimize='optimal', memory_limit=None,
                 backend='torch')`` batched over graphs.
The machine's dense matmul peak (``torch.mm`` at 2048, float32) is measured
in the same run. Results: benchmarks/results/poly.json and poly.png.

Usage: python benchmarks/poly.py [--quick] [--threads T] [--sizes 38:64,80:16]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from graphequi.datasets import default_source
from graphequi.poly import Multigraph, basis, evaluate_each, plan, select

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def timeit(fn, *, repeat: int = 3, budget: float = 30.0) -> float:
    """Best wall time of ``repeat`` calls after one warm-up (fewer if slow)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    best = first
    for _ in range(repeat):
        if time.perf_counter() - start + first > budget:
            break
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def mm_peak(size: int) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = timeit(lambda: torch.mm(a, b), repeat=5)
    return 2 * size ** 3 / seconds / 1e9


def random_adjacency(batch: int, n: int, avg_degree: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    upper = (torch.rand(batch, n, n, generator=gen) < avg_degree / (n - 1)).float().triu(1)
    return upper + upper.transpose(1, 2)


def to_node_level(g: Multigraph) -> Multigraph:
    return Multigraph(g.num_nodes, g.edges, g.marked[:1], g.directed) if g.num_marks == 2 else g


def workloads(quick: bool) -> dict[str, tuple[Multigraph, ...]]:
    ppgn = select("ppgn++", 6)
    return {
        "ppgn++/pair": ppgn,
        "ppgn++/node": tuple(to_node_level(g) for g in ppgn),
        "basis4/node": tuple(g for d in range(1, 4 if quick else 5) for g in basis(d, 1)),
    }


def einsum_parts(g: Multigraph) -> tuple[str, str, int]:
    """(inputs, output, isolated unmarked nodes) of the product over edges;
    isolated marks are dropped from the output (they only broadcast)."""
    inputs, output = g.einsum_equation().split("->")
    present = set(inputs) - {","}
    isolated = sum(1 for v in g.isolated_nodes() if v not in g.marked)
    return inputs, "".join(c for c in output if c in present), isolated


def broadcast(value, g: Multigraph, n: int, isolated: int, batched: bool):
    """Put isolated marks back as broadcast axes; isolated nodes multiply by n."""
    value = value * n ** isolated if isolated else value
    lead = 1 if batched else 0
    live = [m for m in g.marked if m not in g.isolated_nodes()]
    for pos, m in enumerate(g.marked):
        if m not in live:
            value = value.unsqueeze(lead + pos)
    return value.expand(value.shape[:lead] + (n,) * g.num_marks)


def reference_a(polys, A, graphs: int):
    """Per graph, per polynomial torch.einsum (default path search)."""
    n = A.shape[-1]
    for b in range(graphs):
        for g in polys:
            inputs, output, isolated = einsum_parts(g)
            out = broadcast(torch.einsum(f"{inputs}->{output}", *([A[b]] * g.degree)), g, n,
                            isolated, batched=False)
            del out


def reference_b(polys, A, graphs: int):
    enabled = torch.backends.opt_einsum.enabled
    torch.backends.opt_einsum.enabled = False
    try:
        reference_a(polys, A, graphs)
    finally:
        torch.backends.opt_einsum.enabled = enabled


def reference_c(polys, A):
    """opt_einsum 'optimal' with no memory limit, torch backend, batched."""
    import opt_einsum

    n = A.shape[-1]
    for g in polys:
        inputs, output, isolated = einsum_parts(g)
        batched = ",".join("Z" + op for op in inputs.split(",")) + "->Z" + output
        broadcast(opt_einsum.contract(batched, *([A] * g.degree), optimize="optimal",
                                      memory_limit=None, backend="torch"), g, n, isolated, batched=True)


def bench_random(name, polys, n, batch, quick, peak, seed=0):
    A = random_adjacency(batch, n, 4.0, seed)
    joint, indep = plan(polys, n), plan(polys, n, strategy="independent")
    flops = joint.count_flops(n)
    flops_indep = indep.count_flops(n)
    row = {"workload": name, "n": n, "batch": batch, "num_polys": len(polys),
           "plan_flops_per_graph": flops, "independent_flops_per_graph": flops_indep,
           "matmul_steps": joint.num_steps, "layout_copies": joint.num_copies}
    t_joint = timeit(lambda: evaluate_each(polys, A)) / batch
    t_indep = timeit(lambda: evaluate_each(polys, A, strategy="independent")) / batch
    row.update(ms_per_graph=1e3 * t_joint, independent_ms_per_graph=1e3 * t_indep,
               gflops=flops / t_joint / 1e9, fraction_of_peak=flops / t_joint / 1e9 / peak,
               independent_gflops=flops_indep / t_indep / 1e9,
               independent_fraction_of_peak=flops_indep / t_indep / 1e9 / peak,
               joint_vs_independent=t_indep / t_joint)
    ref_graphs = 1 if (quick or n >= 80 or len(polys) > 50) else 2
    budget = 20.0 if quick else 120.0
    row["ref_a_ms_per_graph"] = 1e3 * timeit(lambda: reference_a(polys, A, ref_graphs), repeat=1,
                                             budget=budget) / ref_graphs
    if n <= 38 and len(polys) <= 50:
        row["ref_b_ms_per_graph"] = 1e3 * timeit(lambda: reference_b(polys, A, 1), repeat=0,
                                                 budget=budget)
    # (c) builds n^4 intermediates without a memory limit: 2.6 GB per graph at
    # n=160, at about 1 GFLOP/s; it is only timed up to n=80.
    if len(polys) <= 50 and n <= 80:
        sub = A[: min(batch, 8)]
        row["ref_c_ms_per_graph"] = 1e3 * timeit(lambda: reference_c(polys, sub), repeat=1,
                                                 budget=budget) / sub.shape[0]
    for key in ("a", "b", "c"):
        if f"ref_{key}_ms_per_graph" in row:
            row[f"speedup_vs_{key}"] = row[f"ref_{key}_ms_per_graph"] / row["ms_per_graph"]
    return row


def load_zinc(split: str):
    from torch_geometric.data import Data

    path = default_source() / "zinc12k" / "pyg_processed_subset_graphpebench" / f"{split}.pt"
    if not path.exists():
        return None
    data, slices = torch.load(path, weights_only=False)[:2]
    graphs = []
    for i in range(len(slices["x"]) - 1):
        xs, xe = int(slices["x"][i]), int(slices["x"][i + 1])
        es, ee = int(slices["edge_index"][i]), int(slices["edge_index"][i + 1])
        ei = data.edge_index[:, es:ee]
        if ei.numel() and ei.max() >= xe - xs:  # stored with global ids
            ei = ei - xs
        graphs.append(Data(x=data.x[xs:xe], edge_index=ei, edge_attr=data.edge_attr[es:ee],
                           y=data.y[i:i + 1], num_nodes=xe - xs))
    return graphs


def bench_zinc(quick: bool, peak: float):
    from graphequi.transforms import PolynomialFeatures

    val, test = load_zinc("val"), load_zinc("test")
    if val is None or test is None:
        return None
    graphs = val + test
    if quick:
        graphs = graphs[:100]
    transform = PolynomialFeatures("ppgn++", level="pair")
    transform.apply_to_dataset(graphs[:64], progress=False)  # warm the plan caches
    start = time.perf_counter()
    out = transform.apply_to_dataset(graphs, batch_size=256, progress=False)
    seconds = time.perf_counter() - start
    assert len(out) == len(graphs)
    sizes = [g.num_nodes for g in graphs]
    polys = transform.polys
    ref_graphs = graphs[:5] if quick else graphs[:40]
    dense = [torch.zeros(g.num_nodes, g.num_nodes).index_put_(tuple(g.edge_index), torch.tensor(1.0))
             for g in ref_graphs]
    start = time.perf_counter()
    for A in dense:
        reference_a(polys, A.unsqueeze(0), 1)
    ref_per_graph = (time.perf_counter() - start) / len(dense)
    return {"workload": "zinc ppgn++/pair (PolynomialFeatures.apply_to_dataset)",
            "graphs": len(graphs), "mean_n": sum(sizes) / len(sizes), "max_n": max(sizes),
            "seconds_total": seconds, "ms_per_graph": 1e3 * seconds / len(graphs),
            "ref_a_ms_per_graph": 1e3 * ref_per_graph,
            "ref_a_seconds_total_extrapolated": ref_per_graph * len(graphs),
            "speedup_vs_a": ref_per_graph / (seconds / len(graphs))}


def print_table(rows, peak, peak_size):
    header = (f"{'workload':<14}{'n':>5}{'B':>5}{'k':>5}{'MFLOP/g':>10}{'ms/g':>9}{'GFLOP/s':>9}"
              f"{'%peak':>7}{'ind %pk':>8}{'joint/ind':>10}{'vs (a)':>9}{'vs (b)':>9}{'vs (c)':>9}")
    print(f"\ntorch.mm peak ({peak_size}x{peak_size}, float32, {torch.get_num_threads()} threads): "
          f"{peak:.1f} GFLOP/s")
    print(header)
    print("-" * len(header))
    for r in rows:
        def fmt(key, spec):
            return format(r[key], spec) + "x" if key in r else format("-", ">9")
        print(f"{r['workload']:<14}{r['n']:>5}{r['batch']:>5}{r['num_polys']:>5}"
              f"{r['plan_flops_per_graph'] / 1e6:>10.2f}{r['ms_per_graph']:>9.3f}{r['gflops']:>9.1f}"
              f"{100 * r['fraction_of_peak']:>6.0f}%{100 * r['independent_fraction_of_peak']:>7.0f}%"
              f"{r['joint_vs_independent']:>9.2f}x"
              f"{fmt('speedup_vs_a', '>8.1f')}{fmt('speedup_vs_b', '>8.1f')}{fmt('speedup_vs_c', '>8.1f')}")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['workload']}\nn={r['n']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    width = 0.25
    for i, key in enumerate(("speedup_vs_a", "speedup_vs_c", "joint_vs_independent")):
        vals = [r.get(key, 0) for r in rows]
        ax.bar([x + (i - 1) * width for x in range(len(rows))], vals, width, label=key)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("speedup (x)")
    ax.legend(fontsize=7)
    ax.set_title("graphequi.poly speedups")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, just prove it runs")
    parser.add_argument("--out", default=str(RESULTS / "poly.json"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 is steadier on a loaded machine")
    parser.add_argument("--sizes", default=None,
                        help="n:batch pairs, e.g. '38:64,80:16' (default 38:64,80:16,160:4)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if torch.get_num_threads() > 1 and load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores; with "
              f"{torch.get_num_threads()} threads each parallel op can wait a whole time slice "
              "for a descheduled thread (milliseconds). Consider --threads 1.", flush=True)
    torch.manual_seed(0)
    peak_size = 512 if args.quick else 2048
    peak = mm_peak(peak_size)
    if args.sizes:
        sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.sizes.split(",")]
    else:
        sizes = [(12, 8)] if args.quick else [(38, 64), (80, 16), (160, 4)]
    rows = []
    for name, polys in workloads(args.quick).items():
        for n, batch in sizes:
            if name == "basis4/node" and n > 80:
                continue
            rows.append(bench_random(name, polys, n, batch, args.quick, peak))
            print(f"done {name} n={n}", flush=True)
    print_table(rows, peak, peak_size)
    zinc = bench_zinc(args.quick, peak)
    if zinc:
        print(f"\nZINC val+test: {zinc['graphs']} graphs (mean n {zinc['mean_n']:.1f}, max {zinc['max_n']}): "
              f"{zinc['seconds_total']:.2f} s total, {zinc['ms_per_graph']:.3f} ms/graph; "
              f"(a) ~{zinc['ref_a_seconds_total_extrapolated']:.1f} s ({zinc['speedup_vs_a']:.1f}x)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"quick": args.quick, "sizes": sizes, "torch": torch.__version__,
              "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "loadavg_at_end": load,
              "mm_peak_gflops": peak, "mm_peak_size": peak_size, "rows": rows, "zinc": zinc}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot(rows, out.with_suffix(".png"))
    print(f"\nwrote {out} and {out.with_suffix('.png')} (load average {load})")
    return result


if __name__ == "__main__":
    main()

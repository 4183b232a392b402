"""radius_graph benchmark: graphequi's cell list against brute force, side by side.

Anchors (same points, same r, alternated, medians):

* ``dense cdist``: ``torch.cdist`` of all pairs, mask, ``nonzero`` -- O(N^2)
  memory, run only while N^2 distances fit in ``--dense-limit`` entries;
* ``blocked cdist``: the same over row tiles of 1024 targets -- O(N) memory
  per tile but O(N^2) work;
* ``torch_cluster.radius_graph`` when importable (it is not a dependency).

Points are uniform in the unit cube and r is chosen for ~``--neighbors``
neighbors per point. Every method's edge set is checked against graphequi's
(sorted by target, source) before timing.

    python benchmarks/radius_graph.py              # N = 1e3 .. 1e5
    python benchmarks/radius_graph.py --small      # seconds; used by a smoke test

Prints a markdown table and writes ``benchmarks/results/radius_graph.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from graphequi.geometry import radius_graph

try:
    import torch_cluster  # optional anchor
except Exception:  # noqa: BLE001
    torch_cluster = None

RESULTS = Path(__file__).resolve().parent / "results"
# cdist's default (matmul form |x|^2 + |y|^2 - 2 x.y for large inputs) is what
# a user would write and fast, but rounds pairs within ~1e-7 r of the radius
# differently: the number of such edges is recorded per row.


def dense_cdist(pos, r):
    mask = torch.cdist(pos, pos) < r
    mask.fill_diagonal_(False)
    tgt, src = mask.nonzero().t()
    return torch.stack([src, tgt])


def blocked_cdist(pos, r, tile=1024):
    parts = []
    for t0 in range(0, pos.size(0), tile):
        mask = torch.cdist(pos[t0:t0 + tile], pos) < r
        tgt, src = mask.nonzero().t()
        tgt = tgt + t0
        keep = src != tgt
        parts.append(torch.stack([src[keep], tgt[keep]]))
    return torch.cat(parts, 1)


def edge_set(ei):
    key = ei[1] * (int(ei.max()) + 1 if ei.numel() else 1) + ei[0]
    return torch.sort(key).values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000,100000")
    parser.add_argument("--neighbors", type=float, default=24.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (1 at N >= 1e5)")
    parser.add_argument("--dense-limit", type=float, default=1.1e8, help="max N^2 for dense cdist")
    parser.add_argument("--blocked-limit", type=int, default=100000, help="max N for blocked cdist")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "radius_graph.json"))
    args = parser.parse_args(argv)
    sizes = [300, 2000] if args.small else [int(s) for s in args.sizes.split(",")]
    device = torch.device(args.device)
    rows = []
    print("| N | r | E | " + " | ".join(["graphequi ms", "dense cdist ms", "blocked cdist ms",
                                          "torch_cluster ms", "blocked/graphequi", "dense MB"]) + " |")
    print("|---" * 10 + "|")
    for n in sizes:
        gen = torch.Generator().manual_seed(n)
        pos = torch.rand(n, 3, generator=gen).to(device)
        r = (args.neighbors / (n * 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0)
        methods = {"graphequi": lambda: radius_graph(pos, r, max_num_neighbors=None)}
        if n * n <= args.dense_limit:
            methods["dense cdist"] = lambda: dense_cdist(pos, r)
        if n <= args.blocked_limit:
            methods["blocked cdist"] = lambda: blocked_cdist(pos, r)
        if torch_cluster is not None:
            methods["torch_cluster"] = lambda: torch_cluster.radius_graph(pos, r, max_num_neighbors=10 ** 6)
        ref = methods["graphequi"]()
        differs = {}
        for name, fn in methods.items():
            out = fn()
            a, b = edge_set(out), edge_set(ref)
            differs[name] = a.numel() + b.numel() - 2 * int(torch.isin(a, b).sum())
            assert differs[name] <= max(4, 1e-4 * b.numel()), f"{name}: {differs[name]} edges differ"
        times = {name: [] for name in methods}
        for _ in range(args.repeats if n < 100000 else 1):
            for name, fn in methods.items():   # alternated
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        row = {"n": n, "r": r, "edges": int(ref.size(1)), "ms": ms,
               "dense_cdist_bytes": n * n * 5,
               "edges_differing_from_graphequi": differs}
        rows.append(row)
        cell = lambda k: f"{ms[k]:.1f}" if k in ms else "-"
        ratio = f"{ms['blocked cdist'] / ms['graphequi']:.1f}x" if "blocked cdist" in ms else "-"
        print(f"| {n} | {r:.4f} | {row['edges']} | {cell('graphequi')} | {cell('dense cdist')} | "
              f"{cell('blocked cdist')} | {cell('torch_cluster')} | {ratio} | {n * n * 5 / 2**20:.0f} |")
    result = {"benchmark": "radius_graph", "device": args.device, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "torch_cluster": torch_cluster is not None, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

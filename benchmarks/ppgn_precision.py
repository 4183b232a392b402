"""Benchmark of a PPGN++ training step in float32 and under bfloat16 autocast.

Workload: the ZINC CPU model of ``benchmarks/configs/zinc_ppgnpp_cpu*.yaml``
(6 blocks, width 64, the 12 ppgn++ pair polynomials as input channels), one
optimizer step (forward, L1 loss, backward, Adam) on a batch of 64 random
molecule-like graphs of ``--nodes`` nodes each (a ring-closed random tree,
21 atom and 4 bond types), as the size-bucketed ZINC loader feeds it.

Methods (same model, same batch, alternated in one run)
    float32   the default;
    bf16      ``torch.autocast('cpu', dtype=torch.bfloat16)`` around the
              forward pass, as ``graphequi train --precision bf16`` runs it.
The ratio is float32 time / bf16 time (> 1: bf16 is faster). On CPUs with
AMX or AVX512-BF16 the matrix products run in bfloat16 hardware.

Results: benchmarks/results/ppgn_precision.json (or ``--out``).

Usage: python benchmarks/ppgn_precision.py [--quick] [--threads 1,2] [--nodes 24] [--repeat 7]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

from graphequi.nn import PPGNPlusPlus

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NODE_TYPES, BOND_TYPES, POLY_CHANNELS = 21, 4, 12


def molecule_like(n: int, gen: torch.Generator) -> Data:
    """A random tree on ``n`` nodes with ``n // 8`` ring closures: ZINC-like degrees."""
    parents = [int(torch.randint(i, (1,), generator=gen)) for i in range(1, n)]
    edges = list(zip(parents, range(1, n)))
    for _ in range(n // 8):
        i, j = (int(v) for v in torch.randint(n, (2,), generator=gen))
        if i != j and (i, j) not in edges and (j, i) not in edges:
            edges.append((i, j))
    e = torch.tensor(edges).t()
    bond = torch.randint(1, BOND_TYPES, (e.size(1),), generator=gen)
    return Data(x=torch.randint(NODE_TYPES, (n, 1), generator=gen),
                edge_index=torch.cat([e, e.flip(0)], 1), edge_attr=torch.cat([bond, bond]),
                poly_pair_attr=torch.randn(n * n, POLY_CHANNELS, generator=gen),
                y=torch.randn(1, generator=gen), num_nodes=n)


def time_steps(model, batch, optimizer, bf16: bool, repeat: int) -> list:
    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(batch)
        torch.nn.functional.l1_loss(out.float().view(-1), batch.y).backward()
        optimizer.step()

    step()  # warm-up: oneDNN primitive creation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and batch (smoke test)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--nodes", type=int, default=24, help="nodes per graph (ZINC: 9-38, mean 23)")
    parser.add_argument("--repeat", type=int, default=7, help="timed steps per method and round")
    parser.add_argument("--out", type=Path, default=RESULTS / "ppgn_precision.json")
    args = parser.parse_args(argv)
    width, layers, graphs = (16, 2, 8) if args.quick else (64, 6, 64)
    repeat = 2 if args.quick else args.repeat

    gen = torch.Generator().manual_seed(0)
    batch = Batch.from_data_list([molecule_like(args.nodes, gen) for _ in range(graphs)])
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = PPGNPlusPlus(1, hidden_channels=width, num_layers=layers, node_vocab=NODE_TYPES,
                             edge_vocab=BOND_TYPES, poly_channels=POLY_CHANNELS).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        times = {"float32": [], "bf16": []}
        for _ in range(3):  # alternate, so a noisy neighbor hits both methods alike
            for name in times:
                times[name] += time_steps(model, batch, optimizer, name == "bf16", repeat)
        medians = {name: statistics.median(t) for name, t in times.items()}
        rows.append({"threads": threads, "nodes": args.nodes, "graphs": graphs, "width": width,
                     "layers": layers, "float32_s": medians["float32"], "bf16_s": medians["bf16"],
                     "speedup": medians["float32"] / medians["bf16"], "steps_per_method": len(times["bf16"])})

    print(f"PPGN++ training step, batch {graphs} x {args.nodes} nodes, width {width}, {layers} blocks")
    print(f"{'threads':>7} | {'float32 (s)':>11} | {'bf16 (s)':>8} | {'float32/bf16':>12}")
    for r in rows:
        print(f"{r['threads']:>7} | {r['float32_s']:>11.3f} | {r['bf16_s']:>8.3f} | {r['speedup']:>12.2f}")
    result = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "onednn": torch.backends.mkldnn.is_available(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

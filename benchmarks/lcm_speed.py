"""LCM aggregation speed and peak memory: graphequi against PyG, side by side.

Forward + backward (w.r.t. the input and every parameter) of one aggregation
of ``E`` rows of width ``F`` into ``G`` groups:

* uniform: ``G = 1024`` groups, each row in a uniformly random group,
  ``E = 2^15 .. 2^18``;
* skewed: one hub group with ``2^16`` rows among ``G - 1`` groups of 1-16 rows.

Candidates: graphequi ``LCMAggregation`` with the symmetrised GRU, the
ordered GRU and the MLP cell, PyG
``LCMAggregation`` and ``GRUAggregation`` (both pad every group to the largest
one: ``G x max_degree x F``). Times are medians over alternated repeats.
Peak memory is the rise of the resident set size of a fresh subprocess
during one forward + backward over its level after building the inputs
(sampled every millisecond from ``/proc/self/statm``; Linux only); a PyG candidate whose dense batch alone
would exceed ``--dense-limit-gb`` is skipped and reported as such.

    python benchmarks/lcm_speed.py                        # full: 2^15..2^18 + skewed
    python benchmarks/lcm_speed.py --log2-sizes 15 16     # reduced
    python benchmarks/lcm_speed.py --small                # smoke test

Writes ``benchmarks/results/lcm_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch_geometric.nn.aggr as pyg_aggr

from graphequi.nn.aggr import LCMAggregation

RESULTS = Path(__file__).resolve().parent / "results"
CANDIDATES = ("graphequi-lcm-gru", "graphequi-lcm-ordered-gru", "graphequi-lcm-mlp", "pyg-gru", "pyg-lcm")


def make_case(case: str, num_rows: int, groups: int, channels: int, device, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    if case == "skewed":
        small = torch.randint(1, 17, (groups - 1,), generator=gen)
        sizes = torch.cat([torch.tensor([num_rows]), small])
        index = torch.repeat_interleave(torch.arange(groups), sizes)
    else:
        index = torch.randint(0, groups, (num_rows,), generator=gen).sort().values  # PyG needs it sorted
    x = torch.randn(index.numel(), channels, generator=gen)
    return x.to(device), index.to(device)


def build(name: str, channels: int, device):
    torch.manual_seed(0)
    if name == "graphequi-lcm-gru":
        module = LCMAggregation(channels, channels, cell="gru")
    elif name == "graphequi-lcm-ordered-gru":
        module = LCMAggregation(channels, channels, cell="ordered-gru")
    elif name == "graphequi-lcm-mlp":
        module = LCMAggregation(channels, channels, cell="mlp")
    elif name == "pyg-gru":
        module = pyg_aggr.GRUAggregation(channels, channels)
    elif name == "pyg-lcm":
        module = pyg_aggr.LCMAggregation(channels, channels)
    else:
        raise ValueError(name)
    return module.to(device)


def dense_gb(index: torch.Tensor, groups: int, channels: int) -> float:
    return groups * int(torch.bincount(index, minlength=groups).max()) * channels * 4 / 2 ** 30


def step(module, x, index, groups):
    leaf = x.detach().requires_grad_(True)
    out = module(leaf, index, dim_size=groups)
    out.sum().backward()
    module.zero_grad(set_to_none=True)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(args) -> None:
    """Runs in a fresh subprocess: prints the peak rise (MiB) of the resident
    set during one step over its level before the step, sampled every
    millisecond from ``/proc/self/statm`` (torch's CPU allocator returns large
    blocks to the OS, so the resident set follows live tensors)."""
    x, index = make_case(args.case, args.rows, args.groups, args.channels, "cpu")
    module = build(args.name, args.channels, "cpu")
    before, peak, done = resident_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(1e-3)
    sampler = threading.Thread(target=sample)
    sampler.start()
    step(module, x, index, args.groups)
    done.set()
    sampler.join()
    print(json.dumps({"peak_rise_mib": (max(peak[0], resident_bytes()) - before) / 2 ** 20}))


def measure_memory(name, case, rows, groups, channels) -> float | None:
    cmd = [sys.executable, __file__, "--memory-probe", "--name", name, "--case", case, "--rows", str(rows),
           "--groups", str(groups), "--channels", str(channels)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    if run.returncode != 0:
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])["peak_rise_mib"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--log2-sizes", type=int, nargs="+", default=[15, 16, 17, 18])
    p.add_argument("--hub-log2", type=int, default=16)
    p.add_argument("--groups", type=int, default=1024)
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dense-limit-gb", type=float, default=2.0)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--small", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "lcm_speed.json"))
    # subprocess mode
    p.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        return memory_probe(args)
    if args.small:
        args.log2_sizes, args.hub_log2, args.groups, args.channels, args.repeats = [8], 9, 16, 8, 2
    device = torch.device(args.device)
    cases = [("uniform", 2 ** s) for s in args.log2_sizes] + [("skewed", 2 ** args.hub_log2)]
    rows = []
    for case, size in cases:
        x, index = make_case(case, size, args.groups, args.channels, device)
        dense = dense_gb(index, args.groups, args.channels)
        modules = {}
        for name in CANDIDATES:
            if name.startswith("pyg") and dense > args.dense_limit_gb:
                continue
            modules[name] = build(name, args.channels, device)
            step(modules[name], x, index, args.groups)  # warm-up
        times = {name: [] for name in modules}
        for _ in range(args.repeats):  # alternate the candidates
            for name, module in modules.items():
                start = time.perf_counter()
                step(module, x, index, args.groups)
                times[name].append(time.perf_counter() - start)
        row = {"case": case, "rows": x.size(0), "groups": args.groups, "channels": args.channels,
               "max_group": int(torch.bincount(index.cpu()).max()), "pyg_dense_gb": dense,
               "ms": {n: 1e3 * statistics.median(t) for n, t in times.items()},
               "skipped": {n: f"dense batch needs {dense:.1f} GB" for n in CANDIDATES if n not in modules},
               "peak_mib": {}}
        if not args.no_memory and device.type == "cpu":
            for name in modules:
                row["peak_mib"][name] = measure_memory(name, case, size, args.groups, args.channels)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| case | E | max group | " + " | ".join(f"{n} ms (MiB)" for n in CANDIDATES)
          + " | pyg-lcm / lcm-gru | pyg-lcm / lcm-ordered-gru | pyg-lcm / lcm-mlp | pyg-gru / lcm-mlp"
          " | lcm-gru / pyg-gru | lcm-ordered-gru / pyg-gru |")
    print("|---" * (len(CANDIDATES) + 9) + "|")
    for r in rows:
        ms, mem = r["ms"], r["peak_mib"]

        def cell(n):
            if n not in ms:
                return "skipped"
            return f"{ms[n]:.0f}" + (f" ({mem[n]:.0f})" if mem.get(n) is not None else "")

        def ratio(a, b):
            return f"{ms[a] / ms[b]:.2f}" if a in ms and b in ms else "-"
        print(f"| {r['case']} | {r['rows']} | {r['max_group']} | " + " | ".join(cell(n) for n in CANDIDATES)
              + f" | {ratio('pyg-lcm', 'graphequi-lcm-gru')} | {ratio('pyg-lcm', 'graphequi-lcm-ordered-gru')}"
              + f" | {ratio('pyg-lcm', 'graphequi-lcm-mlp')} | {ratio('pyg-gru', 'graphequi-lcm-mlp')}"
              + f" | {ratio('graphequi-lcm-gru', 'pyg-gru')} | {ratio('graphequi-lcm-ordered-gru', 'pyg-gru')} |")
    out = {"config": {k: v for k, v in vars(args).items() if k not in ("name", "case", "rows", "memory_probe")},
           "platform": platform.processor() or platform.machine(), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

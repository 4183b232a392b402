"""Memory and time of SPEN against a global order-2 network and a per-subgraph loop.

Workload: one random graph G(n, p) with average degree 4, no node features
(constant input), for n in ``--sizes``; one forward + backward pass (sum of
the outputs) of a model of ``--width`` channels and ``--depth`` layers.

Methods (same width and depth)
    spen     graphequi.nn.SPEN: own weights per ego-net size up to 8 (the
             default), every ego-net's local nodes and pairs as flat rows
             (layout='ragged'), segment-mean sharing;
    spen-shared   SPEN(size_map='shared'): flat rows, one set of weights for all sizes;
    spen-buckets  SPEN(layout='buckets'): the same weights as spen, one dense
             [B_m, C, m, m] tensor per size;
    spen-pad SPEN(layout='buckets', size_map='shared', pad=True): one set of
             weights, sizes zero-padded up to powers of two (fewer buckets);
    spen-one SPEN(layout='buckets', size_map='shared', pad='group'): one set of
             weights, one bucket padded to the largest ego-net;
    ppgn++   graphequi.nn.PPGNPlusPlus: dense [C, 1, n, n] pair tensors;
    loop     SPEN as the paper describes it, one ego-net at a time in a
             Python loop (same weights as ``spen``; its output is checked
             against ``spen``'s).

Peak memory: each method runs in a fresh subprocess (glibc's mmap
threshold pinned at 4 KiB so freed blocks return to the system), sizes in
increasing order; the peak resident set during a measured step (after a
warm-up step) minus the resident set before it (Linux
``/proc/self/clear_refs``; ``torch.cuda.max_memory_allocated`` on CUDA).
Time: per-step time, median over ``--repeat`` rounds, methods alternated
within a round; in a round each method runs ``--steps`` consecutive
forward + backward steps (its steady state, as in training, where one model
takes step after step) and their mean is the round's sample. With
``--steps 1`` every step follows another method's, e.g. the ego-net loop's
many small allocations, whose heap state the next method inherits.
The growth exponent is the least-squares slope of log(value) on log(n).

Results: benchmarks/results/spen_memory.json (or ``--out``).

Usage: python benchmarks/spen_memory.py [--small] [--device cpu] [--sizes 50,100,200,400,800]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.utils import erdos_renyi_graph

from graphequi.nn import PPGNPlusPlus, SPEN
from graphequi.nn.spen import bucket_inputs
from graphequi.nn.spen_layout import EgoNetLayout
from graphequi.transforms import EgoNetBags

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("spen", "spen-shared", "spen-buckets", "spen-pad", "spen-one", "ppgn++", "loop")


def random_graph(n: int, seed: int) -> Data:
    torch.manual_seed(seed)
    return Data(edge_index=erdos_renyi_graph(n, min(1.0, 4.0 / max(n - 1, 1))), num_nodes=n)


def loop_forward(model: SPEN, data) -> torch.Tensor:
    """SPEN one ego-net at a time: for each layer, every ego-net is gathered,
    passed through its size's SPENConv and added into per-node/per-pair sums."""
    layout = EgoNetLayout.from_data(data)
    h1, h2 = model.inputs(data, layout)
    ego = []  # (size, nodes [1, m], pairs [1, m^2]) of every ego-net, centre order
    size = data.ego_size.tolist()
    node_off = pair_off = 0
    for m in size:
        ego.append((m, data.ego_node[node_off:node_off + m].view(1, m),
                    data.ego_pair[pair_off:pair_off + m * m].view(1, m * m)))
        node_off, pair_off = node_off + m, pair_off + m * m
    for i, convs in enumerate(model.convs):
        sum1 = h1.new_zeros(h1.size(0), model.hidden_channels)
        sum2 = h2.new_zeros(h2.size(0), model.hidden_channels)
        for m, nodes, pairs in ego:
            x1, x2 = bucket_inputs(h1[nodes], h2[pairs])
            y1, y2 = convs[model.size_map.group(m)](x1, x2)
            sum1 = sum1.index_add(0, nodes[0], y1[0].t())
            sum2 = sum2.index_add(0, pairs[0], y2[0].permute(1, 2, 0).reshape(m * m, -1))
        h1 = sum1 / layout.node_count.unsqueeze(-1).to(sum1.dtype)
        h2 = sum2 / layout.pair_count.unsqueeze(-1).to(sum2.dtype)
        if model.norm == "batch":
            h1, h2 = model.node_norms[i](h1), model.pair_norms[i](h2)
        h1, h2 = torch.relu(h1), torch.relu(h2)
    z = model._readout(layout, h1, h2)
    return model.head(z.mean(0, keepdim=True))


def build(method: str, n: int, width: int, depth: int, device: str):
    data = random_graph(n, seed=n)
    torch.manual_seed(0)
    if method == "ppgn++":
        model = PPGNPlusPlus(1, hidden_channels=width, num_layers=depth).to(device)
        return model, data.to(device), model
    options = {"spen-shared": dict(size_map="shared"),
               "spen-buckets": dict(layout="buckets"),
               "spen-pad": dict(layout="buckets", size_map="shared", pad=True),
               "spen-one": dict(layout="buckets", size_map="shared", pad="group")}.get(method, {})
    model = SPEN(1, hidden_channels=width, num_layers=depth, **options).to(device)
    bags = EgoNetBags()(data).to(device)
    fn = (lambda d: loop_forward(model, d)) if method == "loop" else model
    return model, bags, fn


def step(fn, data) -> None:
    out = fn(data)
    out.sum().backward()


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_peak(method: str, n: int, width: int, depth: int, device: str) -> float:
    """Peak extra memory (MiB) of one forward + backward, after a warm-up step."""
    model, data, fn = build(method, n, width, depth, device)
    model.train()
    step(fn, data)
    model.zero_grad(set_to_none=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(fn, data)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set (VmHWM)
    base = _rss_kib("VmRSS")
    step(fn, data)
    return (_rss_kib("VmHWM") - base) / 1024


def peaks_in_subprocess(method: str, sizes, args) -> list:
    """Peaks of ``method`` for every size, in one fresh process (sizes in
    increasing order). glibc's mmap threshold is pinned at 4 KiB there, so
    every block but the smallest is returned to the system when freed and
    the resident-set peak of a step does not hide in reused heap memory."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4096", OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--_peak", method, ",".join(map(str, sizes)), "--width", str(args.width),
           "--depth", str(args.depth), "--device", args.device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return [float(v) for v in out.stdout.strip().splitlines()[-1].split(",")]


def time_all(sizes, methods, args) -> dict:
    times = {}
    for n in sizes:
        built = {m: build(m, n, args.width, args.depth, args.device) for m in methods}
        for _, data, fn in built.values():  # warm-up
            step(fn, data)
        samples = {m: [] for m in methods}
        for _ in range(args.repeat):
            for m in methods:
                _, data, fn = built[m]
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step(fn, data)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                samples[m].append((time.perf_counter() - t0) / args.steps)
        times[n] = {m: statistics.median(v) for m, v in samples.items()}
        if "loop" in built and "spen" in built:
            model, data, _ = built["spen"]
            model.eval()
            with torch.no_grad():
                diff = (model(data) - loop_forward(model, data)).abs().max().item()
            times[n]["loop_max_abs_diff"] = diff
        print(f"  timed n={n}: " + ", ".join(f"{m} {times[n][m]:.4f}s" for m in methods), flush=True)
    return times


def exponent(sizes, values) -> float:
    if len(set(sizes)) < 2:
        return float("nan")
    xs, ys = [math.log(n) for n in sizes], [math.log(max(v, 1e-9)) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def plot(result: dict, path: Path) -> None:
    """Log-log peak memory and time per method against n."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    methods = [k[:-len("_peak_mib")] for k in rows[0] if k.endswith("_peak_mib")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    panels = (("_peak_mib", "peak memory (MiB)"), ("_s", "forward+backward (s)"))
    for ax, (suffix, label) in zip(axes, panels):
        for m in methods:
            ax.loglog([r["n"] for r in rows], [r[m + suffix] for r in rows], marker="o", label=m)
        ax.set_xticks([r["n"] for r in rows], [str(r["n"]) for r in rows])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("nodes n (average degree 4)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"SPEN vs PPGN++ vs per-ego-net loop (width {result['width']}, depth {result['depth']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes and model (smoke test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="50,100,200,400,800")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5,
                        help="consecutive steps of one method per round (their mean is one sample)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS / "spen_memory.json")
    parser.add_argument("--inprocess", action="store_true",
                        help="measure peaks in this process (smoke test: freed heap memory may be reused)")
    parser.add_argument("--_peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._peak:
        method, sizes = args._peak[0], [int(v) for v in args._peak[1].split(",")]
        print(",".join(str(measure_peak(method, n, args.width, args.depth, args.device)) for n in sizes))
        return {}
    if args.steps < 1 or args.repeat < 1:
        parser.error(f"--steps and --repeat must be at least 1, got {args.steps} and {args.repeat}")
    if args.small:
        args.sizes, args.width, args.depth, args.repeat, args.steps, args.inprocess = "20,40", 8, 2, 1, 1, True
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    if set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(set(methods) - set(METHODS))}; choose from {METHODS}")
    print(f"SPEN memory/time: width {args.width}, depth {args.depth}, sizes {sizes}, device {args.device}")
    peaks = {n: {} for n in sizes}
    for m in methods:
        values = ([measure_peak(m, n, args.width, args.depth, args.device) for n in sizes] if args.inprocess
                  else peaks_in_subprocess(m, sizes, args))
        for n, v in zip(sizes, values):
            peaks[n][m] = v
        print(f"  peak {m}: " + ", ".join(f"n={n} {v:.1f} MiB" for n, v in zip(sizes, values)), flush=True)
    times = time_all(sizes, methods, args)
    rows = [dict(n=n, **{f"{m}_peak_mib": peaks[n][m] for m in methods},
                 **{f"{m}_s": times[n][m] for m in methods},
                 **({"loop_max_abs_diff": times[n]["loop_max_abs_diff"]} if "loop_max_abs_diff" in times[n]
                    else {}))
            for n in sizes]
    fits = {f"{m}_{kind}_exponent": exponent(sizes, [peaks[n][m] if kind == "memory" else times[n][m]
                                                       for n in sizes])
            for m in methods for kind in ("memory", "time")}
    header = f"{'n':>5} " + " ".join(f"{m + ' MiB':>12} {m + ' s':>10}" for m in methods)
    ratios = [(a, b, kind) for a, b, kind in (("spen", "ppgn++", "peak_mib"), ("loop", "spen", "s"),
                                              ("loop", "spen-pad", "s"), ("loop", "spen-one", "s"))
              if {a, b} <= set(methods)]
    extra = "".join(f"  {a}/{b} {'mem' if kind == 'peak_mib' else 'time'}" for a, b, kind in ratios)
    print(header + extra)
    for r in rows:
        line = f"{r['n']:>5} " + " ".join(
            f"{r[m + '_peak_mib']:>12.1f} {r[m + '_s']:>10.4f}" for m in methods)
        for a, b, kind in ratios:
            width = len(f"  {a}/{b} {'mem' if kind == 'peak_mib' else 'time'}")
            line += f"{r[f'{a}_{kind}'] / max(r[f'{b}_{kind}'], 1e-9):>{width}.3f}"
        print(line)
    print("growth exponents: " + ", ".join(f"{k} {v:.2f}" for k, v in fits.items()))
    result = dict(benchmark="spen_memory", device=args.device, width=args.width, depth=args.depth,
                  threads=args.threads, repeat=args.repeat, steps=args.steps, rows=rows, fits=fits,
                  machine=platform.processor() or platform.machine(), torch=torch.__version__,
                  load=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    if not args.small:
        plot(result, args.out.with_suffix(".png"))
    return result


if __name__ == "__main__":
    main()

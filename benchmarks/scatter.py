"""Scatter/segment benchmark: graphequi.ops against its anchors, side by side.

Anchors: native torch (``Tensor.scatter_reduce``, ``torch.segment_reduce``),
``torch_geometric.utils.scatter``, and ``torch_scatter`` when importable. Also
measured in the same run: the memory-read floor (``src.sum(0)``) and the
forward+backward floor (read floor + filling a fresh ``E x F`` tensor, which
every backward must materialise).

    python benchmarks/scatter.py                 # E=1e6, N=1e5, F in 16/64/256
    python benchmarks/scatter.py --small         # seconds; used by smoke tests

Also an spmm case (``--spmm``, on by default): the fused CSR gather-reduce
``graphequi.ops.spmm`` (a value per edge, and per edge and feature) against
``torch.sparse.mm`` on a sparse CSR adjacency
(what PyG's ``spmm`` runs without torch_sparse), ``torch_scatter`` gather +
``segment_csr`` when importable, and gather + ``graphequi.ops.segment``;
forward+backward with respect to ``x``, F=64.

Prints a markdown table of medians and ratios, checks the speed targets
(graphequi at least as fast as the best anchor), and writes ``benchmarks/results/scatter.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import graphequi.ops as gops
from graphequi._platform import cpu_model

try:
    import torch_scatter  # optional anchor, not a dependency
except Exception:  # noqa: BLE001 - any import failure means "not available"
    torch_scatter = None

from torch_geometric.utils import scatter as pyg_scatter

RESULTS = Path(__file__).resolve().parent / "results"
#: where the inputs live (``--device``); the generators stay on the CPU so that
#: every device times the same data
DEVICE = torch.device("cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
NATIVE_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax"}


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def forward_backward(fn, src, grad_out):
    def run():
        leaf = src.requires_grad_(True)
        out = fn(leaf)
        torch.autograd.grad(out, leaf, grad_out)
        src.requires_grad_(False)
    return run


def candidates(index_kind: str, reduce: str, index, ptr, lengths, N: int, F: int):
    """name -> (callable(src) -> out, is_graphequi)."""
    expanded = index.view(-1, 1).expand(-1, F)
    found = {
        "graphequi.scatter": (lambda s: gops.scatter(s, index, 0, N, reduce), True),
        "torch.scatter_reduce": (lambda s: s.new_zeros(N, F).scatter_reduce(
            0, expanded, s, NATIVE_REDUCE[reduce], include_self=False), False),
        "pyg.utils.scatter": (lambda s: pyg_scatter(s, index, 0, N, reduce), False),
    }
    if index_kind == "sorted":
        found["graphequi.segment"] = (lambda s: gops.segment(s, ptr, reduce), True)
        found["torch.segment_reduce"] = (lambda s: torch.segment_reduce(
            s, reduce, lengths=lengths, axis=0, unsafe=True), False)
    if torch_scatter is not None:
        if index_kind == "sorted":
            found["torch_scatter.segment_csr"] = (lambda s: torch_scatter.segment_csr(s, ptr, reduce=reduce), False)
        found["torch_scatter.scatter"] = (lambda s: torch_scatter.scatter(s, index, 0, None, N, reduce=reduce), False)
    return found


def interleaved_medians(benches: dict, repeats: int, warmup: int = 1) -> dict:
    """Median ms of each callable, timed round-robin so that load changes on a
    shared machine hit every candidate alike."""
    times = {name: [] for name in benches}
    for round_ in range(warmup + repeats):
        for name, fn in benches.items():
            _sync()
            start = time.perf_counter()
            fn()
            _sync()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def run(E: int, N: int, features, reduces, repeats: int, seed: int = 0):
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for F in features:
        src = torch.randn(E, F, generator=gen).to(DEVICE)
        grad_out = torch.randn(N, F, generator=gen).to(DEVICE)
        random_index = torch.randint(0, N, (E,), generator=gen).to(DEVICE)
        floor_benches = {"read": lambda: src.sum(0), "write": lambda: torch.empty(E, F, device=DEVICE).fill_(1.0)}
        for index_kind in ("sorted", "random"):
            index = random_index.sort().values if index_kind == "sorted" else random_index
            ptr = gops.index_to_ptr(index.sort().values, N)
            lengths = ptr.diff()
            for reduce in reduces:
                for mode in ("fwd", "fwd+bwd"):
                    benches = dict(floor_benches)
                    for name, (fn, _) in candidates(index_kind, reduce, index, ptr, lengths, N, F).items():
                        benches[name] = (lambda f=fn: f(src)) if mode == "fwd" else forward_backward(fn, src, grad_out)
                    timings = interleaved_medians(benches, repeats)
                    read_floor, write_floor = timings.pop("read"), timings.pop("write")
                    floor = read_floor if mode == "fwd" else read_floor + write_floor
                    rows.append(dict(F=F, index=index_kind, reduce=reduce, mode=mode, ms=timings,
                                     floor_ms=floor, read_floor_ms=read_floor, write_floor_ms=write_floor))
                    print(_row_line(rows[-1]), flush=True)
    return rows


def parallel_scaling(E: int, N: int, F: int, repeats: int, seed: int = 0) -> dict:
    """graphequi forward on 1 thread vs all threads: both cores busy on one call."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randn(E, F, generator=gen).to(DEVICE)
    index = torch.randint(0, N, (E,), generator=gen).to(DEVICE)
    ptr = gops.index_to_ptr(index.sort().values, N)
    threads = torch.get_num_threads()
    result = {}
    for name, fn in (("segment sum", lambda: gops.segment(src, ptr, "sum")),
                     ("scatter max (random)", lambda: gops.scatter(src, index, 0, N, "max"))):
        torch.set_num_threads(1)
        one = median_ms(fn, repeats)
        torch.set_num_threads(threads)
        many = median_ms(fn, repeats)
        result[name] = dict(threads=threads, one_thread_ms=one, all_threads_ms=many, speedup=one / many)
        print(f"parallel scaling, {name}, F={F}: 1 thread {one:.1f} ms, {threads} threads {many:.1f} ms "
              f"({one / many:.2f}x)", flush=True)
    return result


def _best(timings, prefix_in=None, exclude_graphequi=True):
    items = {k: v for k, v in timings.items() if not (exclude_graphequi and k.startswith("graphequi"))}
    if prefix_in is not None:
        items = {k: v for k, v in items.items() if k.startswith(prefix_in)}
    if not items:
        return None, float("nan")
    name = min(items, key=items.get)
    return name, items[name]


def judge(row) -> dict:
    """The speed targets for one row (None where none applies)."""
    t = row["ms"]
    ours = min(v for k, v in t.items() if k.startswith("graphequi"))
    verdict = {"graphequi_ms": ours}
    if row["index"] == "sorted" and row["mode"] == "fwd+bwd":
        native_and_ts = {k: v for k, v in t.items() if k.startswith(("torch.", "torch_scatter"))}
        best = min(native_and_ts.values())
        speedup = best / ours
        vs_floor = ours / row["floor_ms"]
        verdict.update(target="sorted fwd+bwd: >=2.0x best native/torch_scatter or <=1.2x floor",
                       speedup=speedup, vs_floor=vs_floor, ok=speedup >= 2.0 or vs_floor <= 1.2)
    elif row["index"] == "sorted" and row["mode"] == "fwd":
        vs_floor = ours / row["read_floor_ms"]
        verdict.update(target="sorted fwd: <=1.5x read floor", vs_floor=vs_floor, ok=vs_floor <= 1.5)
    elif row["index"] == "random" and row["mode"] == "fwd":
        speedup = t["torch.scatter_reduce"] / t["graphequi.scatter"]
        verdict.update(target="random fwd: >=1.3x native scatter_reduce", speedup=speedup, ok=speedup >= 1.3)
    return verdict


def _row_line(row) -> str:
    return (f"F={row['F']:>3} {row['index']:>6} {row['reduce']:>4} {row['mode']:>7}: "
            + ", ".join(f"{k}={v:.1f}ms" for k, v in row["ms"].items())
            + f" | floor={row['floor_ms']:.1f}ms")


def markdown(rows) -> str:
    lines = ["| F | index | reduce | mode | graphequi ms | best anchor | anchor ms | speedup | x floor | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        v = judge(row)
        anchor, anchor_ms = _best(row["ms"])
        ours = v["graphequi_ms"]
        floor_ref = row["floor_ms"]
        status = "" if "ok" not in v else ("PASS" if v["ok"] else "MISS")
        lines.append(f"| {row['F']} | {row['index']} | {row['reduce']} | {row['mode']} | {ours:.1f} | {anchor} | "
                     f"{anchor_ms:.1f} | {anchor_ms / ours:.2f}x | {ours / floor_ref:.2f} | {status} |")
    return "\n".join(lines)


SPARSE_MM_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}


def spmm_candidates(csr, A, reduce: str) -> dict:
    """name -> callable(x) -> out, for out[i] = reduce_{j -> i} x[j]."""
    ptr, col = csr.ptr, csr.col
    found = {
        "graphequi.spmm": lambda x: csr.spmm(x, reduce),
        "torch.sparse.mm": lambda x: torch.sparse.mm(A, x, SPARSE_MM_REDUCE[reduce]) if reduce != "sum"
        else torch.sparse.mm(A, x),
        "gather+graphequi.segment": lambda x: gops.segment(x.index_select(0, col), ptr, reduce),
    }
    if torch_scatter is not None:
        found["gather+torch_scatter.segment_csr"] = lambda x: torch_scatter.segment_csr(
            x.index_select(0, col), ptr, reduce=reduce)
    return found


def run_spmm(E: int, N: int, F: int, reduces, repeats: int, seed: int = 0):
    """Forward+backward (grad w.r.t. x) of the fused gather-reduce and its anchors."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, E), generator=gen).to(DEVICE)
    csr = gops.to_csr(edge_index, num_nodes=N)  # over targets, transpose cached
    A = torch.sparse_csr_tensor(csr.ptr, csr.col, torch.ones(E, device=DEVICE), (N, N))
    x = torch.randn(N, F, generator=gen).to(DEVICE)
    grad_out = torch.randn(N, F, generator=gen).to(DEVICE)
    rows = []
    for reduce in reduces:
        benches = {}
        for name, fn in spmm_candidates(csr, A, reduce).items():
            try:  # an anchor without this reduction (or its backward) is left out
                forward_backward(fn, x, grad_out)()
            except (RuntimeError, NotImplementedError) as exc:
                print(f"spmm {reduce}: {name} skipped ({str(exc).splitlines()[0][:80]})", flush=True)
                continue
            benches[name] = forward_backward(fn, x, grad_out)
        timings = interleaved_medians(benches, repeats)
        rows.append(dict(F=F, reduce=reduce, mode="fwd+bwd", ms=timings))
        print(f"spmm F={F} {reduce:>4} fwd+bwd: " + ", ".join(f"{k}={v:.1f}ms" for k, v in timings.items()),
              flush=True)
    return rows


def run_spmm_feature(E: int, N: int, F: int, reduces, repeats: int, seed: int = 0):
    """A value per edge and feature (continuous-filter messages, ``value [E, F]``):
    ``graphequi.spmm`` against the message-passing formulation PyG layers run
    (gather ``x[src]``, multiply, then scatter), forward + backward w.r.t. both
    ``x`` and ``value``."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, E), generator=gen).to(DEVICE)
    src, dst = edge_index[0], edge_index[1]
    x = torch.randn(N, F, generator=gen).to(DEVICE)
    value = torch.randn(E, F, generator=gen).to(DEVICE)
    grad_out = torch.randn(N, F, generator=gen).to(DEVICE)
    # the filters in CSR order, a leaf of their own: PONITA makes its kernels in that order
    csr = gops.to_csr(edge_index, num_nodes=N, value=value)
    value_csr = csr.value
    rows = []
    for reduce in [r for r in reduces if r in ("sum", "mean")]:
        candidates_ = {
            "graphequi.spmm": (lambda a, v: gops.spmm(csr.ptr, csr.col, a, v, reduce, csc=csr.csc,
                                                       validate=False), value_csr),
            "gather*value+pyg.utils.scatter": (lambda a, v: pyg_scatter(a.index_select(0, src) * v, dst, 0, N,
                                                                        reduce), value),
            "gather*value+graphequi.scatter": (lambda a, v: gops.scatter(a.index_select(0, src) * v, dst, 0, N,
                                                                         reduce), value),
        }
        benches = {}
        for name, (fn, val) in candidates_.items():
            def run(fn=fn, val=val):
                a, v = x.requires_grad_(True), val.requires_grad_(True)
                torch.autograd.grad(fn(a, v), (a, v), grad_out)
                x.requires_grad_(False)
                val.requires_grad_(False)
            benches[name] = run
        timings = interleaved_medians(benches, repeats)
        rows.append(dict(F=F, reduce=reduce, mode="fwd+bwd, value [E, F]", ms=timings))
        print(f"spmm F={F} {reduce:>4} value [E, F] fwd+bwd: "
              + ", ".join(f"{k}={v:.1f}ms" for k, v in timings.items()), flush=True)
    return rows


def spmm_markdown(rows) -> str:
    lines = ["| F | reduce | mode | graphequi.spmm ms | best anchor | anchor ms | speedup | target |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ours = row["ms"]["graphequi.spmm"]
        others = {k: v for k, v in row["ms"].items() if k != "graphequi.spmm"}
        anchor = min(others, key=others.get) if others else None
        anchor_ms = others[anchor] if anchor else float("nan")
        status = ("PASS" if anchor_ms / ours >= 1.5 else "MISS") if row["reduce"] == "sum" and \
            row["mode"] == "fwd+bwd" else ""
        lines.append(f"| {row['F']} | {row['reduce']} | {row['mode']} | {ours:.1f} | {anchor} | {anchor_ms:.1f} | "
                     f"{anchor_ms / ours:.2f}x | {status} |")
    return "\n".join(lines)



def machine() -> dict:
    return dict(platform=platform.platform(), processor=cpu_model(), cpus=os.cpu_count(), device=str(DEVICE),
                gpu=torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
                load_average=list(os.getloadavg()),
                torch=torch.__version__, threads=torch.get_num_threads(), backend=gops.backend(),
                torch_scatter=getattr(torch_scatter, "__version__", None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="E=20k, N=2k, F=16: a smoke run")
    parser.add_argument("--device", default="cpu", help="where the inputs live: cpu (default) or cuda")
    parser.add_argument("--features", default="16,64,256")
    parser.add_argument("--reduces", default="sum,mean,max")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spmm", default="auto", choices=("auto", "only", "no"),
                        help="the spmm case: with the scatter table (auto), alone (only) or not at all (no)")
    parser.add_argument("--out", default=None,
                        help="results JSON (default results/scatter.json, results/scatter_small.json with "
                             "--small, so that a smoke run never replaces the recorded figures)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.out is None:
        args.out = str(RESULTS / ("scatter_small.json" if args.small else "scatter.json"))
    if args.small:
        E, N, features, repeats = 20_000, 2_000, [16], max(3, min(args.repeats, 5))
    else:
        E, N, features, repeats = 1_000_000, 100_000, [int(f) for f in args.features.split(",")], args.repeats
    reduces = args.reduces.split(",")
    print(f"scatter benchmark: E={E:,} N={N:,} F={features} reduces={reduces} repeats={repeats} "
          f"backend={gops.backend()} torch_scatter={'yes' if torch_scatter else 'no'}")
    rows, scaling, spmm_rows = [], {}, []
    if args.spmm != "only":
        rows = run(E, N, features, reduces, repeats)
        scaling = parallel_scaling(E, N, features[min(1, len(features) - 1)], repeats)
    if args.spmm != "no":
        spmm_rows = run_spmm(E, N, 16 if args.small else 64, reduces, repeats)
        spmm_rows += run_spmm_feature(E, N, 16 if args.small else 64, reduces, repeats)
    verdicts = [judge(r) for r in rows]
    if rows:
        print()
        print(markdown(rows))
        checked = [v for v in verdicts if "ok" in v]
        print(f"\ntargets met: {sum(v['ok'] for v in checked)}/{len(checked)}")
    if spmm_rows:
        print("\nspmm (target: sum >= 1.5x the best anchor)\n")
        print(spmm_markdown(spmm_rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(E=E, N=N, repeats=repeats, machine=machine(), argv=sys.argv, parallel_scaling=scaling,
                                   rows=[dict(r, verdict=v) for r, v in zip(rows, verdicts)],
                                   spmm=spmm_rows), indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

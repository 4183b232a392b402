"""Second-minimum of a multiset: length generalisation of set aggregators.

Each example is a multiset of 8-bit integers given as bit vectors; the target
is its second-smallest element (counting multiplicity), a 256-way class.
Models are ``decoder(aggregate(encoder(bits)))`` with the same encoder and
decoder MLPs and the same optimiser budget for every aggregator; they train on
sizes 2-16 and are tested on sizes 32 and 64 (exact match).

Aggregators: graphequi ``LCMAggregation`` (symmetrised GRU and MLP cells, with
and without the associativity loss; the ordered GRU cell), PyG ``LCMAggregation``, ``GRUAggregation``,
``LSTMAggregation``, ``DeepSetsAggregation``, sum and max. The sequence
aggregators see each set in a random order (a set has none).

    python benchmarks/lcm_second_min.py                      # full table
    python benchmarks/lcm_second_min.py --steps 1500 --seeds 1   # reduced
    python benchmarks/lcm_second_min.py --small               # smoke test

Also measures how much a set's logits change when other (bigger) sets share
its batch, and, for the LCM variants, the associativity error
``mean ||(a+b)+c - a+(b+c)||^2`` of the trained operator on test inputs,
before and after training. Writes ``benchmarks/results/lcm_second_min.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch_geometric.nn.aggr as pyg_aggr
from torch import Tensor

from graphequi.nn.aggr import LCMAggregation, MaxAggregation, SumAggregation

RESULTS = Path(__file__).resolve().parent / "results"
BITS = 8


def make_batch(num_sets: int, low: int, high: int, gen: torch.Generator, device):
    """Sets of uniform sizes in ``[low, high]``, elements uniform in [0, 256),
    stored set after set (sorted index) in a random order within each set."""
    sizes = torch.randint(low, high + 1, (num_sets,), generator=gen)
    values = torch.randint(0, 2 ** BITS, (int(sizes.sum()),), generator=gen)
    index = torch.repeat_interleave(torch.arange(num_sets), sizes)
    order = torch.argsort(index * 2 ** 20 + torch.randint(0, 2 ** 20, index.shape, generator=gen))
    values = values[order]
    target = torch.stack([v.sort().values[1] for v in values.split(sizes.tolist())])
    bits = ((values.unsqueeze(1) >> torch.arange(BITS)) & 1).float()
    return bits.to(device), index.to(device), target.to(device)


def mlp(i: int, h: int, o: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.ReLU(), torch.nn.Linear(h, o))


class SetModel(torch.nn.Module):
    def __init__(self, aggr: torch.nn.Module, hidden: int):
        super().__init__()
        self.encoder, self.aggr, self.decoder = mlp(BITS, hidden, hidden), aggr, mlp(hidden, hidden, 2 ** BITS)

    def forward(self, bits, index, num_sets):
        return self.decoder(self.aggr(self.encoder(bits), index, dim_size=num_sets))


def aggregators(hidden: int) -> dict:
    """name -> (constructor, associativity-loss weight)."""
    d = hidden
    return {
        "graphequi-lcm-gru": (lambda: LCMAggregation(d, d, cell="gru"), 0.0),
        "graphequi-lcm-gru+assoc": (lambda: LCMAggregation(d, d, cell="gru"), 1.0),
        "graphequi-lcm-ordered-gru": (lambda: LCMAggregation(d, d, cell="ordered-gru"), 0.0),
        "graphequi-lcm-mlp": (lambda: LCMAggregation(d, d, cell="mlp"), 0.0),
        "graphequi-lcm-mlp+assoc": (lambda: LCMAggregation(d, d, cell="mlp"), 1.0),
        "pyg-lcm": (lambda: pyg_aggr.LCMAggregation(d, d), 0.0),
        "pyg-gru": (lambda: pyg_aggr.GRUAggregation(d, d), 0.0),
        "pyg-lstm": (lambda: pyg_aggr.LSTMAggregation(d, d), 0.0),
        "pyg-deepsets": (lambda: pyg_aggr.DeepSetsAggregation(mlp(d, d, d), mlp(d, d, d)), 0.0),
        "sum": (lambda: SumAggregation(), 0.0),
        "max": (lambda: MaxAggregation(), 0.0),
    }


def associativity(model: SetModel, bits: Tensor, gen_seed: int = 0):
    if not isinstance(model.aggr, LCMAggregation):
        return None
    with torch.no_grad():
        h = model.encoder(bits)
        return float(model.aggr.associativity_loss(h, 1024, torch.Generator(h.device).manual_seed(gen_seed)))



def batch_dependence(model, device) -> float:
    """Max change of the logits of 8 sets of size 32 between evaluating them
    alone and in one batch with 8 sets of size 64 (0 for a batch-independent
    aggregator, up to float rounding)."""
    model.eval()
    with torch.no_grad():
        small = make_batch(8, 32, 32, torch.Generator().manual_seed(5), device)
        big = make_batch(8, 64, 64, torch.Generator().manual_seed(6), device)
        alone = model(small[0], small[1], 8)
        bits = torch.cat([small[0], big[0]])
        mixed = model(bits, torch.cat([small[1], big[1] + 8]), 16)[:8]
    model.train()
    return float((alone - mixed).abs().max())


def accuracy(model, batches) -> float:
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for bits, index, target in batches:
            hits += int((model(bits, index, target.numel()).argmax(-1) == target).sum())
            total += target.numel()
    model.train()
    return hits / total


def run_one(name, make, weight, args, seed, tests, device):
    torch.manual_seed(seed)
    model = SetModel(make(), args.hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # the same schedule for every aggregator: a fixed budget ends with small steps
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps) if args.schedule == "cosine"
             else None)
    gen = torch.Generator().manual_seed(1000 + seed)  # same training data for every aggregator
    probe = tests[args.test_sizes[0]][0][0]
    assoc_before = associativity(model, probe)
    start = time.perf_counter()
    for _ in range(args.steps):
        bits, index, target = make_batch(args.batch, 2, 16, gen, device)
        loss = torch.nn.functional.cross_entropy(model(bits, index, target.numel()), target)
        if weight:
            loss = loss + weight * model.aggr.associativity_loss(model.encoder(bits), 128, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    seconds = time.perf_counter() - start
    row = {"model": name, "seed": seed, "train_s": seconds, "final_loss": float(loss.detach()),
           "assoc_before": assoc_before, "assoc_after": associativity(model, probe),
           "train_acc": accuracy(model, [make_batch(args.test_sets, 2, 16, torch.Generator().manual_seed(7), device)])}
    for size, batches in tests.items():
        row[f"acc_{size}"] = accuracy(model, batches)
    row["batch_dependence"] = batch_dependence(model, device)
    return row


def write(args, names, rows) -> dict:
    summary = []
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        if not mine:
            continue
        entry = {"model": name, "seeds": len(mine), "train_s": statistics.mean(r["train_s"] for r in mine)}
        for key in (["train_acc"] + [f"acc_{s}" for s in args.test_sizes]
                    + ["assoc_before", "assoc_after", "batch_dependence"]):
            vals = [r[key] for r in mine if r[key] is not None]
            entry[key] = statistics.mean(vals) if vals else None
        summary.append(entry)
    out = {"config": vars(args), "platform": platform.processor() or platform.machine(),
           "torch": torch.__version__, "rows": rows, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--schedule", choices=("cosine", "none"), default="cosine",
                   help="learning rate: cosine decay to 0 over --steps, or constant")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--test-sets", type=int, default=1000)
    p.add_argument("--test-sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--models", default=None, help="comma-separated subset of the aggregators")
    p.add_argument("--small", action="store_true", help="seconds-long smoke run")
    p.add_argument("--out", default=str(RESULTS / "lcm_second_min.json"))
    args = p.parse_args(argv)
    if args.small:
        args.steps, args.batch, args.hidden, args.seeds, args.test_sets = 3, 8, 8, 1, 8
    device = torch.device(args.device)
    table = aggregators(args.hidden)
    names = args.models.split(",") if args.models else list(table)
    unknown = set(names) - set(table)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {list(table)}")
    tests = {s: [make_batch(args.test_sets, s, s, torch.Generator().manual_seed(s), device)] for s in args.test_sizes}
    rows = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **_):
            return x
    jobs = [(seed, name) for seed in range(args.seeds) for name in names]  # models alternate within a seed
    for seed, name in tqdm(jobs, desc="second-min", disable=args.small):
        make, weight = table[name]
        rows.append(run_one(name, make, weight, args, seed, tests, device))
        r = rows[-1]
        print(f"{name:26s} seed {seed} " + " ".join(f"acc{s}={r[f'acc_{s}']:.3f}" for s in args.test_sizes)
              + f" train={r['train_acc']:.3f} ({r['train_s']:.0f}s)", flush=True)
        write(args, names, rows)  # after every model, so that a stopped run keeps its rows
    out = write(args, names, rows)
    cols = ["train_acc"] + [f"acc_{s}" for s in args.test_sizes]
    print("\n| aggregator | " + " | ".join(cols) + " | assoc err before -> after | batch dependence | train s |")
    print("|---" * (len(cols) + 4) + "|")
    for e in out["summary"]:
        assoc = ("-" if e["assoc_before"] is None else f"{e['assoc_before']:.2e} -> {e['assoc_after']:.2e}")
        print(f"| {e['model']} | " + " | ".join(f"{e[c]:.3f}" for c in cols) + f" | {assoc} | {e['batch_dependence']:.1e} | {e['train_s']:.0f} |")
    return out


if __name__ == "__main__":
    main()

"""SPEN on the TU graph classification benchmarks, 10-fold, the SPEN paper's protocol.

Protocol (Mitton & Murray-Smith, following GIN/PPGN): the published
stratified folds (``10fold_idx`` of the GIN-format files, read by
:class:`graphequi.datasets.GINTUDataset`), 50 epochs per fold, and per fold
the mean test accuracy of the last 10 epochs; the table reports the mean and
standard deviation of that figure over the folds. There is no validation
set (as in GIN), so nothing is selected on the test folds.

Every fold writes ``<runs>/<DATASET>/fold_<k>.json`` when it finishes; a
rerun skips the folds that have one (resumable), and the summary over the
finished folds goes to ``benchmarks/results/spen_tu.json`` (or ``--out``).

Usage:
    python benchmarks/spen_tu.py --datasets MUTAG,PTC [--folds 0-9] [--epochs 50]
    python benchmarks/spen_tu.py --small   # synthetic two-class data, seconds (smoke test)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm import tqdm

from graphequi.nn import SPEN
from graphequi.transforms import EgoNetBags

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: SPEN paper, Table (TU benchmarks): mean and std of the 10-fold accuracy (%)
PAPER = {"MUTAG": (89.5, 6.1), "PTC": (70.0, 11.3), "PROTEINS": (74.5, 2.3), "NCI1": (83.7, 1.5),
         "IMDBBINARY": (74.3, 3.7), "IMDBMULTI": (47.9, 3.0)}


def parse_folds(text: str) -> list[int]:
    folds = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        folds += list(range(int(a), int(b or a) + 1))
    return folds


def synthetic(num_graphs: int = 40, seed: int = 0):
    """Cycles (class 0) vs paths (class 1) of 5-9 nodes, with 10 folds."""
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        n = int(torch.randint(5, 10, (1,), generator=gen))
        src = torch.arange(n - (i % 2))
        e = torch.stack([src, (src + 1) % n])
        graphs.append(Data(x=torch.ones(n, 1), edge_index=torch.cat([e, e.flip(0)], 1),
                           y=torch.tensor([i % 2]), num_nodes=n))
    index = torch.arange(num_graphs)
    folds = [(index[index % 10 != k], index[index % 10 == k]) for k in range(10)]
    return graphs, folds, 2


def load(name: str, root: Path, source):
    from graphequi.datasets import GINTUDataset

    ds = GINTUDataset(root, name, source=source, log=False)
    graphs = [Data(x=g.x, edge_index=g.edge_index, y=g.y, num_nodes=g.num_nodes) for g in ds]
    return graphs, [ds.fold_split(k) for k in range(10)], int(ds.y.max()) + 1


def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in loader:
            correct += int((model(batch).argmax(-1) == batch.y).sum())
            total += batch.num_graphs
    return correct / total


def run_fold(graphs, split, num_classes, args, seed: int) -> dict:
    torch.manual_seed(seed)
    train_idx, test_idx = split
    train = [graphs[i] for i in train_idx.tolist()]
    test = [graphs[i] for i in test_idx.tolist()]
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, generator=gen)
    test_loader = DataLoader(test, batch_size=128)
    model = SPEN(num_classes, hidden_channels=args.hidden, num_layers=args.layers,
                 node_in_channels=graphs[0].x.size(1), size_map=args.size_map, dropout=args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step, gamma=0.5)
    curve = []
    for _ in range(args.epochs):
        model.train()
        total = 0.0
        for batch in train_loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(batch), batch.y)
            loss.backward()
            opt.step()
            total += loss.item() * batch.num_graphs
        sched.step()
        curve.append(dict(loss=total / len(train), test_acc=accuracy(model, test_loader)))
    last = [c["test_acc"] for c in curve[-10:]]
    return dict(test_acc_last10=statistics.fmean(last), curve=curve)


def summarize(runs_dir: Path, names) -> dict:
    out = {}
    for name in names:
        files = sorted((runs_dir / name).glob("fold_*.json"))
        accs = [json.loads(f.read_text())["test_acc_last10"] * 100 for f in files]
        if not accs:
            continue
        out[name] = dict(folds=len(accs), mean=statistics.fmean(accs),
                         std=statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                         per_fold=accs, paper=PAPER.get(name))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="MUTAG")
    parser.add_argument("--folds", default="0-9")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-step", type=int, default=25)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--size-map", type=int, default=8,
                        help="own weights for ego-nets up to this size (0: one weight set for all)")
    parser.add_argument("--num-hops", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="only cpu is wired up here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT / "runs" / "cache" / "spen_tu")
    parser.add_argument("--source", default="/work/shared/data", help="folder holding tu_gin_format/")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "spen_tu")
    parser.add_argument("--out", type=Path, default=RESULTS / "spen_tu.json")
    parser.add_argument("--small", action="store_true", help="synthetic data, 2 folds, 3 epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.small:
        names, args.folds, args.epochs, args.hidden, args.layers = ["SYNTHETIC"], "0-1", 3, 8, 2
    else:
        names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    transform = EgoNetBags(num_hops=args.num_hops)
    for name in names:
        graphs, folds, num_classes = synthetic() if args.small else load(name, args.root, args.source)
        graphs = [transform(g) for g in graphs]
        (args.runs / name).mkdir(parents=True, exist_ok=True)
        for k in tqdm(parse_folds(args.folds), desc=name):
            path = args.runs / name / f"fold_{k}.json"
            if path.exists():
                continue  # resumable: the fold finished in an earlier run
            t0 = time.perf_counter()
            result = run_fold(graphs, folds[k], num_classes, args, seed=k)
            result.update(fold=k, seconds=time.perf_counter() - t0, config={
                key: (str(v) if isinstance(v, Path) else v) for key, v in vars(args).items()})
            path.write_text(json.dumps(result, indent=1))
            print(f"{name} fold {k}: last-10 test acc {100 * result['test_acc_last10']:.1f}% "
                  f"({result['seconds']:.0f}s)", flush=True)
    summary = summarize(args.runs, names)
    for name, s in summary.items():
        paper = f"  paper {s['paper'][0]}±{s['paper'][1]}" if s["paper"] else ""
        print(f"{name}: {s['mean']:.1f} ± {s['std']:.1f} over {s['folds']} folds{paper}")
    result = dict(benchmark="spen_tu", results=summary, machine=platform.processor() or platform.machine(),
                  torch=torch.__version__, load=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Train PONITA on the charged 5-body benchmark (EGNN protocol: 3000 train
simulations, frame 30 -> 40, MSE of the positions) within a wall-clock cap.

Inputs per particle: the charge (scalar), the velocity and the position
relative to the centroid (two vectors); the model predicts the displacement
as one equivariant vector per node. The best validation epoch's test MSE is
reported.

    python benchmarks/ponita_nbody.py --time-limit-min 12
    python benchmarks/ponita_nbody.py --small          # seconds, tiny generated dataset

Writes ``benchmarks/results/ponita_nbody.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

from graphequi.datasets import NBodyCharged
from graphequi.nn import Ponita

RESULTS = Path(__file__).resolve().parent / "results"


def prepare(data):
    out = data.clone()
    out.vec = torch.cat([data.vec, (data.pos - data.pos.mean(0, keepdim=True)).unsqueeze(1)], 1)
    return out


def evaluate(model, loader):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            pred = batch.pos + model(batch).vector[:, 0]
            total += float(((pred - batch.y) ** 2).sum())
            count += batch.y.numel()
    return total / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("GRAPHEQUI_CACHE", "/tmp/graphequi_cache"))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--num-ori", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--time-limit-min", type=float, default=12.0)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "ponita_nbody.json"))
    args = parser.parse_args(argv)
    sizes = dict(num_train=40, num_valid=10, num_test=10, max_train=20) if args.small else {}
    if args.small:
        args.hidden, args.layers, args.num_ori, args.epochs, args.eval_every = 8, 1, 4, 2, 1
    splits = {s: [prepare(g) for g in NBodyCharged(args.root, s, log=False, **sizes)]
              for s in ("train", "valid", "test")}
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = Ponita(1, args.hidden, 0, in_vectors=2, out_vectors=1, num_layers=args.layers,
                   num_ori=args.num_ori, task_level="node").to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-10)
    gen = torch.Generator().manual_seed(args.seed)
    train = DataLoader(splits["train"], batch_size=args.batch_size, shuffle=True, generator=gen)
    valid = DataLoader(splits["valid"], batch_size=500)
    test = DataLoader(splits["test"], batch_size=500)
    start, history, best = time.time(), [], None
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in train:
            batch = batch.to(device)
            loss = ((batch.pos + model(batch).vector[:, 0] - batch.y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out_of_time = time.time() - start > 60 * args.time_limit_min
        if epoch % args.eval_every == 0 or out_of_time or epoch == args.epochs:
            val = evaluate(model, valid)
            row = {"epoch": epoch, "minutes": (time.time() - start) / 60, "train_loss": float(loss.detach()), "val_mse": val}
            if best is None or val < best["val_mse"]:
                row["test_mse"] = evaluate(model, test)
                best = row
            history.append(row)
            print(json.dumps(row), flush=True)
        if out_of_time:
            break
    result = {"benchmark": "ponita_nbody", "args": vars(args), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "params": sum(p.numel() for p in model.parameters()), "best": best, "history": history,
              "sizes": {k: len(v) for k, v in splits.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

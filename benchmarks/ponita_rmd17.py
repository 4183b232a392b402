"""Train PONITA on one rMD17 molecule (official split 01: 950 train / 50
validation frames from the train file, 1000 test frames) for energies and
forces, within a wall-clock cap, and report the energy MAE (meV) and the
force MAE (meV/Å) on the test frames at the best validation epoch.

Forces are :math:`-\\partial E / \\partial p` of the predicted energy
(:func:`graphequi.nn.energy_and_forces`), so the loss trains through the
second derivative. Targets are normalised with the training set's mean
energy and force RMS :math:`s`: the model predicts :math:`(E - \\bar E)/s`,
whose negative gradient is then :math:`F / s`. Loss: ``energy_weight`` x
L1 on that normalised energy plus L1 on the normalised forces.
``--schedule cosine`` decays the learning rate along a cosine over the
wall-clock cap.

    python benchmarks/ponita_rmd17.py --time-limit-min 60
    python benchmarks/ponita_rmd17.py --small --source DIR   # seconds; used by a smoke test

Writes ``benchmarks/results/ponita_rmd17.json``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

from graphequi.datasets import RMD17
from graphequi.nn import Ponita, energy_and_forces
from graphequi.transforms import RadiusGraph
from timed_training import train_within_cap, write_result

RESULTS = Path(__file__).resolve().parent / "results"


def evaluate(model, loader, mean, scale):
    """Energy MAE [meV] and force MAE [meV/Å, per component] over ``loader``."""
    model.eval()
    energy_err, force_err, graphs, comps = 0.0, 0.0, 0, 0
    for batch in loader:
        energy, forces = energy_and_forces(model, batch, create_graph=False)
        energy_err += float((energy.detach().double() * scale + mean - batch.y.view(-1)).abs().sum())
        force_err += float((forces.detach() * scale - batch.force).abs().sum())
        graphs, comps = graphs + batch.num_graphs, comps + batch.force.numel()
    return energy_err / graphs, force_err / comps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="aspirin")
    parser.add_argument("--root", default=os.environ.get("GRAPHEQUI_CACHE", "/tmp/graphequi_cache"))
    parser.add_argument("--source", default=None, help="folder holding rmd17_npz/ (default ../shared/data)")
    parser.add_argument("--radius", type=float, default=5.0)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--num-ori", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--energy-weight", type=float, default=0.1)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="cosine")
    parser.add_argument("--epochs", type=int, default=10000)
    parser.add_argument("--time-limit-min", type=float, default=60.0)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="tiny model, 16 train / 8 test frames, 2 epochs")
    parser.add_argument("--out", default=str(RESULTS / "ponita_rmd17.json"))
    args = parser.parse_args(argv)
    if args.small:
        args.hidden, args.layers, args.num_ori, args.epochs, args.eval_every = 8, 1, 4, 2, 1
    graph = RadiusGraph(args.radius, max_num_neighbors=None)
    splits = {s: [graph(g) for g in RMD17(args.root, args.molecule, s, source=args.source, log=False)]
              for s in ("train", "val", "test")}
    if args.small:
        splits = {"train": splits["train"][:16], "val": splits["val"][:4], "test": splits["test"][:8]}
    energies = torch.cat([g.y.view(-1) for g in splits["train"]])
    mean = float(energies.mean())
    scale = float(torch.cat([g.force for g in splits["train"]]).pow(2).mean().sqrt())
    torch.manual_seed(args.seed)
    num_elements = splits["train"][0].x.size(1)
    model = Ponita(num_elements, args.hidden, 1, num_layers=args.layers, num_ori=args.num_ori,
                   radius=args.radius, task_level="graph", pool="sum")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    train = DataLoader(splits["train"], batch_size=args.batch_size, shuffle=True, generator=gen)
    valid = DataLoader(splits["val"], batch_size=50)
    test = DataLoader(splits["test"], batch_size=50)
    def step(batch):
        energy, forces = energy_and_forces(model, batch, create_graph=True)
        target_e = ((batch.y.view(-1) - mean) / scale).float()
        return args.energy_weight * (energy - target_e).abs().mean() + (forces - batch.force / scale).abs().mean()

    def validate():
        energy_mae, force_mae = evaluate(model, valid, mean, scale)
        return {"val_energy_mae": energy_mae, "val_force_mae": force_mae}

    def test_split():
        energy_mae, force_mae = evaluate(model, test, mean, scale)
        return {"test_energy_mae": energy_mae, "test_force_mae": force_mae}

    def record(best, history):
        return write_result(args.out, "ponita_rmd17", args, model, energy_mean_mev=mean,
                            force_rms_mev_per_a=scale, best=best, history=history,
                            sizes={k: len(v) for k, v in splits.items()})

    best, history = train_within_cap(
        model, opt, train, step, validate, test_split, score="val_force_mae", lr=args.lr,
        schedule=args.schedule, epochs=args.epochs, time_limit_min=args.time_limit_min,
        eval_every=args.eval_every, on_record=record)
    return record(best, history)


if __name__ == "__main__":
    main()

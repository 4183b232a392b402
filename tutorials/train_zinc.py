"""Tutorial: train PPGN++ on ZINC-12k with graphequi.

PPGN++ (Puny et al., ICML 2023) is a 2-FWL network (PPGN) that also reads the
12 equivariant polynomials of degree <= 6 that PPGN cannot compute on its own
(``graphequi.poly.select('ppgn++')``), given as extra pair channels. This
script walks through the pieces and then trains with the graphequi trainer:

1. load ZINC-12k (offline: official val/test + a stand-in training set);
2. compute the ``ppgn++`` pair features with ``PolynomialFeatures``;
3. build ``PPGNPlusPlus`` and run one batch through it by hand;
4. train with ``graphequi.train.train`` (checkpoints, curves, summary) --
   the same as ``graphequi train --dataset zinc --model ppgn++``.

Run::

    python tutorials/train_zinc.py --tiny            # 64 graphs per split, 1 epoch, small model
    python tutorials/train_zinc.py --epochs 400      # the reference model (use a GPU: --device cuda)
"""
from __future__ import annotations

import argparse
import shlex

import torch
from torch_geometric.loader import DataLoader

from graphequi.datasets import get_dataset
from graphequi.nn import PPGNPlusPlus
from graphequi.train import TrainConfig, train
from graphequi.transforms import PolynomialFeatures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="64 graphs per split, 1 epoch, a small model")
    parser.add_argument("--root", default="data", help="writable dataset cache")
    parser.add_argument("--out", default="runs/tutorial-zinc", help="output folder")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    subset = 64 if args.tiny else None
    epochs = args.epochs or (1 if args.tiny else 400)
    # The reference ZINC model: 8 blocks of width 95 (~0.58M parameters).
    model_kwargs = dict(hidden_channels=16, num_layers=2) if args.tiny else dict(hidden_channels=95, num_layers=8)

    # 1. Data. Every split is a PyG dataset of molecules: x = atom type (28), edge_attr = bond type (1-3).
    splits = get_dataset("zinc", args.root, log=not args.tiny)
    print(f"{splits.result_name}: {len(splits.train)} / {len(splits.val)} / {len(splits.test)} graphs")
    molecules = [splits.val[i] for i in range(8)]

    # 2. Polynomial pair features: 12 values for every ordered pair of atoms (n^2 rows per molecule).
    pair = PolynomialFeatures("ppgn++", level="pair")
    featured = pair.apply_to_dataset(molecules, progress=False)
    print(pair, "->", "poly_pair_attr", tuple(featured[0].poly_pair_attr.shape),
          "for a molecule with", featured[0].num_nodes, "atoms")

    # 3. The model reads a PyG batch and pads it to a dense [B, N, N, C] tensor with a node mask.
    model = PPGNPlusPlus(1, node_vocab=28, edge_vocab=4, poly_channels=pair.num_features, **model_kwargs)
    print(model, f"-- {sum(p.numel() for p in model.parameters()):,} parameters")
    batch = next(iter(DataLoader(featured, batch_size=8)))
    with torch.no_grad():
        print("predictions for 8 molecules:", model.eval()(batch).view(-1)[:4].tolist(), "...")

    # 4. Train: L1 loss, Adam, learning rate halved on a validation plateau, test at the best
    #    validation epoch; one checkpoint per epoch (rerun with resume=True to continue).
    cfg = TrainConfig(dataset="zinc", model="ppgn++", root=args.root, out=args.out, epochs=epochs,
                      batch_size=32 if args.tiny else 64, lr=1e-3, lr_patience=20, subset=subset,
                      device=args.device, bucket_by_size=True, progress=not args.tiny,
                      model_kwargs=model_kwargs)
    summary = train(cfg)
    flags = [f"--dataset zinc --model ppgn++ --epochs {epochs} --batch-size {cfg.batch_size}",
             f"--root {args.root} --out {args.out} --bucket-by-size"]
    flags += [f"--model-arg {k}={v}" for k, v in model_kwargs.items()]
    if subset:
        flags.append(f"--subset {subset}")
    print("\nThe same run from the command line:\n  graphequi train " + " ".join(flags))
    print(f"Results: {shlex.quote(args.out)}/summary.json, learning_curve.png, seed0/metrics.jsonl")
    return summary


if __name__ == "__main__":
    main()

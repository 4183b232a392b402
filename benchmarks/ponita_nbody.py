"""Train PONITA or FA-GNN on the charged 5-body benchmark (EGNN protocol:
3000 train simulations, frame 30 -> 40, MSE of the positions) within a
wall-clock cap.

Inputs per particle: the charge (scalar), the velocity and the position
relative to the centroid (two vectors); the model predicts the displacement
as one equivariant vector per node. The best validation epoch's test MSE is
reported.

``--model fa-gnn`` is frame averaging (Puny et al., ICLR 2022) over a plain,
non-equivariant message-passing network that reads the coordinates of each
PCA frame as features (:class:`CoordinateGNN`). Both models see the charge
products :math:`q_i q_j` as edge scalars (PONITA in its spatial kernel;
``--no-edge-charges`` leaves them out, so that charges enter only as node
scalars). ``--augment`` moves every training graph by a fresh random
orthogonal map at every step: grid PONITA is only approximately equivariant
(relative error about 0.24 at O = 8, see ``ponita_speed.py``), so without it
the model can fit orientation-specific detail of the 3000 training systems. ``--schedule cosine`` decays
the learning rate along a cosine over the wall-clock cap (the number of
epochs that fit is not known in advance), so the run ends at a small rate
however fast the machine is.

    python benchmarks/ponita_nbody.py --time-limit-min 12
    python benchmarks/ponita_nbody.py --model fa-gnn --schedule cosine --time-limit-min 85
    python benchmarks/ponita_nbody.py --augment --schedule cosine --time-limit-min 80 --num-ori 8
    python benchmarks/ponita_nbody.py --small          # seconds, tiny generated dataset

Writes ``benchmarks/results/ponita_nbody.json``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn
from torch_geometric.loader import DataLoader

from graphequi.datasets import NBodyCharged
from graphequi.nn import FrameAveraging, Ponita, PointCloudOutput
from graphequi.nn.aggr import SumAggregation
from timed_training import train_within_cap, write_result

RESULTS = Path(__file__).resolve().parent / "results"


def prepare(data):
    out = data.clone()
    out.vec = torch.cat([data.vec, (data.pos - data.pos.mean(0, keepdim=True)).unsqueeze(1)], 1)
    return out


class CoordinateGNN(nn.Module):
    r"""A message-passing network with no symmetry of its own: coordinates
    and vectors are plain input features,

    .. math::
        m_{ij} = \phi_m(h_i, h_j, p_j - p_i, \lVert p_j - p_i \rVert, e_{ij}),
        \qquad h_i \leftarrow h_i + \phi_h\big(h_i, \textstyle\sum_j m_{ij}\big),

    with :math:`h^{(0)}_i = \phi_0(x_i, p_i, v_i)` and one output vector
    :math:`W h_i`. Equivariance comes only from :class:`FrameAveraging`.

    Args:
        in_scalars: node scalars ``data.x`` ``[N, S]``.
        in_vectors: node vectors ``data.vec`` ``[N, V, 3]``.
        edge_dim: edge scalars ``data.edge_attr`` ``[E, D]``.
        hidden: width.
        num_layers: message-passing steps.
    """

    def __init__(self, in_scalars: int, in_vectors: int, edge_dim: int, hidden: int, num_layers: int):
        super().__init__()
        act = nn.SiLU
        self.embed = nn.Sequential(nn.Linear(in_scalars + 3 * in_vectors + 3, hidden), act(),
                                   nn.Linear(hidden, hidden))
        self.message = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * hidden + 4 + edge_dim, hidden), act(), nn.Linear(hidden, hidden), act())
            for _ in range(num_layers))
        self.update = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * hidden, hidden), act(), nn.Linear(hidden, hidden))
            for _ in range(num_layers))
        self.aggr = SumAggregation()
        self.out = nn.Linear(hidden, 3)

    def forward(self, data):
        src, dst = data.edge_index
        rel = data.pos.index_select(0, src) - data.pos.index_select(0, dst)
        geo = torch.cat([rel, rel.norm(dim=-1, keepdim=True), data.edge_attr.view(rel.size(0), -1)], -1)
        h = self.embed(torch.cat([data.x, data.vec.flatten(1), data.pos], -1))
        for message, update in zip(self.message, self.update):
            m = message(torch.cat([h.index_select(0, dst), h.index_select(0, src), geo], -1))
            h = h + update(torch.cat([h, self.aggr(m, dst, dim_size=h.size(0))], -1))
        return PointCloudOutput(None, self.out(h).unsqueeze(1))


def random_orthogonal(num: int, generator: torch.Generator) -> torch.Tensor:
    """``[num, 3, 3]`` Haar-random orthogonal matrices (rotations and reflections)."""
    q, r = torch.linalg.qr(torch.randn(num, 3, 3, generator=generator))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def rotate_batch(batch, generator: torch.Generator):
    """The batch with every graph moved by its own random orthogonal map
    (positions, input vectors and targets alike): augmentation for models
    that are only approximately equivariant (grid PONITA) or not at all."""
    rot = random_orthogonal(batch.num_graphs, generator).to(batch.pos)[batch.batch]     # [N, 3, 3]
    out = batch.clone()
    out.pos = torch.einsum("nd,nde->ne", batch.pos, rot)
    out.y = torch.einsum("nd,nde->ne", batch.y, rot)
    out.vec = torch.einsum("nvd,nde->nve", batch.vec, rot)
    return out


def build_model(args):
    if args.model == "ponita":
        return Ponita(1, args.hidden, 0, in_vectors=2, out_vectors=1, num_layers=args.layers,
                      num_ori=args.num_ori, task_level="node", edge_scalars=int(args.edge_charges))
    if args.model == "fa-gnn":
        return FrameAveraging(CoordinateGNN(1, 2, 1, args.hidden, args.layers), group="E3",
                              check_degenerate=False, stochastic=args.stochastic_frames)
    raise ValueError(f"unknown model {args.model!r}")


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
    parser.add_argument("--model", choices=("ponita", "fa-gnn"), default="ponita")
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                        help="cosine: decay the learning rate over the wall-clock cap")
    parser.add_argument("--edge-charges", action=argparse.BooleanOptionalAction, default=True,
                        help="PONITA: feed the charge products q_i q_j (data.edge_attr) to the spatial kernel")
    parser.add_argument("--stochastic-frames", action="store_true",
                        help="fa-gnn: train on one random PCA frame per system and step, "
                             "evaluate on all eight (FrameAveraging(stochastic=True))")
    parser.add_argument("--augment", action="store_true",
                        help="a random rotation/reflection of every training graph at every step")
    parser.add_argument("--root", default=os.environ.get("GRAPHEQUI_CACHE", "/tmp/graphequi_cache"))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--num-ori", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--decoupled-weight-decay", type=float, default=None,
                        help="train with AdamW and this weight decay (default: Adam with 1e-10, EGNN's setting)")
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
    model = build_model(args).to(device)
    if args.decoupled_weight_decay is None:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-10)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.decoupled_weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    train = DataLoader(splits["train"], batch_size=args.batch_size, shuffle=True, generator=gen)
    valid = DataLoader(splits["valid"], batch_size=500)
    test = DataLoader(splits["test"], batch_size=500)
    def step(batch):
        if args.augment:
            batch = rotate_batch(batch, gen)
        batch = batch.to(device)
        return ((batch.pos + model(batch).vector[:, 0] - batch.y) ** 2).mean()

    def record(best, history):
        return write_result(args.out, "ponita_nbody", args, model, best=best, history=history,
                            sizes={k: len(v) for k, v in splits.items()})

    best, history = train_within_cap(
        model, opt, train, step, lambda: {"val_mse": evaluate(model, valid)},
        lambda: {"test_mse": evaluate(model, test)}, score="val_mse", lr=args.lr, schedule=args.schedule,
        epochs=args.epochs, time_limit_min=args.time_limit_min, eval_every=args.eval_every, on_record=record)
    return record(best, history)


if __name__ == "__main__":
    main()

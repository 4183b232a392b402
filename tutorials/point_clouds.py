"""Tutorial: point clouds as graphs, PONITA and frame averaging.

Run it:  python tutorials/point_clouds.py [--tiny] [--root DIR] [--out DIR]

1. Build a radius graph (torch_cluster's conventions, no torch_cluster).
2. Look at the bi-invariant edge attributes of R^3 x S^2 on a Fibonacci grid.
3. Lift a graph to a position-orientation point cloud.
4. Check equivariance: PNITA (distances) and the lifted PONITA are exact, a
   grid PONITA is approximate, frame averaging makes it exact.
5. Train PONITA for a few epochs on the charged 5-body benchmark.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

from graphequi.datasets import NBodyCharged  # noqa: E402
from graphequi.geometry import fibonacci_sphere, radius_graph  # noqa: E402
from graphequi.nn import FrameAveraging, Ponita  # noqa: E402
from graphequi.testing import random_rotation  # noqa: E402
from graphequi.transforms import BundleEdgeAttributes, PositionOrientationGraph  # noqa: E402


def section(title: str) -> None:
    print(f"\n== {title} ==")


def vector_error(model, data, rot):
    moved = data.clone()
    moved.pos, moved.vec = data.pos @ rot.T + 1.0, data.vec @ rot.T
    with torch.no_grad():
        ref, got = model(data).vector, model(moved).vector
    return float((got - ref @ rot.T).abs().max() / ref.abs().max())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes (used by the tests)")
    parser.add_argument("--root", default="/tmp/graphequi_cache", help="dataset cache")
    parser.add_argument("--out", default="tutorial_point_clouds", help="output directory for figures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    gen = torch.Generator().manual_seed(0)

    section("1. radius graph")
    pos = torch.rand(200 if args.tiny else 5000, 3, generator=gen)
    edge_index = radius_graph(pos, 0.2, max_num_neighbors=16)
    print(f"{pos.size(0)} points, {edge_index.size(1)} edges; edge_index[0] = source j, [1] = target i,"
          f" sorted by target; at most 16 neighbors each")
    summary["max_degree"] = int(torch.bincount(edge_index[1]).max())

    section("2. bundle invariants on a Fibonacci grid")
    grid = fibonacci_sphere(32)
    cloud = Data(pos=pos[:6].double(), edge_index=radius_graph(pos[:6].double(), 2.0))
    attrs = BundleEdgeAttributes(32)(cloud)
    print(f"spatial attributes {tuple(attrs.edge_attr.shape)} = (r.o, |r - (r.o) o|), "
          f"fiber attributes {tuple(attrs.fiber_attr.shape)} = o_k . o_l")
    fig = plt.figure(figsize=(4, 4))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(*grid.T.numpy(), c=attrs.edge_attr[0, :, 0].numpy(), cmap="coolwarm")
    ax.set_title("r . o over the grid (one edge)")
    figure = out / "fibonacci_grid.png"
    fig.savefig(figure, dpi=80)
    plt.close(fig)
    summary["figure"] = str(figure)

    section("3. lifting to a position-orientation point cloud")
    lifted = PositionOrientationGraph()(cloud)
    print(f"{cloud.num_nodes} points, {cloud.num_edges} edges -> {lifted.num_nodes} oriented points, "
          f"{lifted.num_edges} lifted edges")
    summary["lifted_nodes"] = lifted.num_nodes

    section("4. equivariance")
    data = Data(pos=torch.randn(8, 3, generator=gen, dtype=torch.float64),
                x=torch.randn(8, 1, generator=gen, dtype=torch.float64),
                vec=torch.randn(8, 1, 3, generator=gen, dtype=torch.float64))
    data.edge_index = radius_graph(data.pos, 10.0)
    rot = random_rotation(torch.Generator().manual_seed(1), reflect=True)
    errors = {}
    for name, num_ori in (("lifted (num_ori=-1)", -1), ("grid O=8", 8), ("grid O=32", 32)):
        torch.manual_seed(0)
        net = Ponita(1, 16, 1, in_vectors=1, out_vectors=1, num_layers=2, num_ori=num_ori,
                     task_level="node", layer_scale=None).double()
        errors[name] = vector_error(net, data, rot)
        if num_ori == 8:
            errors["grid O=8 + frame averaging"] = vector_error(FrameAveraging(net), data, rot)
    for name, err in errors.items():
        print(f"  {name:28s} relative error {err:.1e}")
    summary["errors"] = errors

    section("5. a few epochs on charged 5-body")
    sizes = dict(num_train=40, num_valid=10, num_test=10, max_train=20) if args.tiny else {}
    train = NBodyCharged(args.root, "train", log=False, **sizes)
    valid = NBodyCharged(args.root, "valid", log=False, **sizes)

    def prepare(g):
        g = g.clone()
        g.vec = torch.cat([g.vec, (g.pos - g.pos.mean(0)).unsqueeze(1)], 1)
        return g
    train, valid = [prepare(g) for g in train], [prepare(g) for g in valid]
    torch.manual_seed(0)
    model = Ponita(1, 16 if args.tiny else 64, 0, in_vectors=2, out_vectors=1, num_layers=2 if args.tiny else 4,
                   num_ori=6 if args.tiny else 12, task_level="node")
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    loader = DataLoader(train, batch_size=10 if args.tiny else 100, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for epoch in range(2 if args.tiny else 20):
        for batch in loader:
            loss = ((batch.pos + model(batch).vector[:, 0] - batch.y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        batch = next(iter(DataLoader(valid, batch_size=len(valid))))
        val = float(((batch.pos + model(batch).vector[:, 0] - batch.y) ** 2).mean())
    print(f"validation MSE after {epoch + 1} epochs: {val:.4f}")
    summary["val_mse"] = val
    return summary


if __name__ == "__main__":
    main()

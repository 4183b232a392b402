"""Tutorial: learnable commutative monoid (LCM) aggregation.

Run it:  python tutorials/lcm.py [--tiny]

1. Reduce sets with LCMAggregation: a balanced binary tree of a learned
   commutative operator, padded with a learned identity; empty sets give it.
2. See that the output does not depend on the order of the elements or on the
   other sets of the batch, and that PyG's LCMAggregation does on both.
3. Plug in an exactly associative operator (max) and recover scatter-max.
4. Train a GIN with LCM aggregation (PolyGIN with aggr=LCMAggregation.square())
   on a toy graph task, with the associativity loss as a regulariser, and
   watch the associativity error.
"""
from __future__ import annotations

import argparse

import torch
import torch_geometric.nn.aggr as pyg_aggr
from torch_geometric.data import Batch, Data

from graphequi import ops
from graphequi.nn import PolyGIN
from graphequi.nn.aggr import LCMAggregation


def section(title: str) -> None:
    print(f"\n== {title} ==")


def toy_graphs(num: int, gen: torch.Generator) -> list[Data]:
    """Random graphs labelled by whether they have a node of degree >= 4."""
    graphs = []
    for _ in range(num):
        n = int(torch.randint(5, 12, (1,), generator=gen))
        edge_index = torch.randint(0, n, (2, 2 * n), generator=gen)
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        degree = torch.bincount(edge_index[1], minlength=n)
        graphs.append(Data(edge_index=edge_index, num_nodes=n, y=(degree.max() >= 6).float().view(1, 1)))
    return graphs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes (used by the tests)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    summary = {}

    section("1. reduce sets with a learned commutative monoid")
    agg = LCMAggregation(4, 8, cell="gru")
    x = torch.randn(7, 4, generator=gen)
    index = torch.tensor([0, 2, 0, 0, 2, 0, 0])  # set 1 is empty
    out = agg(x, index, dim_size=3)
    print(agg)
    print("output shape", tuple(out.shape), "| empty set gives the identity:",
          torch.equal(out[1], agg.identity_element()))
    summary["empty_is_identity"] = torch.equal(out[1], agg.identity_element())

    section("2. order and batch independence (graphequi vs PyG)")
    perm = torch.randperm(7, generator=gen)
    ours_perm = (agg(x[perm], index[perm], dim_size=3) - out).abs().max().item()
    theirs = pyg_aggr.LCMAggregation(4, 8)
    order = index.argsort(stable=True)  # PyG's version needs a sorted index
    xs, ids = x[order], index[order]  # sets of 5 and 2 elements
    pyg_out = theirs(xs, ids, dim_size=3)
    reverse = torch.tensor([4, 3, 2, 1, 0, 6, 5])  # the same sets, each in reverse order
    pyg_perm = (theirs(xs[reverse], ids, dim_size=3) - pyg_out).abs().max().item()
    alone = agg(x[index == 2], torch.zeros(2, dtype=torch.long), dim_size=1)[0]
    ours_batch = (alone - out[2]).abs().max().item()
    pyg_alone = theirs(x[index == 2], torch.zeros(2, dtype=torch.long), dim_size=1)[0]
    pyg_batch = (pyg_alone - pyg_out[2]).abs().max().item()
    print(f"max change when the elements are reordered: graphequi {ours_perm:.1e}, PyG {pyg_perm:.1e}")
    print(f"max change of set 2 alone vs batched with a set of 5: graphequi {ours_batch:.1e}, PyG {pyg_batch:.1e}")
    summary.update(ours_perm=ours_perm, ours_batch=ours_batch, pyg_batch=pyg_batch)

    section("3. an exactly associative operator recovers scatter-max")
    exact = LCMAggregation(4, 4, cell="max", identity=float("-inf"), project=False)
    same = torch.equal(exact(x, index, dim_size=3)[[0, 2]], ops.scatter(x, index, dim_size=3, reduce="max")[[0, 2]])
    print("max cell == scatter max:", same)
    summary["max_equals_scatter"] = same

    section("4. GIN with LCM aggregation on a toy task")
    graphs = toy_graphs(32 if args.tiny else 256, gen)
    model = PolyGIN(1, hidden_channels=16, num_layers=2, aggr=LCMAggregation.square(cell="mlp"), dropout=0.0)
    print(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = Batch.from_data_list(graphs)
    lcm = model.convs[1].aggr_module
    probe = torch.randn(64, 16, generator=gen)
    with torch.no_grad():
        before = float(lcm.associativity_loss(probe, 256, torch.Generator().manual_seed(1)))
    steps = 5 if args.tiny else 200
    for step in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch.y)
        reg = sum(conv.aggr_module.associativity_loss(probe[:, :conv.aggr_module.in_channels], 64, gen)
                  for conv in model.convs)
        (loss + 0.1 * reg).backward()
        opt.step()
        if step % max(1, steps // 5) == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  associativity {reg.item():.2e}")
    with torch.no_grad():
        after = float(lcm.associativity_loss(probe, 256, torch.Generator().manual_seed(1)))
        accuracy = float(((model(batch) > 0).float() == batch.y).float().mean())
    print(f"associativity error of layer 2: {before:.2e} -> {after:.2e}; training accuracy {accuracy:.2f}")
    summary.update(loss=float(loss.detach()), assoc_before=before, assoc_after=after, accuracy=accuracy)
    return summary


if __name__ == "__main__":
    main()

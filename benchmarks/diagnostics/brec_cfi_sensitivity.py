"""How far apart PPGN's pair features of a BREC pair are, block by block, at initialization.

For one pair (default brec-260, a CFI pair that 2-FWL separates), builds
``PPGNPlusPlus`` (width 32, no polynomial channels, float64, random weights)
and prints, after every block, the largest difference between the two graphs'
*sorted* per-channel pair features (an invariant comparison: 0 up to rounding
when the block cannot tell the graphs apart) next to the features' scale.

    python benchmarks/diagnostics/brec_cfi_sensitivity.py brec-260 10 --brec ../shared/data/brec
"""
import argparse

import torch
from torch_geometric.data import Batch

from graphequi.expressivity import load_brec, wl_equivalent
from graphequi.expressivity.brec import to_data
from graphequi.nn import PPGNPlusPlus


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pair", nargs="?", default="brec-260")
    p.add_argument("blocks", nargs="?", type=int, default=10)
    p.add_argument("--brec", default="../shared/data/brec")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pair = {q.name: q for q in load_brec(args.brec)}[args.pair]
    print(f"{args.pair} ({pair.category}): 2-FWL equivalent: {wl_equivalent(pair.first, pair.second, k=2)}")
    datas = [to_data(g, None) for g in (pair.first, pair.second)]
    for d in datas:
        d.x = d.x.double()
    batch = Batch.from_data_list(datas)
    torch.manual_seed(args.seed)
    model = PPGNPlusPlus(16, hidden_channels=32, num_layers=args.blocks, node_in_channels=1, dropout=0.0,
                         readout="mean").double().train()
    with torch.no_grad():
        x, mask = model.to_dense(batch)
        for i, block in enumerate(model.blocks):
            x = block(x, mask)
            a = torch.sort(x[:, 0].reshape(x.size(0), -1), dim=1).values
            b = torch.sort(x[:, 1].reshape(x.size(0), -1), dim=1).values
            print(f"block {i + 1}: sorted-feature difference {(a - b).abs().max().item():.2e}, "
                  f"scale {x[:, 0].abs().max().item():.2e}", flush=True)


if __name__ == "__main__":
    main()

"""Message passing in a real model: a GIN training epoch on graphequi's kernels
against PyG's own paths, side by side.

The network is the same in every column (``graphequi.nn.PolyGIN``: a linear
node encoder, 4 GIN layers with batch norm, mean pooling, a linear head; same
weights); only the aggregation and the pooling change:

* ``pyg``: PyG's ``GINConv`` on ``edge_index`` (gather ``[E, F]`` messages,
  then ``torch_geometric.utils.scatter``) and ``global_mean_pool``;
* ``pyg-csr``: PyG's ``GINConv`` on a ``torch.sparse_csr`` ``adj_t`` (PyG's
  ``spmm``: ``torch.sparse.mm``), built once per batch before timing;
* ``torch_scatter``: PyG's path with ``torch_scatter`` installed, when importable;
* ``graphequi``: graphequi's ``GINConv`` on ``edge_index`` through
  ``graphequi.nn.aggr`` (``PolyGIN(fused=False)``), segment pooling;
* ``graphequi-csr``: the default ``PolyGIN``, which sorts ``edge_index`` into a
  CSR once per forward and aggregates every layer with ``graphequi.ops.spmm``;
* ``graphequi-csr-cached``: the same with the ``graphequi.ops.CSR`` (and its
  transpose) built once per batch before timing, as a transform would;
* ``graphequi-compiled``: ``torch.compile(PolyGIN, dynamic=True)``;
* ``floor``: the same network with the aggregation removed (MLPs, norms,
  pooling, optimizer): what is left when message passing costs nothing.

A column's *aggregation overhead* is its epoch time minus the floor's.
Epoch = forward + backward + Adam step over every batch; the columns are
timed round-robin (so load changes on a shared machine hit all alike) and the
medians are reported.

    python benchmarks/message_passing.py                    # synthetic GIN, sum/mean/max, molhiv
    python benchmarks/message_passing.py --small            # seconds; used by the smoke test
    python benchmarks/message_passing.py --device cuda      # on a GPU

Writes ``benchmarks/results/message_passing.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv as PyGGINConv
from torch_geometric.nn import global_mean_pool

from graphequi import ops
from graphequi._platform import cpu_model
from graphequi.nn import PolyGIN

try:
    import torch_scatter  # noqa: F401  optional anchor: PyG dispatches to it when importable
except Exception:  # noqa: BLE001 - any import failure means "not available"
    torch_scatter = None

RESULTS = Path(__file__).resolve().parent / "results"
REDUCES = ("sum", "mean", "max")


def random_graphs(num_graphs: int, mean_nodes: int, degree: int, in_channels: int, seed: int) -> list[Data]:
    """Graphs of ``mean_nodes +- 5`` nodes; each node links to ``degree / 2``
    random others, symmetrised (mean degree about ``degree``)."""
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(mean_nodes - 5, mean_nodes + 6, (1,), generator=gen))
        src = torch.arange(n).repeat_interleave(degree // 2)
        dst = (src + torch.randint(1, n, (src.numel(),), generator=gen)) % n
        edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
        graphs.append(Data(x=torch.randn(n, in_channels, generator=gen), edge_index=edge_index,
                           y=torch.randn(1, 1, generator=gen)))
    return graphs


def molhiv_graphs(limit: int) -> list[Data]:
    """The first ``limit`` molecules of ogbg-molhiv (OGB featurization, atom
    features as floats for a linear encoder)."""
    from graphequi.datasets import default_source
    from graphequi.datasets.ogb_mol import mol_from_smiles, mol_to_ogb_graph

    path = Path(default_source()) / "moleculenet_hiv" / "HIV_with_index.csv"
    graphs = []
    with path.open() as f:
        for row in csv.DictReader(f):
            mol, _ = mol_from_smiles(row["smiles"])
            g = mol_to_ogb_graph(mol)
            graphs.append(Data(x=g.x.float(), edge_index=g.edge_index, y=torch.tensor([[float(row["HIV_active"])]]),
                               num_nodes=g.num_nodes))
            if len(graphs) == limit:
                break
    return graphs


class PyGGIN(PolyGIN):
    """PolyGIN's network with PyG's ``GINConv`` (same MLP modules) and PyG's pooling."""

    def __init__(self, *args, aggr: str = "sum", **kwargs):
        super().__init__(*args, aggr=aggr, **kwargs)
        self.convs = torch.nn.ModuleList(PyGGINConv(conv.nn, aggr=aggr) for conv in self.convs)

    def forward(self, data):
        h = self._node_input(data, data.x.size(0))
        adj = getattr(data, "pyg_adj_t", None)
        adj = data.edge_index if adj is None else adj
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h, adj))
            if i < self.num_layers - 1:
                h = torch.relu(h)
        return self.head(global_mean_pool(h, data.batch, int(data.num_graphs)))


class Floor(PolyGIN):
    """PolyGIN's network without aggregation: ``h' = MLP((1 + eps) h)``."""

    def forward(self, data):
        h = self._node_input(data, data.x.size(0))
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv.nn((1 + conv.eps) * h))
            if i < self.num_layers - 1:
                h = torch.relu(h)
        return self.head(ops.segment(h, data.ptr, "mean"))


def epoch_fn(model: torch.nn.Module, batches: list, forward=None):
    forward = model if forward is None else forward
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def run():
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(forward(batch), batch.y)
            loss.backward()
            optimizer.step()
    return run


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(benches: dict, repeats: int, device: str, warmup: int = 1) -> dict:
    times = {name: [] for name in benches}
    for round_ in range(warmup + repeats):
        for name, fn in benches.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def columns(graphs: list[Data], reduce: str, in_channels: int, hidden: int, layers: int, batch_size: int,
            device: str, compile_model: bool) -> dict:
    # one plain batch list; the CSR columns get copies that carry their adjacency
    plain_batches = [Batch.from_data_list(graphs[i:i + batch_size]).to(device)
                     for i in range(0, len(graphs), batch_size)]
    pyg_csr_batches, cached = [], []
    for b in plain_batches:
        n = b.num_nodes
        with_sparse = b.clone()
        with_sparse.pyg_adj_t = torch.sparse_csr_tensor(*_pyg_csr(b.edge_index, n), size=(n, n))
        pyg_csr_batches.append(with_sparse)
        with_csr = b.clone()
        with_csr.adj_t = ops.to_csr(b.edge_index, n)
        cached.append(with_csr)
    common = dict(hidden_channels=hidden, num_layers=layers, node_in_channels=in_channels, dropout=0.0,
                  pool="mean", aggr=reduce)
    torch.manual_seed(0)
    reference = PolyGIN(1, **common).to(device)

    def clone(cls, **extra):
        model = cls(1, **common, **extra).to(device)
        model.load_state_dict(reference.state_dict(), strict=False)
        return model

    benches = {
        "pyg": epoch_fn(clone(PyGGIN), plain_batches),
        "pyg-csr": epoch_fn(clone(PyGGIN), pyg_csr_batches),
        "graphequi": epoch_fn(clone(PolyGIN, fused=False), plain_batches),
        "graphequi-csr": epoch_fn(clone(PolyGIN), plain_batches),
        "graphequi-csr-cached": epoch_fn(clone(PolyGIN), cached),
        "floor": epoch_fn(clone(Floor), plain_batches),
    }
    if compile_model:
        model = clone(PolyGIN)
        compiled = torch.compile(model, dynamic=True)
        benches["graphequi-compiled"] = epoch_fn(model, plain_batches, forward=compiled)
        benches["graphequi-compiled"]()  # compile outside the timing
    return benches


def _pyg_csr(edge_index, n):
    """PyG's ``adj_t`` as torch.sparse_csr: row i lists the sources of target i."""
    perm = torch.argsort(edge_index[1] * n + edge_index[0])
    dst, src = edge_index[1][perm], edge_index[0][perm]
    crow = ops.index_to_ptr(dst, n)
    return crow, src, torch.ones(src.numel(), device=edge_index.device)


def run(graphs, reduces, args, label: str) -> list[dict]:
    rows = []
    in_channels = graphs[0].x.size(1)
    for reduce in reduces:
        benches = columns(graphs, reduce, in_channels, args.hidden, args.layers, args.batch_size, args.device,
                          not args.no_compile)
        seconds = interleaved_medians(benches, args.repeats, args.device)
        floor = seconds["floor"]
        row = dict(data=label, reduce=reduce, seconds=seconds,
                   overhead_s={k: v - floor for k, v in seconds.items() if k != "floor"})
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row) -> str:
    s, o = row["seconds"], row["overhead_s"]
    base = s["pyg"]
    parts = [f"{row['data']:>9} {row['reduce']:>4}"]
    for name in s:
        extra = f" (+{o[name]:.3f})" if name in o else ""
        parts.append(f"{name} {s[name]:.3f}s{extra} [{base / s[name]:.2f}x]")
    return " | ".join(parts)


def judge(row) -> dict:
    """The targets: sum overhead <= half PyG's and <= PyG sparse_csr's;
    max >= 2x and mean >= 1.5x PyG edge_index; compiled faster than eager."""
    s, o = row["seconds"], row["overhead_s"]
    ours = min(v for k, v in s.items() if k.startswith("graphequi") and k != "graphequi-compiled")
    ours_overhead = min(v for k, v in o.items() if k.startswith("graphequi") and k != "graphequi-compiled")
    out = {"speedup_vs_pyg": s["pyg"] / ours}
    if row["reduce"] == "sum":
        out["overhead_vs_pyg"] = ours_overhead / o["pyg"]
        out["overhead_vs_pyg_csr"] = ours_overhead / o["pyg-csr"]
        out["met"] = ours_overhead <= 0.5 * o["pyg"] and ours_overhead <= o["pyg-csr"]
    elif row["reduce"] == "max":
        out["met"] = s["pyg"] / ours >= 2.0
    elif row["reduce"] == "mean":
        out["met"] = s["pyg"] / ours >= 1.5
    if "graphequi-compiled" in s:
        out["compiled_vs_eager"] = s["graphequi-csr"] / s["graphequi-compiled"]
    return out


def markdown(rows) -> str:
    names = list(rows[0]["seconds"])
    lines = ["| data | reduce | " + " | ".join(names) + " | target |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for r in rows:
        cells = []
        for n in names:
            extra = f" (+{r['overhead_s'][n]:.2f})" if n in r["overhead_s"] else ""
            cells.append(f"{r['seconds'][n]:.2f}{extra} [{r['seconds']['pyg'] / r['seconds'][n]:.2f}x]")
        verdict = r.get("judge", {}).get("met")
        lines.append(f"| {r['data']} | {r['reduce']} | " + " | ".join(cells)
                     + f" | {'-' if verdict is None else ('met' if verdict else 'not met')} |")
    return "\n".join(lines)



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes, seconds (smoke test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--graphs", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--molhiv", type=int, default=2048, help="molhiv molecules (0: skip)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "message_passing.json"))
    args = parser.parse_args(argv)
    if args.small:
        args.graphs, args.batch_size, args.hidden, args.repeats, args.molhiv = 16, 8, 16, 1, 0
    torch.set_num_threads(args.threads)
    graphs = random_graphs(args.graphs, 25, 4, 64, seed=0)
    rows = run(graphs, REDUCES, args, "synthetic")
    if args.molhiv:
        try:
            hiv = molhiv_graphs(args.molhiv)
        except FileNotFoundError as err:
            print(f"molhiv skipped: {err}")
        else:
            rows += run(hiv, REDUCES, args, "molhiv")
    for r in rows:
        if r["data"] == "synthetic":
            r["judge"] = judge(r)
    table = markdown(rows)
    print(table)
    meta = dict(machine=cpu_model() if args.device == "cpu" else torch.cuda.get_device_name(),
                device=args.device, threads=args.threads, torch=torch.__version__,
                torch_scatter=torch_scatter is not None, graphs=args.graphs, batch_size=args.batch_size,
                hidden=args.hidden, layers=args.layers, repeats=args.repeats,
                load_average=list(__import__("os").getloadavg()), command=" ".join(sys.argv))
    out = Path(args.out)
    if args.small:
        out = out.with_name(out.stem + "_small.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(meta=meta, rows=rows, table=table), indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

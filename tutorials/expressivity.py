"""Tutorial: what can a GNN architecture compute, and which graphs can it tell apart?

graphequi answers both questions and checks one against the other:

1. polynomials are multigraphs: ``P_H(A)`` counts the maps of ``H`` into the
   graph (triangles, 4-cycles, ...); evaluate a few;
2. symbolically: an architecture is a *contraction bank*; ask whether it
   computes a polynomial and read the certificate (the contraction sequence),
   which replays numerically to the same values;
3. a table over all basis polynomials up to some degree, for several banks;
4. your own architecture: a bank from one ``@elimination_rule``;
5. the exact oracles on a WL-hard pair: rook's 4x4 graph and the Shrikhande
   graph defeat 2-FWL, so no PPGN-computable polynomial separates them, but
   the number of 4-cliques (a ``ppgn++`` feature) does;
6. empirically: BREC's paired comparison with a small GIN, with and without
   the polynomial features.

Run::

    python tutorials/expressivity.py --tiny     # degree 4, 2 training epochs (seconds)
    python tutorials/expressivity.py            # degree 6, BREC's 20 epochs
"""
from __future__ import annotations

import argparse
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from graphequi.expressivity import (BRECConfig, ContractionBank, analyze, certify, elimination_rule,
                                    get_bank, rook_graph, separates, shrikhande_graph, to_data,
                                    wl_equivalent)
from graphequi.nn import PolyGIN
from graphequi.poly import Multigraph, evaluate
from graphequi.transforms import PolynomialFeatures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="degree 4 and 2 training epochs")
    parser.add_argument("--out", default="runs/tutorial-expressivity", help="output folder")
    args = parser.parse_args(argv)
    max_degree, epochs = (4, 2) if args.tiny else (6, 20)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}

    # 1. Polynomials are multigraphs. Edges are factors A[j(r), j(s)], summed over all maps j.
    triangle = Multigraph(3, [(0, 1), (1, 2), (2, 0)])                     # invariant: tr(A^3)
    square_at = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)], marked=(0,))  # node-level: closed 4-walks
    k4 = Multigraph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])     # invariant: 24 x #4-cliques
    A = torch.tensor(nx.to_numpy_array(nx.petersen_graph()))
    print("triangle maps in the Petersen graph:", float(evaluate(triangle, A)[0]))  # girth 5: 0
    print("closed 4-walks at node 0:", float(evaluate(square_at, A)[0, 0]))

    # 2. Ask a bank. 'mpnn' only sums out leaves; 'ppgn' also multiplies matrices.
    for bank in ("mpnn", "ppgn"):
        cert = certify(square_at, bank)
        print(f"{bank} computes the 4-cycle at a node: {cert is not None}")
    cert = certify(square_at, "ppgn")
    print(cert)  # the contraction sequence
    replay = cert.evaluate(A.numpy())  # one einsum per step
    assert np.allclose(replay, evaluate(square_at, A)[0].numpy())
    print("K4 in ppgn:", certify(k4, "ppgn"), "| in ppgn++(6):", certify(k4, "ppgn++(6)") is not None)

    # 3. The whole basis, for several architectures.
    table = analyze(["mpnn", "subgraph", "spen", "ppgn", "ppgn++(6)"], max_degree)
    print(table.format())
    table.plot(out / "expressivity.png")
    summary["ppgn_missing"] = len(table.missing("ppgn"))

    # 4. Your own architecture: a 3-FWL-like bank that contracts any node with <= 3 neighbors.
    @elimination_rule("order3", "sum out a node with at most three neighbors (order-3 tensors)")
    def order3(state, x):
        return () if len(state.neighbors(x)) <= 3 else None

    mine = ContractionBank("order-3", (order3,), max_order=3, description="3-FWL-like")
    summary["order3_covers_ppgn_missing"] = all(certify(p, mine) is not None for p in table.missing("ppgn"))
    print("my bank computes K4:", certify(k4, mine) is not None,
          "| everything PPGN misses:", summary["order3_covers_ppgn_missing"])
    print("built-in banks:", ", ".join(b for b in ("mpnn", "ppgn", "subgraph", "spen")),
          "--", get_bank("spen").source)

    # 5. Exact oracles on a 2-FWL-hard pair, against polynomials.
    rook, shrikhande = rook_graph(4), shrikhande_graph()
    summary["rook_shrikhande_2fwl_equivalent"] = wl_equivalent(rook, shrikhande, k=2)
    cliques = [float(evaluate(k4, torch.tensor(nx.to_numpy_array(g)))[0]) / 24 for g in (rook, shrikhande)]
    print(f"2-FWL equivalent: {summary['rook_shrikhande_2fwl_equivalent']}; 4-cliques: {cliques}")
    summary["four_cliques"] = cliques

    # 6. BREC's protocol with a small GIN, without and with the ppgn++ node features.
    pairs = [(rook, shrikhande), (nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)), nx.cycle_graph(6))]
    features = PolynomialFeatures("ppgn++", level="node")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster
    try:
        plain = separates(lambda seed: PolyGIN(16, 16, 2, node_in_channels=1, dropout=0.0, pool="sum"),
                          pairs, config=BRECConfig(epochs=epochs), progress=False, method="gin")
        poly = separates(lambda seed: PolyGIN(16, 16, 2, node_in_channels=1, dropout=0.0, pool="sum",
                                              poly_channels=features.num_features),
                         pairs, config=BRECConfig(epochs=epochs), transform=features, progress=False,
                         method="gin+ppgn++")
    finally:
        torch.set_num_threads(threads)
    print(plain.table())
    print(poly.table())
    summary["brec"] = {"gin": plain.overall.separated, "gin+ppgn++": poly.overall.separated}
    return summary


if __name__ == "__main__":
    main()

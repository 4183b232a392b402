"""``graphequi expressivity``: what architectures compute, which pairs they separate.

Symbolic side (always)::

    graphequi expressivity --banks mpnn,ppgn,ppgn++(6),subgraph,spen --max-degree 6

prints computable/total per degree and number of marks for each contraction
bank (:mod:`graphequi.expressivity.banks`) and writes
``<out>/expressivity.png`` (heatmap) and ``<out>/expressivity.json``.

Empirical side (with ``--pairs``)::

    graphequi expressivity --skip-symbolic --pairs brec:path/to/BREC --model gin --model ppgn
    graphequi expressivity --pairs brec:path/to/BREC --category Basic --model ppgn++
    graphequi expressivity --pairs exp --model ppgn++ --limit 20
    graphequi expressivity --pairs g6:graphs.g6 --model polygin

runs the exact oracles (1-WL, 2-FWL and both started from the ``ppgn++``
polynomials) and BREC's reliable paired comparison for every ``--model``
(:func:`graphequi.expressivity.run_brec`), appending one JSON line per
finished pair to ``<out>/pairs_records.jsonl``; a rerun skips the pairs
already there, so a long table is built by several runs (``--time-limit-min``
stops starting new pairs). Writes ``<out>/brec_table.{md,json,png}`` (the
table by category with reliability failures, oracle-bound violations and
time; the heatmap), ``<out>/pairs_<method>.json`` / ``.png`` and
``<out>/pairs_summary.json``.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Optional

from graphequi.datasets import default_source
from graphequi.expressivity import models as _models
from graphequi.expressivity.models import model_factory

DEFAULT_BANKS = "mpnn,ppgn,ppgn++(6),subgraph,spen"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sym = parser.add_argument_group("symbolic analysis")
    sym.add_argument("--banks", "--archs", dest="banks", default=DEFAULT_BANKS,
                     help=f"comma-separated contraction banks (default {DEFAULT_BANKS}); "
                          "'ppgn++(k)' adds select('ppgn++', max_degree=k); --archs is a deprecated "
                          "spelling")
    sym.add_argument("--max-degree", type=int, default=6, help="largest polynomial degree (default 6)")
    sym.add_argument("--min-degree", type=int, default=1)
    sym.add_argument("--marks", default="0,1,2", help="numbers of marks: 0 invariant, 1 node, 2 pair")
    sym.add_argument("--multigraphs", action="store_true",
                     help="analyze all multigraphs (loops, parallel edges), not only simple ones")
    sym.add_argument("--disconnected", action="store_true", help="include disconnected multigraphs")
    sym.add_argument("--show-missing", action="store_true",
                     help="list the polynomials each bank cannot compute")
    sym.add_argument("--skip-symbolic", action="store_true", help="only run the pair separation")
    emp = parser.add_argument_group("pair separation (BREC protocol)")
    emp.add_argument("--pairs", default=None,
                     help="brec | brec:PATH | exp | cexp | csl | generated | g6:PATH (all pairs of a "
                          "graph6 file)")
    emp.add_argument("--data", default=None,
                     help="dataset folder/file for --pairs (default: ../shared/data/<name>)")
    emp.add_argument("--model", action="append", default=None,
                     help="model trained per pair, repeatable (registered: "
                          f"{', '.join(_models.MODELS)}; default gin)")
    emp.add_argument("--category", action="append", default=None,
                     help="only pairs of this category, repeatable (BREC: Basic, Regular, Extension, "
                          "CFI, 4-Vertex, DR)")
    emp.add_argument("--oracles", default="1-WL,2-FWL,1-WL+ppgn++(6),2-FWL+ppgn++(6)",
                     help="comma-separated exact oracles to run ('' for none)")
    emp.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    emp.add_argument("--max-nodes", type=int, default=None, metavar="N",
                     help="use only the pairs whose graphs have at most N nodes each")
    emp.add_argument("--epochs", type=int, default=20, help="training epochs per pair (BREC: 20)")
    emp.add_argument("--batch-size", type=int, default=32, help="graphs per batch (BREC: 32)")
    emp.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate per pair (BREC: 1e-4)")
    emp.add_argument("--tag", default="",
                     help="appended to every model's row name (e.g. '@lr1e-3'), so that runs with other "
                          "protocol settings get their own rows in one records file")
    emp.add_argument("--ridge", type=float, default=0.0,
                     help="epsilon added to the covariance before pinv (BREC: 0)")
    emp.add_argument("--statistic", choices=("brec", "hotelling"), default="brec",
                     help="T^2 without (brec, BREC's code) or with the factor n (textbook)")
    emp.add_argument("--relabelings", default=None, metavar="PATH",
                     help="BREC's stored relabelings (its processed brec_v3.npy) instead of drawn ones: "
                          "BREC's exact permutations and reliability graphs")
    emp.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="precision of the models and their inputs (BREC: float32)")
    emp.add_argument("--seeds", default="0", help="comma-separated seeds")
    emp.add_argument("--hidden", type=int, default=None, help="model width (default: the model's)")
    emp.add_argument("--layers", type=int, default=None, help="model depth (default: the model's)")
    emp.add_argument("--records", default=None,
                     help="JSONL of per-pair results to resume from (default <out>/pairs_records.jsonl)")
    emp.add_argument("--time-limit-min", type=float, default=None,
                     help="stop starting new pairs of a model after this many minutes (rerun to continue)")
    emp.add_argument("--threads", type=int, default=1,
                     help="torch intra-op threads while training (default 1: the per-pair models are "
                          "small, and more threads mostly add synchronization overhead)")
    parser.add_argument("--out", default="runs/expressivity", help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"graphequi expressivity: {what} must be comma-separated integers, got {text!r}")


def load_pairs(spec: str, data: Optional[str] = None, limit: Optional[int] = None) -> list:
    """Pairs named on the command line: ``brec``, ``exp``, ``cexp``, ``csl``,
    ``generated`` (no files needed) or ``g6:PATH``."""
    from graphequi.expressivity import (csl_pairs, load_brec, load_cexp, load_csl, load_exp,
                                        load_graph6)
    from graphequi.expressivity.loaders import make_pairs

    name = spec.lower()
    if name.startswith("g6:"):
        path = Path(spec[3:])
        pairs = make_pairs(load_graph6(path), mode="all")
    elif name.startswith("brec:"):
        path = Path(spec[5:])
        if not path.exists():
            raise SystemExit(f"graphequi expressivity: {path} does not exist")
        try:
            pairs = load_brec(path)
        except ValueError as err:
            raise SystemExit(f"graphequi expressivity: {err}")
    elif name == "generated":
        pairs = generated_pairs()
    else:
        defaults = {"brec": "brec", "exp": "exp", "cexp": "cexp", "csl": "csl_benchmarking_gnns"}
        if name not in defaults:
            raise SystemExit(f"graphequi expressivity: unknown --pairs {spec!r}; "
                             "use brec, exp, cexp, csl, generated or g6:PATH")
        path = Path(data) if data else default_source() / defaults[name]
        if not path.exists():
            raise SystemExit(f"graphequi expressivity: {path} does not exist (give --data)")
        if name == "brec":
            pairs = load_brec(path)
        elif name == "exp":
            pairs = load_exp(path)
        elif name == "cexp":
            pairs = load_cexp(path)
        else:
            pairs = csl_pairs(load_csl(path))
    if limit is not None:
        pairs = pairs[:limit]
    if not pairs:
        raise SystemExit(f"graphequi expressivity: no pairs in {spec!r}")
    return list(pairs)


def generated_pairs(quick: bool = False) -> list:
    """The embedded pair families (no data files): the 1-WL-hard classics,
    CSL(41) skips 2 vs 3 (and more unless ``quick``), CFI over a 4-cycle and
    over K4, rook's graph vs Shrikhande, two random 3-regular graphs."""
    import networkx as nx

    from graphequi.expressivity import (GraphPair, cfi_pair, classic_pairs, csl_graph,
                                        random_regular_pair)

    pairs = list(classic_pairs())
    skips = [(2, 3)] if quick else [(2, 3), (2, 4), (3, 5)]
    pairs += [GraphPair(csl_graph(41, a), csl_graph(41, b), "CSL", f"csl41-{a}/{b}") for a, b in skips]
    g, h = cfi_pair(nx.cycle_graph(4))
    pairs.append(GraphPair(g, h, "CFI", "cfi-C4"))
    g, h = cfi_pair(nx.complete_graph(4))
    pairs.append(GraphPair(g, h, "CFI", "cfi-K4"))
    g, h = random_regular_pair(12, 3, seed=0)
    pairs.append(GraphPair(g, h, "regular", "3-regular-12"))
    return pairs


def run_symbolic(banks: list[str], max_degree: int, marks: list[int], out: Path, *,
                 min_degree: int = 1, simple: bool = True, connected: bool = True,
                 progress: bool = True, show_missing: bool = False):
    """Analyze, print and save; returns the :class:`ExpressivityTable`."""
    from graphequi.expressivity import analyze

    start = time.perf_counter()
    table = analyze(banks, max_degree, marks=marks, min_degree=min_degree, simple=simple,
                    connected=connected, progress=progress)
    seconds = time.perf_counter() - start
    kind = ("simple " if simple else "") + ("connected " if connected else "")
    print(f"Computable {kind}basis polynomials (computable/total), degree {min_degree}..{max_degree}:")
    print(table.format())
    totals = {b: (sum(r.computable for r in table.rows if r.bank == b),
                  sum(r.total for r in table.rows if r.bank == b)) for b in table.banks}
    print("total: " + ", ".join(f"{a} {c}/{t}" for a, (c, t) in totals.items()) + f"  ({seconds:.1f} s)")
    if show_missing:
        for b in table.banks:
            for p in table.missing(b):
                print(f"  {b} cannot compute {p!r}")
    out.mkdir(parents=True, exist_ok=True)
    table.to_json(out / "expressivity.json")
    table.plot(out / "expressivity.png")
    print(f"wrote {out / 'expressivity.png'} and {out / 'expressivity.json'}")
    return table


def run_pairs(pairs: list, models, out: Path, *, epochs: int = 20, seeds=(0,),
              hidden: Optional[int] = None, layers: Optional[int] = None, progress: bool = True,
              threads: Optional[int] = 1, oracles=("1-WL", "2-FWL"), config=None,
              records: Optional[Path] = None, time_limit_s: Optional[float] = None,
              relabelings=None, tag: str = "", dtype: str = "float32") -> dict:
    """Oracles and the BREC protocol on ``pairs`` for each model name,
    resumable through ``records``; prints and saves the table and reports.
    ``relabelings``: stored relabelings (``load_brec_relabelings``) instead of
    drawn ones. ``tag`` is appended to the models' row names (their oracle
    bounds carry over). ``dtype``: ``"float32"`` or ``"float64"``, the
    precision of the models and their inputs."""
    import dataclasses

    import torch

    from graphequi.expressivity import BREC_REFERENCE, BRECTable, run_brec, run_oracle

    models = [models] if isinstance(models, str) else list(models)
    out.mkdir(parents=True, exist_ok=True)
    records = Path(records) if records else out / "pairs_records.jsonl"
    cfg = dataclasses.replace(config or BREC_REFERENCE, epochs=epochs)
    reports = {}
    for oracle in oracles:
        reports[oracle] = run_oracle(pairs, records, oracle, progress=progress)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    # float32 is every model's own precision: only another dtype enters the description
    cast = None if dtype == "float32" else getattr(torch, dtype)
    try:
        for name in models:
            model_fn, transform = model_factory(name, hidden, layers, cfg.output_dim, dtype=cast)
            sizes = _models.MODEL_DEFAULTS[name]
            example = model_fn(0)
            description = (f"{name} hidden={hidden or sizes['hidden']} layers={layers or sizes['layers']} "
                           f"{example!r} {transform!r}")
            reports[name + tag] = run_brec(model_fn, pairs, records, method=name + tag,
                                           model=description, seeds=seeds, config=cfg,
                                           transform=transform, progress=progress,
                                           time_limit_s=time_limit_s, relabelings=relabelings)
    finally:
        torch.set_num_threads(before)
    for name, rep in reports.items():
        stem = re.sub(r"[^0-9A-Za-z-]+", "_", name.replace("++", "pp")).strip("_")
        rep.save(out / f"pairs_{stem}.json")
    bounds = dict(_models.MODEL_BOUNDS)
    bounds.update({name + tag: bounds[name] for name in models if name in bounds})
    table = BRECTable.from_records(records, pairs, bounds=bounds, methods=list(reports))
    print(table.format(markdown=False))
    table.save(out / "brec_table.json")
    print(f"wrote {out / 'brec_table.md'}, .json and .png; per-pair records in {records}")
    return reports


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    progress = not args.no_progress
    if args.max_degree < 1 or args.min_degree < 1 or args.min_degree > args.max_degree:
        raise SystemExit("graphequi expressivity: need 1 <= --min-degree <= --max-degree")
    marks = _int_list(args.marks, "--marks")
    if not marks or any(m not in (0, 1, 2) for m in marks):
        raise SystemExit(f"graphequi expressivity: --marks takes values in 0,1,2, got {args.marks!r}")
    banks = [b.strip() for b in args.banks.split(",") if b.strip()]
    if not args.skip_symbolic:
        from graphequi.expressivity import get_bank

        for b in banks:
            try:
                get_bank(b)
            except ValueError as err:
                raise SystemExit(f"graphequi expressivity: {err}")
        run_symbolic(banks, args.max_degree, marks, out, min_degree=args.min_degree,
                     simple=not args.multigraphs, connected=not args.disconnected, progress=progress,
                     show_missing=args.show_missing)
    if args.pairs:
        if args.threads < 1 or args.epochs < 0 or not args.lr > 0:
            raise SystemExit("graphequi expressivity: --threads must be >= 1, --epochs >= 0 and --lr > 0")
        from graphequi.expressivity import ORACLES, BRECConfig

        models = args.model or ["gin"]
        unknown = [m for m in models if m not in _models.MODELS]
        if unknown:
            raise SystemExit(f"graphequi expressivity: unknown --model {unknown[0]!r}; "
                             f"registered: {', '.join(_models.MODELS)}")
        oracles = [o.strip() for o in args.oracles.split(",") if o.strip()]
        bad = [o for o in oracles if o not in ORACLES]
        if bad:
            raise SystemExit(f"graphequi expressivity: unknown oracle {bad[0]!r}; "
                             f"available: {', '.join(ORACLES)}")
        pairs = load_pairs(args.pairs, args.data, args.limit)
        if args.category:
            present = sorted({p.category for p in pairs})
            missing = [c for c in args.category if c not in present]
            if missing:
                raise SystemExit(f"graphequi expressivity: no pairs of category {missing[0]!r}; "
                                 f"categories: {', '.join(present)}")
            pairs = [p for p in pairs if p.category in args.category]
        if args.max_nodes is not None:
            pairs = [p for p in pairs
                     if max(p.first.number_of_nodes(), p.second.number_of_nodes()) <= args.max_nodes]
            if not pairs:
                raise SystemExit(f"graphequi expressivity: no pairs with at most {args.max_nodes} nodes")
        seeds = _int_list(args.seeds, "--seeds")
        try:
            config = BRECConfig(epochs=args.epochs, batch_size=args.batch_size, ridge=args.ridge,
                                statistic=args.statistic, lr=args.lr)
        except ValueError as err:
            raise SystemExit(f"graphequi expressivity: {err}")
        limit = None if args.time_limit_min is None else 60.0 * args.time_limit_min
        relabelings = None
        if args.relabelings:
            from graphequi.expressivity import load_brec_relabelings

            try:
                relabelings = load_brec_relabelings(args.relabelings, num_relabel=config.num_relabel)
            except ValueError as err:
                raise SystemExit(f"graphequi expressivity: {err}")
        try:
            reports = run_pairs(pairs, models, out, epochs=args.epochs, seeds=seeds or [0],
                                hidden=args.hidden, layers=args.layers, progress=progress,
                                threads=args.threads, oracles=oracles, config=config,
                                records=args.records, time_limit_s=limit, relabelings=relabelings,
                                tag=args.tag, dtype=args.dtype)
        except ValueError as err:  # e.g. a records file made with another configuration
            raise SystemExit(f"graphequi expressivity: {err}")
        summary = {name: {"separated": r.overall.separated, "total": r.overall.total,
                          "reliability_failures": r.overall.reliability_failures}
                   for name, r in reports.items()}
        (out / "pairs_summary.json").write_text(json.dumps(summary, indent=2))
    return 0

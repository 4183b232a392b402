"""``graphequi demo`` (what ``make demo`` runs): the expressivity analysis end to end.

On an embedded default that needs no network and no data files it

1. decides symbolically, for each contraction bank (``mpnn``, ``ppgn``,
   ``ppgn++(6)``, ``subgraph``, ``spen``), which connected simple basis
   polynomials up to degree 6 it computes, and checks the paper's figures
   (PPGN misses exactly 1 polynomial at degree 5 and 11 at degree 6);
2. runs the exact 1-WL / 2-FWL oracles on generated WL-hard pair families and
   checks each bank's computable polynomials against them (a polynomial a
   bank computes must not separate a pair that the bank's oracle cannot);
3. runs BREC's reliable paired comparison with small graphequi GIN models
   (with and without the ``ppgn++`` polynomial features) on a handful of
   those pairs;
4. writes ``<out>/report.md`` with its plots and prints a summary.

``--quick`` uses degree 4, fewer pairs and 5 training epochs.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

ARCHS = ("mpnn", "ppgn", "ppgn++(6)", "subgraph", "spen")
#: the oracle that upper-bounds each bank (its computable polynomials must
#: agree on every pair this oracle cannot separate)
ORACLE_OF = {"mpnn": 1, "ppgn": 2, "ppgn++(6)": None, "subgraph": 2, "spen": 2}


class _Timer:
    def __init__(self):
        self.marks: dict[str, float] = {}

    def section(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                self.start = time.perf_counter()
                print(f"\n== {name}", flush=True)

            def __exit__(self, *exc):
                timer.marks[name] = time.perf_counter() - self.start

        return _Ctx()


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _draw_polys(polys, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(6, max(1, len(polys)))
    rows = (len(polys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.0 * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, polys):
        p.draw(ax=ax)
        ax.set_title(f"d={p.degree}, {p.num_marks} mark{'s' if p.num_marks != 1 else ''}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class Section:
    """What one step of the demo contributes: its lines of ``report.md`` and its
    checks (``(statement, holds)``), plus the values later steps read."""

    report: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    values: dict = field(default_factory=dict)


def symbolic_section(out: Path, max_degree: int, progress: bool) -> Section:
    """Step 1: which connected basis polynomials up to ``max_degree`` each bank
    computes, against the paper's figures; writes ``expressivity.{json,png}``
    and ``ppgn_missing.png``."""
    from graphequi.expressivity import analyze, certify, get_bank
    from graphequi.poly import Multigraph, select

    section = Section()
    checks = section.checks
    table = analyze(list(ARCHS), max_degree, progress=progress)
    print(table.format())
    table.to_json(out / "expressivity.json")
    table.plot(out / "expressivity.png")
    ppgn_missing = {d: len(table.missing("ppgn", d)) for d in range(1, max_degree + 1)}
    expected = {d: {5: 1, 6: 11}.get(d, 0) for d in range(1, max_degree + 1)}
    checks.append((f"PPGN misses {expected} polynomials per degree (paper: 0 up to 4, 1 at 5, 11 at 6)",
                   ppgn_missing == expected))
    if max_degree >= 6:
        feats = set(select("ppgn++", max_degree=6))
        checks.append(("the PPGN-missing polynomials are exactly select('ppgn++', 6) (12)",
                       set(table.missing("ppgn")) == feats and len(feats) == 12))
        checks.append(("ppgn++(6) computes every polynomial up to degree 6", not table.missing("ppgn++(6)")))
    sets = {a: {(r.degree, r.marks, p) for r in table.rows if r.bank == a for p in r.missing} for a in ARCHS}
    hierarchy = (sets["ppgn"] <= sets["subgraph"] <= sets["mpnn"] and sets["ppgn"] <= sets["spen"] <= sets["mpnn"])
    checks.append(("hierarchy mpnn <= subgraph, spen <= ppgn <= ppgn++(6) (missing sets nested)",
                   hierarchy and sets["ppgn++(6)"] <= sets["ppgn"]))
    missing_drawn = table.missing("ppgn")
    if missing_drawn:
        _draw_polys(missing_drawn, out / "ppgn_missing.png",
                    "polynomials PPGN cannot compute (the ppgn++ features)")
    c4_node = Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)], marked=(0,))
    cert_example = certify(c4_node, "spen")
    diamond = Multigraph(4, [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], marked=(0, 1))

    report = section.report
    report += ["## 1. Symbolic: which basis polynomials each architecture computes", "",
               "Each architecture is a *contraction bank* (Puny et al., ICML 2023): the eliminations "
               "its layers can perform on a polynomial's tensor network. A polynomial is computable "
               "when a sequence of them reduces its multigraph to the marked nodes; the sequence is "
               "returned as a certificate, replayed symbolically and numerically in the tests. "
               f"Connected simple multigraphs, degree 1..{max_degree}; cells are computable/total.", ""]
    header = ["degree", "marks"] + list(table.banks)
    rows = [[d, m] + [f"{table.row(a, d, m).computable}/{table.row(a, d, m).total}" for a in table.banks]
            for d in table.degrees for m in table.marks]
    totals = ["all", ""] + [f"**{sum(r.computable for r in table.rows if r.bank == a)}/"
                            f"{sum(r.total for r in table.rows if r.bank == a)}**" for a in table.banks]
    report += [_markdown_table(header, rows + [totals]), "", "![heatmap](expressivity.png)", "",
               _markdown_table(["bank", "model", "source"],
                               [[a, get_bank(a).description, get_bank(a).source] for a in ARCHS]), ""]
    if missing_drawn:
        report += [f"PPGN misses {len(missing_drawn)} polynomials (marks in red/blue):", "",
                   "![ppgn missing](ppgn_missing.png)", ""]
    report += ["Example certificate (SPEN, 4-cycles through a node):", "", "```", str(cert_example), "```",
               "", "No PPGN certificate exists for the diamond marked on its two degree-2 nodes "
               f"(`certify(diamond, 'ppgn')` is {certify(diamond, 'ppgn')}); PPGN++ reads it as a feature.", ""]
    section.values["table"] = table
    return section


def oracle_section(quick: bool) -> Section:
    """Step 2: the exact 1-WL / 2-FWL oracles on the generated pairs, and the
    soundness of each bank's computable polynomials against its oracle."""
    from graphequi.cli.expressivity import generated_pairs
    from graphequi.expressivity import certify, oracle_separation, polynomial_family, separating_polynomials

    section = Section()
    checks = section.checks
    pairs = generated_pairs(quick=quick)
    wl1 = oracle_separation(pairs, k=1)
    wl2 = oracle_separation(pairs, k=2)
    sep_degree = 4 if quick else 6
    polys_by_marks = {m: [p for d in range(1, sep_degree + 1) for p in polynomial_family(d, m)]
                      for m in (0, 1, 2)}
    separating = separating_polynomials(pairs, [p for ps in polys_by_marks.values() for p in ps])
    computable = {a: {p for ps in polys_by_marks.values() for p in ps if certify(p, a) is not None}
                  for a in ARCHS}
    oracle = {1: set(wl1.separated_names), 2: set(wl2.separated_names)}
    rows, violations = [], []
    for pair in pairs:
        row = [pair.name, pair.first.number_of_nodes(),
               "yes" if pair.name in oracle[1] else "no", "yes" if pair.name in oracle[2] else "no"]
        for a in ARCHS:
            hit = separating[pair.name] & computable[a]
            row.append(f"yes ({len(hit)})" if hit else "no")
            k = ORACLE_OF[a]
            if hit and k is not None and pair.name not in oracle[k]:
                violations.append((a, pair.name, sorted(hit)[:2]))
        rows.append(row)
    print(_markdown_table(["pair", "n", "1-WL", "2-FWL"] + list(ARCHS), rows))
    checks.append(("1-WL separates none of the generated (1-WL-hard) pairs", not oracle[1]))
    checks.append(("2-FWL fails exactly on rook/Shrikhande (SRG(16,6,2,2)) and CFI over K4 (treewidth 3)",
                   {p.name for p in pairs} - oracle[2] == {"rook4x4/shrikhande", "cfi-K4"}))
    checks.append(("soundness: no computable polynomial separates a pair its oracle cannot "
                   f"({sum(len(v) for v in computable.values())} (bank, polynomial) cases)", not violations))
    hard2 = [p.name for p in pairs if p.name not in oracle[2]]
    beyond = [n for n in hard2 if separating[n] & computable["ppgn++(6)"]]
    if not quick:
        checks.append(("ppgn++(6) features separate a 2-FWL-equivalent pair (rook/Shrikhande)",
                       any("shrikhande" in n for n in beyond)))
    section.report += ["## 2. Exact oracles and polynomial features on generated pairs", "",
                       "Every pair is non-isomorphic. `1-WL` / `2-FWL`: the exact oracle separates it. "
                       f"Bank columns: some polynomial of degree <= {sep_degree} that the bank computes takes "
                       "different values (as multisets over nodes / node pairs) on the two graphs; in brackets "
                       "how many do.", "",
                       _markdown_table(["pair", "n", "1-WL", "2-FWL"] + list(ARCHS), rows), "",
                       f"Soundness violations (a bank's polynomial separating a pair its oracle cannot): "
                       f"{len(violations)}. 2-FWL-equivalent pairs: {', '.join(hard2) or 'none'}; separated by "
                       f"ppgn++(6) features: {', '.join(beyond) or 'none'}.", ""]
    section.values.update(pairs=pairs, oracle=oracle)
    return section


def brec_section(out: Path, pairs: list, oracle: dict, quick: bool, progress: bool) -> Section:
    """Step 3: BREC's reliable paired comparison with small GIN models, with and
    without the ``ppgn++`` node features; writes ``brec_{gin,polygin}.{json,png}``."""
    import torch

    from graphequi.expressivity import model_factory
    from graphequi.expressivity import BRECConfig, separates, to_data, wl_equivalent
    from graphequi.transforms import PolynomialFeatures

    section = Section()
    names = ("two_triangles/hexagon", "rook4x4/shrikhande", "cfi-C4", "K33/prism", "csl41-2/3",
             "decalin/bicyclopentyl")
    brec_pairs = [p for n in names[: 3 if quick else len(names)] for p in pairs if p.name == n]
    epochs = 5 if quick else 20
    # Exact reference for GIN + node features: 1-WL started from the
    # (integer) ppgn++ node features as colors bounds what it separates.
    counts = PolynomialFeatures("ppgn++", level="node", normalize=False, dtype=torch.float64)

    def colored(graph):
        data = counts(to_data(graph))
        data.poly_x = data.poly_x.round()
        return data

    feature_wl = {p.name for p in brec_pairs
                  if not wl_equivalent(colored(p.first), colored(p.second), k=1, node_attr="poly_x")}
    brec_rows, brec = [], {}
    threads = torch.get_num_threads()
    # Tiny models on small graphs: one intra-op thread avoids the
    # synchronization overhead that dominates (about 10x on a busy 2-core machine).
    torch.set_num_threads(1)
    try:
        for model in ("gin", "polygin"):
            model_fn, transform = model_factory(model, hidden=32, layers=3)
            rep = separates(model_fn, brec_pairs, seeds=(0,), config=BRECConfig(epochs=epochs),
                            transform=transform, progress=progress, method=f"brec:{model}")
            brec[model] = rep
            rep.save(out / f"brec_{model}.json")
            print(rep.table())
    finally:
        torch.set_num_threads(threads)
    for pair in brec_pairs:
        row = [pair.name, "yes" if pair.name in oracle[1] else "no",
               "yes" if pair.name in feature_wl else "no", "yes" if pair.name in oracle[2] else "no"]
        for model, rep in brec.items():
            (v,) = [v for v in rep.verdicts if v.name == pair.name]
            row.append(f"{'yes' if v.separated else 'no'} (T²={v.t2:.3g}{'' if v.reliable else ', unreliable'})")
        brec_rows.append(row)
    gin_sep, poly_sep = set(brec["gin"].separated_names), set(brec["polygin"].separated_names)
    section.checks.append(("BREC: GIN separates no pair that 1-WL cannot", gin_sep <= oracle[1]))
    section.checks.append(("BREC: GIN + ppgn++ node features separates only pairs that 1-WL colored by "
                           "those features separates", poly_sep <= feature_wl))
    report = section.report
    report += ["## 3. BREC protocol with graphequi models", "",
               f"BREC's reliable paired comparison (32 relabelings per graph, 16 outputs, <= {epochs} epochs "
               "of CosineEmbeddingLoss with Adam lr 1e-4, Hotelling T² > 72.34, reliability check on "
               "relabelings of one graph). `gin`: graphequi.nn.PolyGIN without features (sum pooling); "
               "`polygin`: the same with the node-level `ppgn++` polynomial features "
               "(graphequi.transforms.PolynomialFeatures). `1-WL+features`: the exact oracle for the "
               "latter, color refinement started from the integer feature values.", "",
               _markdown_table(["pair", "1-WL", "1-WL+features", "2-FWL"] + [f"brec:{m}" for m in brec],
                               brec_rows), ""]
    for model in brec:
        report += [f"![brec {model}](brec_{model}.png)"]
    report += [""]
    section.values["brec"] = brec
    return section


def _preamble(quick: bool) -> list[str]:
    return ["# graphequi demo: what GNN architectures compute, and which graphs they tell apart", "",
            f"Generated by `graphequi demo{' --quick' if quick else ''}` on {platform.platform()}, "
            f"Python {platform.python_version()}. No network, no data files.", ""]


def _closing(checks: list, marks: dict, total: float) -> list[str]:
    """The checklist and the timings table that end ``report.md``."""
    return (["## Checks", ""] + [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks] + [""]
            + ["## Timings", "", _markdown_table(["section", "seconds"],
                                                 [[k, f"{v:.1f}"] for k, v in marks.items()]
                                                 + [["total", f"{total:.1f}"]]), ""])


def _print_summary(table, pairs, oracle, brec, max_degree: int, checks: list, report_path: Path,
                   total: float) -> None:
    print("\n== summary")
    print("symbolic: " + ", ".join(
        f"{a} {sum(r.computable for r in table.rows if r.bank == a)}/{sum(r.total for r in table.rows if r.bank == a)}"
        for a in table.banks) + f" (degree <= {max_degree})")
    print(f"oracles on {len(pairs)} generated pairs: 1-WL separates {len(oracle[1])}, 2-FWL {len(oracle[2])}")
    print("BREC: " + ", ".join(f"{m} {r.overall}" for m, r in brec.items()))
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
    print(f"report: {report_path}  ({total:.0f} s)")


def run(args: argparse.Namespace) -> int:
    """``graphequi demo``: the three steps, then ``report.md`` and ``summary.json``
    under ``--out``; exit status 0 when every check holds."""
    quick = bool(getattr(args, "quick", False))
    progress = not getattr(args, "no_progress", False)
    out = Path(getattr(args, "out", "graphequi-demo"))
    out.mkdir(parents=True, exist_ok=True)
    max_degree = 4 if quick else 6
    timer = _Timer()
    start = time.perf_counter()
    with timer.section(f"1. symbolic analysis: {', '.join(ARCHS)} up to degree {max_degree}"):
        symbolic = symbolic_section(out, max_degree, progress)
    with timer.section("2. oracles and polynomial features on generated pairs"):
        oracles = oracle_section(quick)
    pairs, oracle = oracles.values["pairs"], oracles.values["oracle"]
    with timer.section("3. BREC protocol with graphequi models"):
        brec = brec_section(out, pairs, oracle, quick, progress)
    sections = (symbolic, oracles, brec)
    checks = [c for s in sections for c in s.checks]

    total = time.perf_counter() - start
    report = _preamble(quick) + [line for s in sections for line in s.report] + _closing(checks, timer.marks, total)
    (out / "report.md").write_text("\n".join(report))
    summary = {"checks": [{"check": t, "ok": ok} for t, ok in checks], "seconds": total,
               "timings": timer.marks}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_summary(symbolic.values["table"], pairs, oracle, brec.values["brec"], max_degree, checks,
                   out / "report.md", total)
    return 0 if all(ok for _, ok in checks) else 1

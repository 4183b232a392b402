r"""The BREC table: methods x categories from a records file, with the
reliability failures, the oracle-bound violations and the time per category.

A *violation* is a pair that a model separates (reliably) although the exact
oracle bounding it does not: GIN is bounded by 1-WL, PPGN by 2-FWL, PPGN++
by 2-FWL started from its polynomial features. A model cannot exceed its
oracle, so every violation is a bug in the runner, the statistic or the
model (for instance a non-invariant output that the reliability check
missed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .brec import SeparationReport, _category_order
from .brec_run import ORACLES, _verdict, read_records

__all__ = ["BRECTable", "CategoryCell"]

PathLike = Union[str, Path]


@dataclass(frozen=True)
class CategoryCell:
    """One method on one category. ``evaluated < total`` marks a partial run."""

    total: int
    evaluated: int
    separated: int
    reliability_failures: int
    violations: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.evaluated == self.total

    def label(self) -> str:
        if not self.evaluated:
            return "-"
        text = f"{self.separated}/{self.evaluated}"
        return text if self.complete else f"{text} (of {self.total})"


@dataclass(frozen=True)
class BRECTable:
    """Per-category results of several methods.

    Attributes:
        totals: category -> number of pairs in the benchmark (column order).
        cells: method -> category -> :class:`CategoryCell` (row order:
            oracles first, then models in the order they were recorded).
        bounds: model method -> the oracle that bounds it.
        violating: method -> names of the pairs it separates beyond its bound
            (``None`` for oracles, and for models whose bound was not run).
    """

    totals: Mapping[str, int]
    cells: Mapping[str, Mapping[str, CategoryCell]]
    bounds: Mapping[str, str]
    violating: Mapping[str, Optional[tuple[str, ...]]]

    @classmethod
    def from_records(cls, records: PathLike, pairs: Sequence[Any],
                     bounds: Optional[Mapping[str, str]] = None,
                     methods: Optional[Sequence[str]] = None) -> "BRECTable":
        """Build the table of ``pairs`` (their categories give the columns and
        totals) from a JSONL file written by
        :func:`~graphequi.expressivity.run_brec` / ``run_oracle``.

        Args:
            bounds: model method -> oracle method (default
                :data:`~graphequi.expressivity.models.MODEL_BOUNDS`).
            methods: rows to show (default: every method recorded).
        """
        from .models import MODEL_BOUNDS

        bounds = dict(MODEL_BOUNDS if bounds is None else bounds)
        names = {p.name: p.category for p in pairs}
        order = _category_order(pairs)
        totals = {c: sum(1 for cat in names.values() if cat == c) for c in order}
        by_method: dict[str, list[dict]] = {}
        for r in read_records(records):
            if r["name"] in names:
                by_method.setdefault(r["method"], []).append(r)
        rows = list(methods) if methods is not None else (
            [m for m in ORACLES if m in by_method] + [m for m in by_method if m not in ORACLES])
        reports = {m: SeparationReport(m, tuple(_verdict(r) for r in by_method.get(m, [])), order)
                   for m in rows}
        # pairs each oracle evaluated and did not separate: a model separating one is a violation
        unseparated = {}
        for o in set(bounds.values()) | (set(rows) & set(ORACLES)):
            if o in by_method:
                rep = SeparationReport(o, tuple(_verdict(r) for r in by_method[o]), order)
                unseparated[o] = {r["name"] for r in by_method[o]} - set(rep.separated_names)
        cells, violating = {}, {}
        for m in rows:
            rep = reports[m]
            limit = unseparated.get(bounds.get(m)) if m not in ORACLES else None
            bad = tuple(sorted(set(rep.separated_names) & limit)) if limit is not None else None
            violating[m] = bad
            counts = rep.counts
            cells[m] = {c: CategoryCell(
                total=totals[c], evaluated=counts[c].total, separated=counts[c].separated,
                reliability_failures=counts[c].reliability_failures,
                violations=sum(1 for n in bad or () if names[n] == c),
                seconds=round(sum(r.get("seconds", 0.0) for r in by_method.get(m, [])
                                  if names[r["name"]] == c), 3)) for c in order}
        return cls(totals, cells, {m: b for m, b in bounds.items() if m in cells}, violating)

    # -- views ----------------------------------------------------------------------
    def overall(self, method: str) -> CategoryCell:
        cs = list(self.cells[method].values())
        return CategoryCell(sum(c.total for c in cs), sum(c.evaluated for c in cs),
                            sum(c.separated for c in cs), sum(c.reliability_failures for c in cs),
                            sum(c.violations for c in cs), round(sum(c.seconds for c in cs), 3))

    def _bound_label(self, method: str) -> str:
        if method in ORACLES:
            return "(oracle)"
        if self.violating.get(method) is None:
            bound = self.bounds.get(method)
            return f"n/a (run {bound})" if bound else "n/a (no bound)"
        return str(self.overall(method).violations)

    def format(self, markdown: bool = True) -> str:
        """Three tables: pairs separated (reliably) per category, reliability
        failures per category, and seconds per category with the projected
        cost of the whole category. A partial cell reads ``a/b (of N)``."""
        cats = list(self.totals)
        head = ["method"] + [f"{c} ({n})" for c, n in self.totals.items()] + \
            [f"total ({sum(self.totals.values())})", "reliability failures", "violations"]
        sep_rows, rel_rows, time_rows = [], [], []
        for m, row in self.cells.items():
            o = self.overall(m)
            sep_rows.append([m] + [row[c].label() for c in cats] +
                            [o.label(), str(o.reliability_failures), self._bound_label(m)])
            rel_rows.append([m] + [str(row[c].reliability_failures) if row[c].evaluated else "-"
                                   for c in cats])
            time_rows.append([m] + [_time(row[c]) for c in cats] + [_total_time(row.values())])
        return "\n\n".join([
            "Pairs separated (reliable verdicts only):\n\n" + _render(head, sep_rows, markdown),
            "Reliability failures (a graph against its own relabelings judged different):\n\n"
            + _render(["method"] + cats, rel_rows, markdown),
            "Seconds: run so far [projected for the full category]:\n\n"
            + _render(["method"] + cats + ["total"], time_rows, markdown)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": dict(self.totals),
            "bounds": dict(self.bounds),
            "methods": {m: {"categories": {c: {**cell.__dict__} for c, cell in row.items()},
                            "overall": {**self.overall(m).__dict__},
                            "violating_pairs": (None if self.violating[m] is None
                                                else list(self.violating[m]))}
                        for m, row in self.cells.items()},
        }

    def save(self, path: PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, :meth:`format` as ``.md`` and the
        heatmap as ``.png`` (same stem). Returns the JSON path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        path.with_suffix(".md").write_text(self.format() + "\n")
        self.plot(path.with_suffix(".png"))
        return path

    def plot(self, path: PathLike) -> Path:
        """Heatmap methods x categories: the color is the fraction of the
        evaluated pairs separated, the text ``a/b`` (``(of N)`` when partial);
        oracle rows are labelled ``[oracle]``, categories not run are grey."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        cats = list(self.totals) + ["total"]
        methods = list(self.cells)
        values = np.full((len(methods), len(cats)), np.nan)
        fig, ax = plt.subplots(figsize=(3.2 + 1.25 * len(cats), 1.0 + 0.45 * len(methods)))
        for i, m in enumerate(methods):
            row = [self.cells[m][c] for c in self.totals] + [self.overall(m)]
            for j, cell in enumerate(row):
                if cell.evaluated:
                    values[i, j] = cell.separated / cell.evaluated
                text = cell.label().replace(" (of", "\n(of")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if cell.evaluated and values[i, j] > 0.6 else "black")
        cmap = plt.get_cmap("Blues").copy()
        cmap.set_bad("#e4e4e4")
        ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(cats)), [f"{c}\n({n})" for c, n in self.totals.items()] +
                      [f"total\n({sum(self.totals.values())})"], fontsize=8)
        labels = [f"{m} [oracle]" if m in ORACLES else
                  f"{m} (violations: {self._bound_label(m)})" for m in methods]
        ax.set_yticks(range(len(methods)), labels, fontsize=8)
        n_oracles = sum(m in ORACLES for m in methods)
        if 0 < n_oracles < len(methods):
            ax.axhline(n_oracles - 0.5, color="black", linewidth=1.5)
        ax.set_title("BREC: pairs separated / evaluated (reliable verdicts)", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=130)
        plt.close(fig)
        return Path(path)


def _time(cell: CategoryCell) -> str:
    if not cell.evaluated:
        return "-"
    if cell.complete:
        return f"{cell.seconds:.1f}"
    return f"{cell.seconds:.1f} [{cell.seconds / cell.evaluated * cell.total:.0f}]"


def _total_time(cells) -> str:
    """Seconds so far and, when partial, the sum of the per-category
    projections (``+ ?`` for categories with no pair run yet)."""
    cells = list(cells)
    seconds = sum(c.seconds for c in cells)
    if all(c.complete for c in cells):
        return f"{seconds:.1f}"
    run = [c for c in cells if c.evaluated]
    if not run:
        return "-"
    projected = sum(c.seconds / c.evaluated * c.total for c in run)
    unknown = " + ?" if len(run) < len(cells) else ""
    return f"{seconds:.1f} [{projected:.0f}{unknown}]"


def _render(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])

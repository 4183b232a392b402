r"""The expressivity table: how many basis polynomials each bank computes.

:func:`analyze` counts, per bank, degree and number of marks, the basis
polynomials of :func:`polynomial_family` for which :func:`~graphequi.expressivity.certify`
finds a certificate; :class:`ExpressivityTable` formats, saves and plots
the counts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from graphequi._deprecation import renamed_function, renamed_property, warn_renamed
from graphequi.poly import Multigraph, basis

from .banks import ContractionBank, as_bank
from .search import certify

__all__ = ["polynomial_family", "ExpressivityRow", "ExpressivityTable", "analyze", "analyse"]


def polynomial_family(degree: int, marks: int, *, simple: bool = True, connected: bool = True,
                      directed: bool = False) -> tuple[Multigraph, ...]:
    """The basis polynomials analyzed per (degree, marks) cell.

    ``simple=True`` keeps multigraphs without loops or parallel edges: on a
    0/1 adjacency with an empty diagonal every other basis element equals one
    of these (``X_uv^2 = X_uv``, ``X_uu = 0``).
    """
    polys = basis(degree, marks, directed=directed, loops=not simple, connected=connected)
    return tuple(p for p in polys if not simple or p.is_simple())


@dataclass(frozen=True)
class ExpressivityRow:
    """One cell: bank ``bank`` computes ``computable`` of the ``total``
    basis polynomials of ``degree`` with ``marks`` marks (``missing``: the
    others)."""

    bank: str
    degree: int
    marks: int
    computable: int
    total: int
    missing: tuple = ()

    arch = renamed_property("arch", "bank")


@dataclass(frozen=True)
class ExpressivityTable:
    """Result of :func:`analyze`: rows per (bank, degree, marks)."""

    rows: tuple
    simple: bool = True
    connected: bool = True

    @property
    def banks(self) -> list[str]:
        """Bank names in row order."""
        return list(dict.fromkeys(r.bank for r in self.rows))

    archs = renamed_property("archs", "banks")

    @property
    def degrees(self) -> list[int]:
        return sorted({r.degree for r in self.rows})

    @property
    def marks(self) -> list[int]:
        return sorted({r.marks for r in self.rows})

    def row(self, bank: str, degree: int, marks: int) -> ExpressivityRow:
        for r in self.rows:
            if (r.bank, r.degree, r.marks) == (bank, degree, marks):
                return r
        raise KeyError((bank, degree, marks))

    def missing(self, bank: str, degree: Optional[int] = None) -> list[Multigraph]:
        """Non-computable polynomials of ``bank`` (at ``degree``, or all)."""
        return [p for r in self.rows if r.bank == bank and (degree is None or r.degree == degree)
                for p in r.missing]

    def format(self) -> str:
        """Plain-text table: one line per (degree, marks), one column per bank."""
        banks = self.banks
        width = max(9, *(len(b) for b in banks))
        head = f"{'degree':>6} {'marks':>5} " + " ".join(f"{b:>{width}}" for b in banks)
        lines = [head, "-" * len(head)]
        for d in self.degrees:
            for m in self.marks:
                cells = []
                for b in banks:
                    r = self.row(b, d, m)
                    cells.append(f"{f'{r.computable}/{r.total}':>{width}}")
                lines.append(f"{d:>6} {m:>5} " + " ".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "simple": self.simple, "connected": self.connected,
            "rows": [{"bank": r.bank, "degree": r.degree, "marks": r.marks,
                      "computable": r.computable, "total": r.total,
                      "missing": [repr(p) for p in r.missing]} for r in self.rows],
        }

    def to_json(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)

    def plot(self, path=None):
        """Heatmap of the computable fraction (rows: degree/marks, columns:
        banks), annotated with ``computable/total``. Saves to
        ``path`` when given; returns the figure."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        banks, cells = self.banks, [(d, m) for d in self.degrees for m in self.marks]
        frac = np.zeros((len(cells), len(banks)))
        fig, ax = plt.subplots(figsize=(1.3 + 1.25 * len(banks), 0.9 + 0.32 * len(cells)))
        for i, (d, m) in enumerate(cells):
            for j, a in enumerate(banks):
                r = self.row(a, d, m)
                frac[i, j] = r.computable / r.total if r.total else 1.0
                ax.text(j, i, f"{r.computable}/{r.total}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] < 0.5 else "black")
        im = ax.imshow(frac, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(banks)), banks, rotation=30, ha="right")
        ax.set_yticks(range(len(cells)), [f"d={d}, {m} mark{'s' if m != 1 else ''}" for d, m in cells],
                      fontsize=7)
        kind = ("simple " if self.simple else "") + ("connected " if self.connected else "")
        ax.set_title(f"computable {kind}basis polynomials", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction computable")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=130)
            plt.close(fig)
        return fig


def analyze(banks: Sequence[Union[str, ContractionBank]] = (), max_degree: Optional[int] = None, *,
            marks: Sequence[int] = (0, 1, 2), min_degree: int = 1, simple: bool = True,
            connected: bool = True, progress: bool = False, archs=None) -> ExpressivityTable:
    """Count, per bank, degree and number of marks, how many basis
    polynomials (:func:`polynomial_family`) the bank computes.

    Args:
        banks: banks or registered names, one table column each.
        max_degree: largest degree (cells run from ``min_degree``).
        marks: numbers of marks (0 invariant, 1 node, 2 pair).
        simple, connected: which multigraphs (see :func:`polynomial_family`).
        progress: show a tqdm bar over the cells.
        archs: deprecated name of ``banks``.

    Example:
        >>> t = analyze(["mpnn", "ppgn"], max_degree=3, marks=(0,))
        >>> [(r.bank, r.degree, r.computable, r.total) for r in t.rows if r.degree == 3]
        [('mpnn', 3, 2, 3), ('ppgn', 3, 3, 3)]
    """
    if archs is not None:
        warn_renamed("analyze(archs=...)", "analyze(banks=...)")
        banks = archs
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 1:
        raise ValueError(f"max_degree must be a positive int, got {max_degree!r}")
    if not banks:
        raise ValueError("analyze needs at least one bank")
    resolved = [as_bank(b) for b in banks]
    cells = [(d, m) for d in range(min_degree, max_degree + 1) for m in marks]
    iterator = cells
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(cells, desc="expressivity", unit="cell")
    rows = []
    for d, m in iterator:
        polys = polynomial_family(d, m, simple=simple, connected=connected)
        for bank in resolved:
            missing = tuple(p for p in polys if certify(p, bank) is None)
            rows.append(ExpressivityRow(bank.name, d, m, len(polys) - len(missing), len(polys), missing))
    order = {b.name: i for i, b in enumerate(resolved)}
    rows.sort(key=lambda r: (order[r.bank], r.degree, r.marks))
    return ExpressivityTable(tuple(rows), simple, connected)


analyse = renamed_function("analyse", "analyze", analyze)

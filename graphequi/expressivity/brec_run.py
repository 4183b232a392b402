r"""Resumable BREC runs: one JSON line per finished pair, reruns skip them.

:func:`run_brec` runs BREC's reliable paired comparison
(:func:`~graphequi.expressivity.separates`) pair by pair and appends each
verdict to a JSONL *records* file as soon as it is known; :func:`run_oracle`
does the same for the exact WL oracles. A later call with the same records
file skips the pairs already there, so a full BREC table (hours on a CPU) can
be built by several shorter runs, and :class:`~graphequi.expressivity.BRECTable`
reads the file back.

Each record is one pair, one method and one seed::

    {"method": "ppgn", "fingerprint": "...", "seconds": 3.1, "name": "brec-17",
     "category": "Basic", "separated": true, "reliable": true, "seed": 0,
     "t2": 1.2e5, "t2_reliability": 3.4, ...}

``fingerprint`` digests everything that decides a verdict (the protocol
configuration, a description of the model and the momenta of its batch
norms, which model reprs tend to hide but which change eval-mode verdicts);
a rerun with a different configuration under the same method name is
refused instead of mixing two experiments in one table.

Relabelings are drawn from a generator seeded by the seed and a *stable*
pair id (the number in ``brec-<id>``, else a CRC of the name), not by the
pair's position in the list, so a pair gets the same relabelings whether it
runs alone, in its category, or in the full benchmark; ``relabelings=``
uses BREC's stored ones instead.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import zlib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from ._graphs import StoredRelabelings
from .brec import (BREC_REFERENCE, BRECConfig, PairVerdict, SeparationReport, _as_pairs,
                   _category_order, _run_pair, stored_for)
from .wl import wl_equivalent

__all__ = ["norm_statistics_marker", "read_records", "run_brec", "run_oracle", "ORACLES", "stable_pair_id"]

PathLike = Union[str, Path]
_VERDICT_FIELDS = {f.name for f in fields(PairVerdict)}

#: Oracle name -> (k, polynomial colors: None, 'node' or 'pair'). The
#: ``+ppgn++(6)`` oracles start from the 12 ``ppgn++`` polynomials of degree
#: <= 6 (exact counts) as initial colors: node-level for 1-WL (the bound of a
#: GIN fed those node features), pair-level for 2-FWL (the bound of PPGN++).
ORACLES: dict[str, tuple[int, Optional[str]]] = {
    "1-WL": (1, None),
    "2-FWL": (2, None),
    "1-WL+ppgn++(6)": (1, "node"),
    "2-FWL+ppgn++(6)": (2, "pair"),
}


def stable_pair_id(name: str) -> int:
    """``17`` for ``"brec-17"`` (any ``<prefix>-<int>``), else the CRC-32 of the name."""
    match = re.search(r"-(\d+)$", name)
    return int(match.group(1)) if match else zlib.crc32(name.encode())


def fingerprint(config: BRECConfig, model: str, relabelings: Optional[str] = None) -> str:
    """A short digest of the protocol configuration, a model description and,
    when relabelings are given rather than drawn, their source."""
    content = {"config": asdict(config), "model": model}
    if relabelings is not None:
        content["relabelings"] = relabelings
    text = json.dumps(content, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def norm_statistics_marker(model: nn.Module) -> str:
    """``" batch-norm momentum 0.1"`` (the distinct momenta of ``model``'s batch
    norms; ``None`` for cumulative statistics), or ``""`` without batch norm.

    :func:`run_brec` appends it to the model description of the fingerprint:
    the running statistics decide the eval-mode outputs BREC compares, and a
    ``repr`` does not show them.

    Example:
        >>> norm_statistics_marker(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, momentum=None)))
        ' batch-norm momentum None'
    """
    momenta = sorted({str(m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)})
    return f" batch-norm momentum {','.join(momenta)}" if momenta else ""


def read_records(path: PathLike, method: Optional[str] = None) -> list[dict[str, Any]]:
    """The records of ``path`` (all methods, or one), in file order.

    A truncated last line (a run killed while writing) is ignored; any other
    malformed line raises a ``ValueError`` naming the line.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # interrupted while appending; the pair will simply run again
            raise ValueError(f"{path}, line {number}: not a JSON record") from None
        if not isinstance(record, dict) or not {"method", "name", "category"} <= set(record):
            raise ValueError(f"{path}, line {number}: a record needs method, name and category")
        if method is None or record["method"] == method:
            out.append(record)
    return out


def _verdict(record: dict[str, Any]) -> PairVerdict:
    return PairVerdict(**{k: v for k, v in record.items() if k in _VERDICT_FIELDS})


class _Appender:
    """Appends records, one flushed line each, so an interrupted run keeps
    every finished pair."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write leaves a partial last line: drop it (that pair runs again).
        if path.exists() and path.stat().st_size:
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                with open(path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()


def _finished(path: Path, method: str, fp: str) -> dict[tuple[str, Optional[int]], dict]:
    done = {}
    for r in read_records(path, method):
        if r.get("fingerprint") != fp:
            raise ValueError(
                f"{path} already holds records of {method!r} made with another configuration "
                f"(fingerprint {r.get('fingerprint')} != {fp}); use a new records file or "
                f"another method name")
        done[(r["name"], r.get("seed"))] = r
    return done


def _report(method: str, pairs, done: dict) -> SeparationReport:
    names = {p.name for p in pairs}
    verdicts = tuple(_verdict(r) for r in done.values() if r["name"] in names)
    return SeparationReport(method, verdicts, _category_order(pairs))


def run_brec(model_fn: Callable[[int], nn.Module], pairs: Sequence[Any], records: PathLike, *,
             method: str, model: str = "", seeds: Sequence[int] = (0,),
             config: Optional[BRECConfig] = None, transform: Optional[Callable] = None,
             node_attr: Optional[str] = None, device: Union[str, torch.device] = "cpu",
             progress: bool = True, time_limit_s: Optional[float] = None,
             relabelings: Optional[Mapping[str, StoredRelabelings]] = None) -> SeparationReport:
    """BREC's protocol on ``pairs``, resumable through the JSONL ``records``.

    Args:
        model_fn: ``seed -> torch.nn.Module`` mapping a PyG ``Batch`` to
            ``[num_graphs, config.output_dim]`` (a fresh model per pair).
        pairs: :class:`~graphequi.expressivity.GraphPair` list (unique names).
        records: JSONL file; finished ``(pair, seed)`` of ``method`` are
            skipped, new ones appended as they finish.
        method: the row name in tables (e.g. ``"ppgn"``).
        model: a description of the model (its ``repr``, widths, features)
            that enters the fingerprint; change it when the model changes.
            The batch-norm momenta of ``model_fn(seeds[0])`` are added to it
            (:func:`norm_statistics_marker`; that model is built once, with
            the global random state restored, and not trained).
        seeds, transform, node_attr, device: as for
            :func:`~graphequi.expressivity.separates`.
        config: protocol settings (default
            :data:`~graphequi.expressivity.BREC_REFERENCE`, BREC's own).
        progress: show a tqdm bar.
        time_limit_s: stop starting new pairs after this many seconds (the
            pairs run so far are recorded; rerun to continue).
        relabelings: stored relabelings to use instead of drawn ones (as for
            :func:`~graphequi.expressivity.separates`); their ``source``
            attribute (e.g. ``"brec_v3.npy"``) enters the fingerprint.

    Returns:
        The :class:`SeparationReport` of every recorded pair of ``pairs``
        (earlier runs included).
    """
    cfg = config or BREC_REFERENCE
    pair_list = _as_pairs(pairs)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    if time_limit_s is not None and not time_limit_s >= 0:
        raise ValueError(f"time_limit_s must be >= 0, got {time_limit_s}")
    path = Path(records)
    source = None if relabelings is None else str(getattr(relabelings, "source", "stored"))
    with torch.random.fork_rng(devices=[]):
        marker = norm_statistics_marker(model_fn(seeds[0]))
    fp = fingerprint(cfg, model + marker, source)
    done = _finished(path, method, fp)
    todo = [(s, p) for s in seeds for p in pair_list if (p.name, s) not in done]
    appender = _Appender(path)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        bar = tqdm(total=len(todo), desc=f"BREC {method}", disable=not progress)
        try:
            for seed, pair in todo:
                if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
                    break
                t0 = time.perf_counter()
                verdict, _ = _run_pair(model_fn, pair, stable_pair_id(pair.name), seed, cfg,
                                       transform, node_attr, device, stored_for(relabelings, pair))
                record = {"method": method, "fingerprint": fp,
                          "seconds": round(time.perf_counter() - t0, 4), **asdict(verdict)}
                appender.write(record)
                done[(pair.name, seed)] = record
                bar.update(1)
        finally:
            bar.close()
    return _report(method, pair_list, done)


def run_oracle(pairs: Sequence[Any], records: PathLike, oracle: str = "2-FWL", *,
               progress: bool = True) -> SeparationReport:
    """Exact verdicts of one of :data:`ORACLES` on ``pairs``, recorded like
    :func:`run_brec` (finished pairs are skipped)."""
    from .polynomial_colors import with_polynomial_colors

    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; available: {', '.join(ORACLES)}")
    k, level = ORACLES[oracle]
    pair_list = _as_pairs(pairs)
    path = Path(records)
    fp = fingerprint(BRECConfig(), f"oracle {oracle}")
    done = _finished(path, oracle, fp)
    appender = _Appender(path)
    for pair in tqdm([p for p in pair_list if (p.name, None) not in done], desc=oracle,
                     disable=not progress):
        t0 = time.perf_counter()
        a, b = pair.first, pair.second
        if level is not None:
            a, b = with_polynomial_colors(a, level=level), with_polynomial_colors(b, level=level)
        verdict = PairVerdict(pair.name, pair.category, not wl_equivalent(a, b, k=k))
        record = {"method": oracle, "fingerprint": fp,
                  "seconds": round(time.perf_counter() - t0, 4), **asdict(verdict)}
        appender.write(record)
        done[(pair.name, None)] = record
    return _report(oracle, pair_list, done)

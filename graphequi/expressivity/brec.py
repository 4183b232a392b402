r"""Pair separation: BREC's reliable paired comparison with any PyG model, and
the exact WL oracles over the same pair lists.

BREC protocol (Wang & Zhang 2023; reference ``GraphPKU/BREC``,
``base/test_BREC.py``), per pair ``(G, H)``:

1. 32 random relabelings of each graph (the first is the identity; node
   order and edge order are shuffled), interleaved ``G_0, H_0, G_1, ...``
   and fed in batches (``batch_size``: 16 in :class:`BRECConfig`, 32 in
   :data:`BREC_REFERENCE`, BREC's PPGN setting).
2. A fresh model (``model_fn(seed)``) mapping a PyG ``Batch`` to
   ``[num_graphs, 16]`` is trained for at most 20 epochs with Adam
   (lr ``1e-4``, weight decay ``1e-4``, ``ReduceLROnPlateau``) on
   ``CosineEmbeddingLoss`` with target ``-1`` between ``G_i`` and ``H_i``,
   stopping early once the mean loss is below ``0.2``.
3. With the outputs :math:`d_i = f(G_i) - f(H_i)`, :math:`i = 1..32`,

   .. math::
       T^2 = \bar d^\top (S + \epsilon I)^{+} \bar d,
       \qquad S = \operatorname{cov}(d_1, \dots, d_{32}),

   and the pair counts as separated when ``T^2 > 72.34`` and ``T^2`` is not
   (within ``1e-6``) equal to the reliability statistic below.
4. Reliability: one graph of the pair (chosen at random) gets 64 relabelings
   compared in consecutive pairs. Its :math:`T^2` must stay below the
   threshold, otherwise the pair's verdict is void (a *reliability failure*).

The relabelings of steps 1 and 4 are drawn here from a generator seeded by
the seed and the pair; ``relabelings=`` (BREC's stored ones,
:func:`~graphequi.expressivity.load_brec_relabelings`) uses given graphs
instead, which restores BREC's exact permutations and reliability graphs.

Two details of the reference code, kept as defaults and switchable:

* ``statistic="brec"`` omits the sample-size factor ``n = 32`` of the
  textbook Hotelling statistic, although the threshold
  ``72.34 = 31 F_{0.95}(16, 16)`` is the textbook one; ``statistic="hotelling"``
  multiplies by ``n``.
* ``ridge``: BREC's code uses ``pinv(S)``, which returns ``T^2 = 0`` for a
  model whose outputs are *exactly* permutation invariant (``S = 0``), however
  different the two graphs; BREC's comments recommend adding
  :math:`\epsilon I` with ``EPSILON_MATRIX = 1e-7`` for such models. This
  module adds it by default (``ridge=1e-7``); ``ridge=0`` is the reference
  behavior (:data:`BREC_REFERENCE`, used by :func:`run_brec` and the CLI).
  With the ridge, differences below about ``sqrt(72.34 * 1e-7) ~ 3e-3`` in
  output units are not significant, which hides models with small outputs
  (e.g. a PPGN in eval mode) whose outputs are not bitwise invariant.

A pair is counted as separated only when it is separated *and* reliable
(BREC's "Real_correct" subtracts reliability failures globally); with several
seeds it must be separated under every seed.

Example:
    >>> from graphequi.expressivity import classic_pairs
    >>> report = oracle_separation(classic_pairs(), k=2)
    >>> report.overall
    CategoryCount(total=5, separated=4, reliability_failures=0)
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._graphs import GraphPair, StoredRelabelings, to_data
from .loaders import BREC_CATEGORIES
from .wl import wl_equivalent

__all__ = [
    "BRECConfig",
    "BREC_REFERENCE",
    "BREC_THRESHOLD",
    "CategoryCount",
    "PairVerdict",
    "SeparationReport",
    "hotelling_t2",
    "separates",
    "oracle_separation",
]

#: ``31 * F_{0.95}(16, 16)`` rounded as in BREC (``scipy.stats.f.ppf``).
BREC_THRESHOLD = 72.34


@dataclass(frozen=True)
class BRECConfig:
    """Hyper-parameters of the BREC protocol (defaults: BREC's reference)."""

    num_relabel: int = 32
    output_dim: int = 16
    epochs: int = 20
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 16
    loss_threshold: float = 0.2
    margin: float = 0.0
    threshold: float = BREC_THRESHOLD
    ridge: float = 1e-7
    statistic: Literal["brec", "hotelling"] = "brec"
    compare_atol: float = 1e-6

    def __post_init__(self):
        if self.num_relabel < 2 or self.output_dim < 1 or self.epochs < 0:
            raise ValueError("num_relabel >= 2, output_dim >= 1 and epochs >= 0 are required")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError(f"batch_size must be even (pairs stay together), got {self.batch_size}")
        if self.ridge < 0 or not math.isfinite(self.ridge):
            raise ValueError(f"ridge must be finite and >= 0, got {self.ridge}")
        if self.statistic not in ("brec", "hotelling"):
            raise ValueError(f"statistic must be 'brec' or 'hotelling', got {self.statistic!r}")


#: BREC's reference settings (``base/test_BREC.py``, PPGN configuration):
#: batches of 32 graphs and ``pinv(S)`` without a ridge. :func:`run_brec` and
#: the CLI use it; :class:`BRECConfig` keeps ``batch_size=16, ridge=1e-7``.
BREC_REFERENCE = BRECConfig(batch_size=32, ridge=0.0)


@dataclass(frozen=True)
class PairVerdict:
    """Outcome for one pair (and one seed for the empirical protocol).

    ``separated`` is the final verdict: for the BREC protocol it requires the
    candidate test (``t2 > threshold`` and ``t2`` not equal to
    ``t2_reliability``) *and* ``reliable``. Fields that a method does not
    produce are ``None``.
    """

    name: str
    category: str
    separated: bool
    reliable: bool = True
    seed: Optional[int] = None
    t2: Optional[float] = None
    t2_reliability: Optional[float] = None
    candidate: Optional[bool] = None
    epochs: Optional[int] = None
    final_loss: Optional[float] = None


@dataclass(frozen=True)
class CategoryCount:
    total: int
    separated: int
    reliability_failures: int

    def __str__(self) -> str:
        return f"{self.separated}/{self.total}"


@dataclass(frozen=True)
class SeparationReport:
    """Per-pair verdicts of one method with per-category and overall counts.

    Pairs are counted once: with several seeds a pair is separated when every
    seed separates it reliably, and it is a reliability failure when any seed
    fails the reliability check.
    """

    method: str
    verdicts: tuple[PairVerdict, ...]
    categories: tuple[str, ...] = field(default=())

    def _by_pair(self) -> dict[str, list[PairVerdict]]:
        out: dict[str, list[PairVerdict]] = {}
        for v in self.verdicts:
            out.setdefault(v.name, []).append(v)
        return out

    def _count(self, groups: Iterable[list[PairVerdict]]) -> CategoryCount:
        groups = list(groups)
        return CategoryCount(
            total=len(groups),
            separated=sum(all(v.separated for v in g) for g in groups),
            reliability_failures=sum(any(not v.reliable for v in g) for g in groups))

    @property
    def counts(self) -> dict[str, CategoryCount]:
        """Category -> counts, in :attr:`categories` order."""
        groups = self._by_pair().values()
        return {c: self._count(g for g in groups if g[0].category == c) for c in self.categories}

    @property
    def overall(self) -> CategoryCount:
        return self._count(self._by_pair().values())

    @property
    def separated_names(self) -> tuple[str, ...]:
        return tuple(n for n, g in self._by_pair().items() if all(v.separated for v in g))

    @property
    def reliability_failures(self) -> tuple[str, ...]:
        return tuple(n for n, g in self._by_pair().items() if any(not v.reliable for v in g))

    def table(self) -> str:
        """A plain-text table: category, separated/total, reliability failures."""
        rows = [(c, str(k), str(k.reliability_failures)) for c, k in self.counts.items()]
        rows.append(("overall", str(self.overall), str(self.overall.reliability_failures)))
        head = ("category", "separated", "reliability failures")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
        fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
        lines = [f"{self.method}", fmt(head), fmt(tuple("-" * w for w in widths))]
        return "\n".join(lines + [fmt(r) for r in rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "overall": asdict(self.overall),
            "categories": {c: asdict(k) for c, k in self.counts.items()},
            "reliability_failures": list(self.reliability_failures),
            "verdicts": [asdict(v) for v in self.verdicts],
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write :meth:`to_dict` as JSON and a per-category bar plot next to
        it (same stem, ``.png``). Returns the JSON path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        counts = self.counts
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * max(1, len(counts)), 3.2))
        names = list(counts)
        ax.bar(names, [counts[c].total for c in names], color="#dddddd", label="pairs")
        ax.bar(names, [counts[c].separated for c in names], color="#3b75af", label="separated")
        for i, c in enumerate(names):
            ax.text(i, counts[c].total, str(counts[c]), ha="center", va="bottom", fontsize=8)
        ax.set_title(self.method, fontsize=9)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        fig.tight_layout()
        fig.savefig(path.with_suffix(".png"), dpi=120)
        plt.close(fig)
        return path

    def __repr__(self) -> str:
        return f"SeparationReport({self.method!r}, overall={self.overall})"


# --- helpers -----------------------------------------------------------------------

def _as_pairs(pairs: Sequence[Any]) -> list[GraphPair]:
    out = []
    for i, p in enumerate(pairs):
        if isinstance(p, GraphPair):
            out.append(p if p.name else GraphPair(p.first, p.second, p.category, f"pair-{i}"))
        elif isinstance(p, (tuple, list)) and len(p) == 2:
            out.append(GraphPair(p[0], p[1], "", f"pair-{i}"))
        else:
            raise TypeError(f"pair {i} must be a GraphPair or a (graph, graph) tuple, "
                            f"got {type(p).__name__}")
    if not out:
        raise ValueError("no pairs given")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError("pair names must be unique")
    return out


def _category_order(pairs: Sequence[GraphPair]) -> tuple[str, ...]:
    seen = list(dict.fromkeys(p.category for p in pairs))
    known = [c for c in BREC_CATEGORIES if c in seen]
    return tuple(known + [c for c in seen if c not in known])


def hotelling_t2(x: Tensor, y: Tensor, ridge: float = 1e-7,
                 statistic: Literal["brec", "hotelling"] = "brec") -> float:
    r"""Paired :math:`T^2` of ``x - y`` against a zero mean.

    Args:
        x, y: ``[n, p]`` outputs for ``n`` paired observations.
        ridge: :math:`\epsilon` added to the covariance diagonal before the
            pseudo-inverse.
        statistic: ``"brec"`` returns :math:`\bar d^\top (S+\epsilon I)^+ \bar d`
            (BREC's code), ``"hotelling"`` returns ``n`` times that.

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [3.0]]); y = torch.zeros(3, 1)
        >>> round(hotelling_t2(x, y, ridge=0.0), 6)  # mean 2, variance 1
        4.0
    """
    if x.shape != y.shape or x.dim() != 2 or x.size(0) < 2:
        raise ValueError(f"x and y must both be [n >= 2, p], got {list(x.shape)} and {list(y.shape)}")
    d = (x - y).detach().cpu().T
    mean = d.mean(dim=1, keepdim=True)
    cov = torch.cov(d).reshape(d.size(0), d.size(0))
    if ridge:
        cov = cov + ridge * torch.eye(d.size(0), dtype=cov.dtype)
    t2 = float((mean.T @ torch.linalg.pinv(cov) @ mean).squeeze())
    return t2 * x.size(0) if statistic == "hotelling" else t2


def _relabeled(data, gen: torch.Generator, identity: bool):
    """A copy of ``data`` with nodes and edges shuffled (new node i = old perm[i])."""
    from torch_geometric.data import Data

    n = data.num_nodes
    perm = torch.arange(n) if identity else torch.randperm(n, generator=gen)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    edge_index = inv[data.edge_index]
    if not identity:
        edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]
    out = Data(edge_index=edge_index, num_nodes=n)
    for key in ("x", "pos"):
        value = getattr(data, key, None)
        if isinstance(value, Tensor) and value.size(0) == n:
            out[key] = value[perm]
    return out


def _batches(datas: list, batch_size: int) -> list:
    from torch_geometric.data import Batch

    return [Batch.from_data_list(datas[i:i + batch_size]) for i in range(0, len(datas), batch_size)]


def _outputs(model: nn.Module, batches: list, cfg: BRECConfig, where: str, device) -> Tensor:
    outs = []
    for batch in batches:
        out = model(batch.to(device))
        if not isinstance(out, Tensor) or out.shape != (batch.num_graphs, cfg.output_dim):
            shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"{where}: model must return [num_graphs, {cfg.output_dim}] = "
                             f"[{batch.num_graphs}, {cfg.output_dim}], got {shape}")
        if not torch.isfinite(out).all():
            raise ValueError(f"{where}: model returned NaN or infinite outputs")
        outs.append(out)
    return torch.cat(outs)


def stored_for(relabelings: Optional[Mapping[str, StoredRelabelings]], pair: GraphPair
               ) -> Optional[StoredRelabelings]:
    """``relabelings[pair.name]``; a clear error when a given mapping lacks the pair."""
    if relabelings is None:
        return None
    if pair.name not in relabelings:
        raise ValueError(f"the stored relabelings have no entry for pair {pair.name!r}")
    return relabelings[pair.name]


def _run_pair(model_fn, pair: GraphPair, index: int, seed: int, cfg: BRECConfig,
              transform, node_attr, device, stored: Optional[StoredRelabelings] = None
              ) -> tuple[PairVerdict, str]:
    where = f"pair {pair.name!r} (seed {seed})"
    gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
    prepare = (lambda d: transform(d)) if transform is not None else (lambda d: d)
    if stored is None:
        base = [to_data(pair.first, node_attr), to_data(pair.second, node_attr)]
        test = []
        for r in range(cfg.num_relabel):
            test += [prepare(_relabeled(base[0], gen, r == 0)), prepare(_relabeled(base[1], gen, r == 0))]
        which = int(torch.randint(2, (1,), generator=gen))
        control = [prepare(_relabeled(base[which], gen, r == 0)) for r in range(2 * cfg.num_relabel)]
    else:
        stored.check(pair, cfg.num_relabel, where)
        test = [prepare(to_data(g, node_attr)) for g in stored.pairs]
        control = [prepare(to_data(g, node_attr)) for g in stored.reliability]
    test_batches, control_batches = _batches(test, cfg.batch_size), _batches(control, cfg.batch_size)

    torch.manual_seed(seed)
    model = model_fn(seed)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_fn must return a torch.nn.Module, got {type(model).__name__}")
    model = model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = nn.CosineEmbeddingLoss(margin=cfg.margin)
    epochs_run, mean_loss = 0, float("nan")
    if params and cfg.epochs:
        optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        model.train()
        for _ in range(cfg.epochs):
            total = 0.0
            for batch in test_batches:
                optimizer.zero_grad()
                pred = _outputs(model, [batch], cfg, where, device)
                target = torch.full((pred.size(0) // 2,), -1.0, device=pred.device)
                loss = loss_fn(pred[0::2], pred[1::2], target)
                loss.backward()
                optimizer.step()
                total += target.numel() * loss.item()
            epochs_run += 1
            mean_loss = total / cfg.num_relabel
            if mean_loss < cfg.loss_threshold:
                break
            scheduler.step(mean_loss)
    model.eval()
    with torch.no_grad():
        out = _outputs(model, test_batches, cfg, where, device)
        ctl = _outputs(model, control_batches, cfg, where, device)
    t2 = hotelling_t2(out[0::2], out[1::2], cfg.ridge, cfg.statistic)
    t2_rel = hotelling_t2(ctl[0::2], ctl[1::2], cfg.ridge, cfg.statistic)
    candidate = t2 > cfg.threshold and not math.isclose(t2, t2_rel, rel_tol=1e-5, abs_tol=cfg.compare_atol)
    reliable = t2_rel < cfg.threshold
    verdict = PairVerdict(pair.name, pair.category, candidate and reliable, reliable, seed, t2,
                          t2_rel, candidate, epochs_run, mean_loss)
    return verdict, type(model).__name__


def separates(model_fn: Callable[[int], nn.Module], pairs: Sequence[Any], protocol: str = "brec",
              seeds: Sequence[int] = (0,), *, config: Optional[BRECConfig] = None,
              transform: Optional[Callable] = None, node_attr: Optional[str] = None,
              device: Union[str, torch.device] = "cpu", progress: bool = True,
              method: Optional[str] = None,
              relabelings: Optional[Mapping[str, StoredRelabelings]] = None) -> SeparationReport:
    """Run BREC's reliable paired comparison (module docstring) on ``pairs``.

    Args:
        model_fn: ``seed -> torch.nn.Module``; a fresh model is built per pair
            and seed (after ``torch.manual_seed(seed)``). It maps a PyG
            ``Batch`` to ``[num_graphs, config.output_dim]``.
        pairs: :class:`GraphPair` objects or ``(graph, graph)`` tuples of
            networkx graphs.
        protocol: only ``"brec"``.
        seeds: one full run per seed; a pair counts as separated when every
            seed separates it reliably.
        config: protocol hyper-parameters (BREC's by default).
        transform: applied to every relabeled ``Data`` (e.g. positional
            encodings), so it sees each relabeling.
        node_attr: networkx node attribute to use as ``x``; default ones
            ``[n, 1]``.
        device: where the model runs.
        progress: show a tqdm bar.
        method: report title (default: ``"brec:<model class>"``).
        relabelings: pair name -> :class:`StoredRelabelings` to use instead
            of drawn relabelings (BREC's own:
            :func:`~graphequi.expressivity.load_brec_relabelings`); it must
            cover every pair. ``config.num_relabel`` must match them.

    Deterministic for fixed seeds (relabelings use a generator seeded by
    seed and pair index); the caller's global RNG state is restored.
    """
    if protocol != "brec":
        raise ValueError(f"unknown protocol {protocol!r}; only 'brec' is implemented")
    cfg = config or BRECConfig()
    pair_list = _as_pairs(pairs)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    verdicts = []
    title = method
    with torch.random.fork_rng(devices=[]):
        bar = tqdm(total=len(pair_list) * len(seeds), desc="BREC pairs", disable=not progress)
        try:
            for seed in seeds:
                for index, pair in enumerate(pair_list):
                    verdict, model_name = _run_pair(model_fn, pair, index, seed, cfg, transform,
                                                    node_attr, device, stored_for(relabelings, pair))
                    verdicts.append(verdict)
                    title = title or f"brec:{model_name}"
                    bar.update(1)
                    bar.set_postfix(separated=sum(v.separated for v in verdicts))
        finally:
            bar.close()
    return SeparationReport(title, tuple(verdicts), _category_order(pair_list))


def oracle_separation(pairs: Sequence[Any], k: int = 1, *, node_attr: Optional[str] = None,
                      progress: bool = False) -> SeparationReport:
    """Exact verdicts of ``k``-WL (1 = color refinement, 2 = folklore 2-WL,
    i.e. 3-WL) on ``pairs``, counted per category.

    On BREC's 400 pairs (:func:`~graphequi.expressivity.load_brec`) 3-WL is
    published to separate 270.
    """
    pair_list = _as_pairs(pairs)
    verdicts = []
    for pair in tqdm(pair_list, desc=f"{k}-WL oracle", disable=not progress):
        separated = not wl_equivalent(pair.first, pair.second, k=k, node_attr=node_attr)
        verdicts.append(PairVerdict(pair.name, pair.category, separated))
    name = "1-WL" if k == 1 else "2-FWL (3-WL)"
    return SeparationReport(name, tuple(verdicts), _category_order(pair_list))

r"""What the trainer trains on: splits, the loss, the metric, and input specs.

:func:`load_task` turns a :class:`~graphequi.train.config.TrainConfig` into a
:class:`Task`: three in-memory lists of PyG ``Data`` (with polynomial features
already attached when the model needs them), the loss and metric of the
dataset, and what the model's input encoders need (atom/bond vocabularies or
feature widths).

Dataset names:

* ``synthetic-count`` -- built in, no files: random graphs (seeded) with exact
  triangle and 4-cycle counts (``--target triangle|c4``), split 60/20/20.
* everything :func:`graphequi.datasets.get_dataset` accepts: ``zinc`` (L1
  loss, MAE, raw target), ``ogbg-mol*`` (scored with
  ``ogb.graphproppred.Evaluator``), ``count-<target>`` (or ``count`` with
  ``--target``; standardized target, MAE and normalized MAE), TU names such
  as ``MUTAG`` (``--fold``, accuracy).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import dense_to_sparse

from graphequi._io import atomic_write
from graphequi.datasets.metrics import METRICS
from graphequi.poly import triangle_count
from graphequi.transforms import validate_graph
from graphequi.train.config import TrainConfig
from graphequi.train.models import MODELS, get_model

__all__ = ["Task", "load_task", "check_dataset_name", "registry_name", "synthetic_count_graphs",
           "SYNTHETIC_TARGETS", "POLY_LEVELS"]

#: model name -> the polynomial feature levels it reads (a column of :data:`graphequi.train.models.MODELS`)
POLY_LEVELS: Dict[str, tuple] = {name: model.poly_levels for name, model in MODELS.items()}

SYNTHETIC_TARGETS = ("triangle", "c4")


@dataclass
class Task:
    """A dataset ready for training, with how to score it.

    ``kind`` is ``'regression'``, ``'binary'`` (possibly multi-task, NaN =
    unlabeled) or ``'multiclass'``. For regression with ``standardize`` the
    model fits ``(y - y_mean) / y_std`` and predictions are mapped back before
    scoring; ``target_std`` (std of the target over all splits) gives the
    normalized MAE reported for counting tasks.
    """

    name: str
    train: list
    val: list
    test: list
    kind: str
    num_outputs: int
    metric: str
    loss: str
    result_name: str
    node_vocab: Optional[Sequence[int]] = None
    edge_vocab: Optional[Sequence[int]] = None
    node_in_channels: Optional[int] = None
    edge_in_channels: Optional[int] = None
    y_mean: float = 0.0
    y_std: float = 1.0
    target_std: Optional[float] = None
    ogb_name: Optional[str] = None
    extra_metrics: tuple = ()

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    def sizes(self) -> tuple:
        return len(self.train), len(self.val), len(self.test)


# ---------------------------------------------------------------- synthetic


def _count_targets(adj: np.ndarray) -> np.ndarray:
    """Exact triangle and 4-cycle counts of a simple undirected graph.

    ``tr(A^3) = 6 T`` and ``tr(A^4) = 8 C_4 + 2 sum_i d_i^2 - sum_i d_i``
    (closed 4-walks that are not 4-cycles backtrack along one or two edges).
    """
    a = adj.astype(np.int64)
    a2 = a @ a
    deg = a.sum(1)
    triangles = round(float(triangle_count(torch.as_tensor(a, dtype=torch.float64))))
    c4 = (np.trace(a2 @ a2) - 2 * (deg ** 2).sum() + deg.sum()) // 8
    return np.array([triangles, c4], dtype=np.float64)


def synthetic_count_graphs(num_graphs: int = 240, seed: int = 0, min_nodes: int = 6,
                           max_nodes: int = 14) -> List[Data]:
    """Random Erdos-Renyi graphs with exact substructure counts, fully determined by ``seed``.

    Each graph has ``n`` uniform in ``[min_nodes, max_nodes]`` and edge
    probability uniform in ``[0.2, 0.5]``; ``y`` is ``[1, 2]``: the number of
    triangles and of 4-cycles. No node or edge features.

    Example:
        >>> g = synthetic_count_graphs(3, seed=1)[0]
        >>> g.y.shape, g.edge_index.shape[0]
        (torch.Size([1, 2]), 2)
    """
    if num_graphs < 1:
        raise ValueError(f"num_graphs must be >= 1, got {num_graphs}")
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        p = rng.uniform(0.2, 0.5)
        upper = np.triu(rng.random((n, n)) < p, k=1)
        adj = (upper | upper.T).astype(np.int64)
        edge_index, _ = dense_to_sparse(torch.from_numpy(adj))
        graphs.append(Data(edge_index=edge_index, num_nodes=n,
                           y=torch.from_numpy(_count_targets(adj)).float().view(1, -1)))
    return graphs


def _synthetic(cfg: TrainConfig) -> Task:
    target = cfg.target or "triangle"
    if target not in SYNTHETIC_TARGETS:
        raise ValueError(f"synthetic-count targets are {SYNTHETIC_TARGETS}, got {target!r}")
    col = SYNTHETIC_TARGETS.index(target)
    graphs = synthetic_count_graphs(240, seed=12345)
    for g in graphs:
        g.y = g.y[:, col:col + 1]
    train, val, test = graphs[:144], graphs[144:192], graphs[192:]
    return _regression_task(f"synthetic-count/{target}", train, val, test, loss="l1",
                            standardize=True, result_name=f"synthetic-count ({target})")


# ---------------------------------------------------------------- real datasets


def _regression_task(name, train, val, test, *, loss, standardize, result_name, metric="mae",
                     **kw) -> Task:
    ys = torch.cat([g.y.view(-1, g.y.size(-1) if g.y.dim() > 1 else 1) for g in train]).double()
    all_y = torch.cat([g.y.view(-1) for g in list(train) + list(val) + list(test)]).double()
    y_mean, y_std = (float(ys.mean()), float(ys.std())) if standardize else (0.0, 1.0)
    if not math.isfinite(y_std) or y_std == 0:
        y_std = 1.0
    return Task(name, list(train), list(val), list(test), kind="regression",
                num_outputs=ys.size(-1), metric=metric, loss=loss, result_name=result_name,
                y_mean=y_mean, y_std=y_std, target_std=float(all_y.std()),
                extra_metrics=("nmae",) if standardize and metric == "mae" else (), **kw)


def _column_vocab(graphs: Sequence[Data], key: str) -> Optional[tuple]:
    """Type counts per integer column of ``graph[key]`` over ``graphs`` (max id + 1)."""
    values = [g[key] for g in graphs if getattr(g, key, None) is not None and g[key].numel()]
    if not values:
        return None
    stacked = torch.cat([v.view(v.size(0), -1) for v in values])
    return tuple(int(m) + 1 for m in stacked.max(dim=0).values)


def _input_spec(name: str, graphs: Sequence[Data]) -> dict:
    """What the model's encoders need: vocabularies of integer features, widths of real ones."""
    if name.startswith("ogbg-"):
        from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
        return dict(node_vocab=tuple(get_atom_feature_dims()), edge_vocab=tuple(get_bond_feature_dims()))
    if name == "zinc":
        return dict(node_vocab=(28,), edge_vocab=(4,))  # 28 atom types, bond types 1-3
    spec = {}
    for key, prefix in (("x", "node"), ("edge_attr", "edge")):
        sample = next((g[key] for g in graphs if getattr(g, key, None) is not None), None)
        if sample is None:
            continue
        if sample.is_floating_point():
            spec[f"{prefix}_in_channels"] = 1 if sample.dim() == 1 else int(sample.size(-1))
        else:
            spec[f"{prefix}_vocab"] = _column_vocab(graphs, key)
    return spec


def _from_registry(cfg: TrainConfig) -> Task:
    """A dataset of :func:`graphequi.datasets.get_dataset`."""
    from graphequi.datasets import get_dataset
    splits = get_dataset(registry_name(cfg.dataset, cfg.target), cfg.root, fold=cfg.fold)
    train, val, test = (list(part) for part in (splits.train, splits.val, splits.test))
    if cfg.subset is not None:  # cut before anything heavier happens to the graphs
        train, val, test = (_subset(part, cfg.subset) for part in (train, val, test))
    spec = _input_spec(splits.name, train + val + test)
    ogb_name = splits.name if splits.name.startswith("ogbg-") else None
    if splits.task_type == "regression":
        loss = "mse" if splits.metric == "rmse" else "l1"
        standardize = splits.name != "zinc"  # ZINC is trained on the raw target, as in the literature
        task = _regression_task(splits.name, train, val, test, loss=loss, standardize=standardize,
                                result_name=splits.result_name, metric=splits.metric, ogb_name=ogb_name,
                                **spec)
        if "target_std" in splits.extra:
            task.target_std = float(splits.extra["target_std"])
        return task
    kind = "binary" if splits.task_type.startswith("binary") else "multiclass"
    return Task(splits.name, train, val, test, kind=kind, num_outputs=int(splits.num_tasks),
                metric=splits.metric, loss="bce" if kind == "binary" else "ce",
                result_name=splits.result_name, ogb_name=ogb_name, **spec)


_BUILT_IN: Dict[str, Callable[[TrainConfig], Task]] = {"synthetic-count": _synthetic}


def registry_name(dataset: str, target: Optional[str] = None) -> str:
    """The :func:`graphequi.datasets.get_dataset` name of a config's
    ``dataset`` (``count`` with a ``target`` is ``count-<target>``)."""
    if dataset.lower() == "count" and not target:
        raise ValueError("dataset 'count' needs a target (--target triangle, 4cycle, ...)")
    if dataset.lower().startswith("count") and target:
        return f"count-{target}"
    return dataset


def check_dataset_name(dataset: str, target: Optional[str] = None) -> None:
    """Raise the :class:`ValueError` of :func:`graphequi.datasets.canonical_dataset_name`
    for a dataset the trainer cannot load (one of its own, such as
    ``synthetic-count``, passes), before anything is read."""
    if not isinstance(dataset, str):
        raise ValueError(f"dataset must be a name, got {type(dataset).__name__}")
    if dataset.lower() in _BUILT_IN or (dataset.lower() == "count" and not target):
        return  # a config file may leave the counting target to the command line
    from graphequi.datasets import canonical_dataset_name
    canonical_dataset_name(registry_name(dataset, target))


def _loader_for(name: str) -> Callable[[TrainConfig], Task]:
    return _BUILT_IN.get(name.lower(), _from_registry)


# ---------------------------------------------------------------- polynomial features


def _feature_cache_key(task: Task, levels: Sequence[str], polys: str) -> str:
    """Names the cached features by everything they depend on: the graphs
    (dataset, split sizes, a fingerprint of their edges) and the transforms
    (their ``repr`` holds the set, level and normalization)."""
    from graphequi.transforms import PolynomialFeatures
    fingerprint = hashlib.sha1()
    for split in (task.train, task.val, task.test):
        for g in split:
            fingerprint.update(g.edge_index.numpy().tobytes())
    text = "|".join([task.name, str(task.sizes()), fingerprint.hexdigest()]
                    + [repr(PolynomialFeatures(polys=polys, level=level)) for level in levels])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def attach_polynomial_features(graphs: List[Data], levels: Sequence[str], polys: str,
                               progress: bool = False) -> List[Data]:
    """Apply ``PolynomialFeatures(polys, level=...)`` for each level to every graph."""
    if not levels:
        return graphs
    from graphequi.transforms import PolynomialFeatures
    transforms = [PolynomialFeatures(polys=polys, level=level) for level in levels]
    out = list(graphs)
    for t in transforms:
        out = t.apply_to_dataset(out, progress=progress)
    return out


def _subset(graphs: list, size: int) -> list:
    """A fixed random subset (seed 0, kept in dataset order) of ``size`` graphs: the first
    graphs of a split can be unrepresentative (e.g. no positive label at all)."""
    if len(graphs) <= size:
        return list(graphs)
    keep = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(0))[:size]
    return [graphs[i] for i in sorted(keep.tolist())]


def load_task(cfg: TrainConfig, *, cache_dir: Optional[Path] = None) -> Task:
    """Load the dataset of ``cfg``, cut it to ``cfg.subset``, attach the
    polynomial features ``cfg.model`` needs (cached under ``cache_dir``) and
    validate every graph (:func:`graphequi.transforms.validate_graph`)."""
    model = get_model(cfg.model)
    levels = model.poly_levels
    task = _loader_for(cfg.dataset)(cfg)
    if cfg.subset is not None:
        task.train, task.val, task.test = (_subset(s, cfg.subset) for s in (task.train, task.val, task.test))
    if min(task.sizes()) == 0:
        raise ValueError(f"{cfg.dataset}: a split is empty (sizes {task.sizes()})")
    if levels:
        cache = None
        if cache_dir is not None:
            cache = Path(cache_dir) / f"features-{_feature_cache_key(task, levels, cfg.polys)}.pt"
        if cache is not None and cache.is_file():
            task.train, task.val, task.test = torch.load(cache, weights_only=False)
        else:
            task.train, task.val, task.test = (attach_polynomial_features(s, levels, cfg.polys, cfg.progress)
                                               for s in (task.train, task.val, task.test))
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                splits = (task.train, task.val, task.test)
                atomic_write(cache, lambda tmp: torch.save(splits, tmp))
    if model.transform is not None:
        transform = model.transform(dict(cfg.model_options))
        task.train, task.val, task.test = ([transform(g) for g in s] for s in (task.train, task.val, task.test))
    # the one place where a run's graphs are checked (index ranges, empty graphs, NaN):
    # the models' forward passes check shapes only
    for split, graphs in zip(("train", "val", "test"), (task.train, task.val, task.test)):
        for i, graph in enumerate(graphs):
            try:
                validate_graph(graph)
            except (ValueError, IndexError, TypeError) as err:
                raise type(err)(f"{cfg.dataset} {split} graph {i}: {err}") from err
    return task

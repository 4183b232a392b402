r"""Datasets with local roots: each is a PyG
:class:`~torch_geometric.data.InMemoryDataset` that copies read-only source
files (``$GRAPHEQUI_SHARED_DATA`` or ``../shared/data``) into
``<root>/<name>/raw`` before processing, and downloads like PyG/OGB would when
no local files exist. A missing or corrupt file raises an error naming it
(:class:`FileNotFoundError` or :class:`DatasetFileError`).

* :class:`ZINC12k` -- ZINC-12k (offline: official val/test, stand-in train)
* :class:`OGBMolDataset` -- ``ogbg-molesol/-molfreesolv/-molbace/-molbbbp/-molhiv``
* :class:`GINTUDataset` -- MUTAG, PTC, PROTEINS, NCI1, IMDB-B, IMDB-M with 10 folds
* :class:`SubstructureCountingDataset` -- Chen et al.'s 5000 random graphs
* :class:`NBodyCharged` -- EGNN's charged 5-body benchmark, generated locally
* :class:`RMD17` -- revised MD17, official split 01, meV units

:func:`get_dataset` returns the train/val/test parts and how to score them,
for the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import Tensor

from ._cache import DatasetFileError, default_source
from .metrics import METRICS, score
from .nbody import NBODY_SPLITS, NBodyCharged
from .ogb_mol import OGB_MOL_NAMES, OGBMolDataset, evaluator_for, scaffold_split
from .substructure import (SUBSTRUCTURE_TARGETS, SubstructureCountingDataset, canonical_target,
                           substructure_counts)
from .rmd17 import KCAL_PER_MOL_IN_MEV, RMD17, RMD17_MOLECULES
from .tu import GIN_TU_NAMES, GINTUDataset, canonical_tu_name
from .zinc import ZINC12k

__all__ = [
    "DatasetFileError",
    "default_source",
    "ZINC12k",
    "OGBMolDataset",
    "OGB_MOL_NAMES",
    "evaluator_for",
    "scaffold_split",
    "GINTUDataset",
    "GIN_TU_NAMES",
    "SubstructureCountingDataset",
    "SUBSTRUCTURE_TARGETS",
    "substructure_counts",
    "NBodyCharged",
    "NBODY_SPLITS",
    "RMD17",
    "RMD17_MOLECULES",
    "KCAL_PER_MOL_IN_MEV",
    "RMD17_RADIUS",
    "DatasetSplits",
    "canonical_dataset_name",
    "get_dataset",
    "dataset_names",
    "METRICS",
]

# the old name of the direction column of the metric table (graphequi.datasets.metrics)
_HIGHER_IS_BETTER = {name: m.higher_is_better for name, m in METRICS.items()}


@dataclass(frozen=True)
class DatasetSplits:
    """The three parts of a benchmark and how to score predictions on them.

    Attributes:
        name: canonical dataset name (``"zinc"``, ``"ogbg-molhiv"``, ...).
        train, val, test: PyG datasets (``val`` is the test fold for TU
            benchmarks, which have no validation set, as in GIN).
        task_type: ``"regression"``, ``"binary classification"`` or
            ``"multiclass classification"``.
        metric: a name of :data:`graphequi.datasets.metrics.METRICS`.
        num_tasks: outputs per graph (regression targets / binary tasks /
            classes for multiclass).
        result_name: the name results must be reported under.
    """

    name: str
    train: object
    val: object
    test: object
    task_type: str
    metric: str
    num_tasks: int
    result_name: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    def evaluate(self, y_true: Tensor, y_pred: Tensor) -> float:
        """Score predictions with :data:`graphequi.datasets.metrics.METRICS`;
        ``ogbg-*`` always through :class:`ogb.graphproppred.Evaluator`.

        Args:
            y_true: [N, num_tasks] (or [N] for multiclass labels).
            y_pred: [N, num_tasks] predictions (logits for classification).
        """
        y_true, y_pred = y_true.detach().cpu().numpy(), y_pred.detach().cpu().numpy()
        ogb_name = self.name if self.name.startswith("ogbg-") else None
        return score(self.metric, y_true, y_pred, ogb_name=ogb_name)


def dataset_names() -> tuple:
    """Every name :func:`get_dataset` accepts (canonical spellings)."""
    return (("zinc",) + OGB_MOL_NAMES + tuple(GIN_TU_NAMES)
            + tuple(f"count-{t}" for t in SUBSTRUCTURE_TARGETS)
            + tuple(f"rmd17-{m}" for m in RMD17_MOLECULES))


def canonical_dataset_name(name: str) -> str:
    """The canonical spelling (an entry of :func:`dataset_names`) of a name
    :func:`get_dataset` accepts, case-insensitive and with its aliases
    (``"ZINC-12k"``, ``"imdb-b"``, ``"substructure-c4"``, ...); raises a
    :class:`ValueError` that lists the names otherwise. Nothing is read from disk.

    Example:
        >>> canonical_dataset_name("IMDB-B"), canonical_dataset_name("substructure-c4")
        ('IMDBBINARY', 'count-4cycle')
    """
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key in ("zinc", "zinc-12k", "zinc12k", "zinc_subset"):
        return "zinc"
    if key in OGB_MOL_NAMES:
        return key
    tu_name = canonical_tu_name(key)
    if tu_name is not None:
        return tu_name
    if key.startswith("count-") or key.startswith("substructure-"):
        return "count-" + canonical_target(key.split("-", 1)[1])
    if key.startswith("rmd17-") and key.split("-", 1)[1] in RMD17_MOLECULES:
        return key
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(dataset_names())}")


#: radius graph of the ``rmd17-*`` entries of :func:`get_dataset`, in Å (PONITA's and NequIP's cutoff)
RMD17_RADIUS = 5.0


def get_dataset(name: str, root, source=None, *, fold: int = 0,
                transform: Optional[Callable] = None,
                pre_transform: Optional[Callable] = None,
                online: Optional[bool] = None, log: bool = True) -> DatasetSplits:
    """Build a benchmark by name (the trainer's entry point).

    Args:
        name: ``"zinc"``; an ``ogbg-mol*`` name; a TU name (``"MUTAG"``,
            ``"PTC"``, ``"PROTEINS"``, ``"NCI1"``, ``"IMDB-B"``, ``"IMDB-M"``);
            or ``"count-<target>"`` with target in ``triangle``,
            ``tailed_triangle``, ``4cycle``, ``star``, ``chordal_cycle``
            (graph-level counts); or ``"rmd17-<molecule>"`` (the energy in meV
            as a graph-level regression target, on a radius graph of
            :data:`RMD17_RADIUS` Å built on access; forces stay in
            ``data.force`` for force-trained models such as
            ``benchmarks/ponita_rmd17.py``). Case-insensitive.
        root: writable cache folder.
        source: read-only data folder (default ``$GRAPHEQUI_SHARED_DATA`` or
            ``../shared/data``).
        fold: TU fold, 0-9.
        transform, pre_transform: as in PyG (``pre_transform`` is part of the
            processed cache).
        online: force (``True``) or forbid (``False``) downloading.
    """
    key = canonical_dataset_name(name)
    common = dict(transform=transform, pre_transform=pre_transform, log=log)
    if key == "zinc":
        parts = [ZINC12k(root, split=s, source=source, online=online, **common)
                 for s in ("train", "val", "test")]
        return DatasetSplits("zinc", *parts, task_type="regression", metric="mae",
                             num_tasks=1, result_name=parts[0].result_name)
    if key in OGB_MOL_NAMES:
        dataset = OGBMolDataset(root, key, source=source, online=online, **common)
        split = dataset.get_idx_split()
        return DatasetSplits(key, dataset[split["train"]], dataset[split["valid"]],
                             dataset[split["test"]], task_type=dataset.task_type,
                             metric=dataset.eval_metric, num_tasks=dataset.num_tasks,
                             result_name=key + (" (rebuilt from MoleculeNet CSV, OGB scaffold split)"
                                                if dataset.from_csv else ""),
                             extra={"dataset": dataset, "split_idx": split})

    if key in GIN_TU_NAMES:
        tu_name = key
        dataset = GINTUDataset(root, tu_name, source=source, **common)
        train_idx, test_idx = dataset.fold_split(fold)
        test = dataset[test_idx]
        return DatasetSplits(tu_name, dataset[train_idx], test, test,
                             task_type="multiclass classification", metric="accuracy",
                             num_tasks=dataset.num_classes,
                             result_name=f"{tu_name} (GIN format, fold {fold} of 10)",
                             extra={"dataset": dataset, "fold": fold})
    if key.startswith("count-"):
        target = key.split("-", 1)[1]
        parts = [SubstructureCountingDataset(root, split=s, target=target, source=source, **common)
                 for s in ("train", "val", "test")]
        return DatasetSplits(f"count-{target}", *parts, task_type="regression", metric="mae",
                             num_tasks=1,
                             result_name=f"substructure counting ({target}, graph-level, Chen et al. 2020 split)",
                             extra={"target_std": parts[0].target_std})
    if key.startswith("rmd17-"):
        from graphequi.transforms import RadiusGraph
        from torch_geometric.transforms import Compose

        graph = RadiusGraph(RMD17_RADIUS, max_num_neighbors=None)
        molecular = dict(common, transform=graph if transform is None else Compose([graph, transform]))
        molecule = key.split("-", 1)[1]
        parts = [RMD17(root, molecule, s, source=source, **molecular) for s in ("train", "val", "test")]
        return DatasetSplits(key, *parts, task_type="regression", metric="mae", num_tasks=1,
                             result_name=f"rMD17 {molecule} energy (meV), split 01, radius {RMD17_RADIUS} A")
    raise AssertionError(f"canonical_dataset_name returned {key!r}, which get_dataset does not build")

r"""OGB molecular graph property prediction (``ogbg-mol*``) with local roots.

* ``ogbg-molesol``, ``ogbg-molfreesolv``, ``ogbg-molbace``, ``ogbg-molbbbp``:
  the complete official OGB directories (``<source>/ogbg_mol*``) are copied
  into ``<root>/<name>/raw/`` and read by
  :class:`ogb.graphproppred.PygGraphPropPredDataset` (offline: no RDKit needed).
* ``ogbg-molhiv``: rebuilt from the MoleculeNet CSV
  (``<source>/moleculenet_hiv/HIV_with_index.csv``, the 41,127 molecules in OGB
  order) with OGB's featurization (:func:`ogb.utils.features.atom_to_feature_vector`
  and ``bond_to_feature_vector``, as in :func:`ogb.utils.smiles2graph`) and OGB's
  scaffold split rebuilt exactly (:func:`scaffold_split`: 32901/4113/4113).

Without local files every name falls back to OGB's own download.

**RDKit fallback.** Seven HIV SMILES (rows 137, 987, 12882, 18293, 30784,
30785, 35728: hypervalent Al, B, Ge) fail the valence check of current RDKit,
which OGB's older RDKit accepted. :func:`mol_from_smiles` then parses them with
``sanitize=False``, computes implicit valences leniently
(``UpdatePropertyCache(strict=False)``) and runs every sanitization step but
the valence check (``SANITIZE_ALL ^ SANITIZE_PROPERTIES``: rings, kekulization,
aromaticity, conjugation, hybridization), so that all nine atom and three bond
features are defined; their Murcko scaffolds use the same lenient valences.

**torch >= 2.6.** ``ogb`` 1.3.6 calls ``torch.load(path)`` on PyG pickles,
which the new ``weights_only=True`` default refuses. The loader runs inside
:func:`graphequi.datasets._cache.allow_pyg_pickles`, which allow-lists only
PyG's ``Data`` storage classes for the duration of the call (narrower than
``weights_only=False``; nothing global changes).

**Evaluation** always goes through :class:`ogb.graphproppred.Evaluator`
(:func:`evaluator_for`).
"""
from __future__ import annotations

import csv
import os.path as osp
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Data, InMemoryDataset
from tqdm import tqdm

from ._cache import (DatasetFileError, PathLike, allow_pyg_pickles, check_gzip,
                     copy_into_raw, require_files, resolve_source)

__all__ = ["OGBMolDataset", "OGB_MOL_NAMES", "evaluator_for", "scaffold_split",
           "murcko_scaffold", "mol_from_smiles", "mol_to_ogb_graph"]

#: Names served from complete OGB directories, and their source folders.
OGB_DIR_FOLDERS = {
    "ogbg-molesol": "ogbg_molesol",
    "ogbg-molfreesolv": "ogbg_molfreesolv",
    "ogbg-molbace": "ogbg_molbace",
    "ogbg-molbbbp": "ogbg_molbbbp",
}
HIV_NAME = "ogbg-molhiv"
HIV_FOLDER, HIV_CSV = "moleculenet_hiv", "HIV_with_index.csv"
OGB_MOL_NAMES = tuple(OGB_DIR_FOLDERS) + (HIV_NAME,)

# What PygGraphPropPredDataset reads from an OGB directory. RELEASE_v1.txt
# matters: without it ogb asks "Will you update the dataset now?" on stdin.
OGB_DIR_FILES = (
    "RELEASE_v1.txt", "mapping/mol.csv.gz",
    "raw/edge.csv.gz", "raw/edge-feat.csv.gz", "raw/node-feat.csv.gz",
    "raw/graph-label.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz",
    "split/scaffold/train.csv.gz", "split/scaffold/valid.csv.gz", "split/scaffold/test.csv.gz",
)


def evaluator_for(name: str):
    """The official :class:`ogb.graphproppred.Evaluator` of an ``ogbg-*`` dataset.

    Example:
        >>> import pytest; _ = pytest.importorskip("ogb")
        >>> evaluator_for("ogbg-molhiv").eval_metric
        'rocauc'
    """
    from ogb.graphproppred import Evaluator
    _check_name(name)
    return Evaluator(name)


def _check_name(name: str) -> None:
    if name not in OGB_MOL_NAMES:
        raise ValueError(f"unknown OGB molecular dataset {name!r}; available: {', '.join(OGB_MOL_NAMES)}")


# --------------------------------------------------------------------------- RDKit

def mol_from_smiles(smiles: str):
    """Parse a SMILES string with RDKit; if the valence check rejects it, parse
    it leniently (see module docstring). Returns ``(mol, lenient)``.

    Raises:
        ValueError: RDKit cannot parse the string even without sanitization.
    """
    from rdkit import Chem
    mol = Chem.MolFromSmiles(smiles)
    if mol is not None:
        return mol, False
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    mol.UpdatePropertyCache(strict=False)
    failed = Chem.SanitizeMol(
        mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES,
        catchErrors=True)
    if failed != Chem.SanitizeFlags.SANITIZE_NONE:
        raise ValueError(f"RDKit cannot sanitize SMILES {smiles!r} even leniently (step {failed})")
    return mol, True


def murcko_scaffold(mol, lenient: bool = False) -> str:
    """Murcko scaffold SMILES with chirality, as OGB's split used
    (``MurckoScaffoldSmiles(mol=mol, includeChirality=True)``); ``lenient``
    skips the strict valence check for molecules from the fallback parser."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles
    if not lenient:
        return MurckoScaffoldSmiles(mol=mol, includeChirality=True)
    scaffold = Chem.MurckoDecompose(mol)  # what GetScaffoldForMol does, minus the strict check
    scaffold.ClearComputedProps()
    scaffold.UpdatePropertyCache(strict=False)
    Chem.GetSymmSSSR(scaffold)
    return Chem.MolToSmiles(scaffold, isomericSmiles=True)


def mol_to_ogb_graph(mol) -> Data:
    """OGB's molecule graph (the body of :func:`ogb.utils.smiles2graph`, from
    an RDKit molecule): ``x`` [n, 9], ``edge_index`` [2, 2m] (each bond in both
    directions, consecutive), ``edge_attr`` [2m, 3], all ``long``."""
    from ogb.utils.features import atom_to_feature_vector, bond_to_feature_vector
    x = torch.tensor([atom_to_feature_vector(a) for a in mol.GetAtoms()], dtype=torch.long)
    pairs, feats = [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        f = bond_to_feature_vector(bond)
        pairs += [(i, j), (j, i)]
        feats += [f, f]
    edge_index = torch.tensor(pairs, dtype=torch.long).view(-1, 2).t().contiguous()
    edge_attr = torch.tensor(feats, dtype=torch.long).view(-1, 3)
    return Data(x=x.view(-1, 9), edge_index=edge_index, edge_attr=edge_attr, num_nodes=x.size(0))


def scaffold_split(scaffolds: Sequence[str], frac_train: float = 0.8,
                   frac_valid: float = 0.1) -> Dict[str, torch.Tensor]:
    """OGB's (deepchem's) deterministic scaffold split.

    Molecules are grouped by scaffold, each group sorted; groups are ordered by
    (size, first index), largest first (so among equal sizes, the group
    with the *latest* first index comes first); groups fill train up to
    ``frac_train * N``, then valid up to ``(frac_train + frac_valid) * N``,
    and the rest goes to test. A group never straddles two parts.

    Args:
        scaffolds: the scaffold of molecule ``i`` at position ``i``.

    Returns:
        ``{"train", "valid", "test"}`` -> sorted-by-group ``long`` index tensors.

    Example:
        >>> s = scaffold_split(["a", "a", "b", "c", "a", "b", "d", "e", "f", "g"])
        >>> {k: v.tolist() for k, v in s.items()}
        {'train': [0, 1, 4, 2, 5, 9, 8, 7], 'valid': [6], 'test': [3]}
    """
    groups: Dict[str, List[int]] = defaultdict(list)
    for i, scaffold in enumerate(scaffolds):
        groups[scaffold].append(i)
    ordered = sorted((sorted(g) for g in groups.values()), key=lambda g: (len(g), g[0]), reverse=True)
    n = len(scaffolds)
    train_cut, valid_cut = frac_train * n, (frac_train + frac_valid) * n
    parts: Dict[str, List[int]] = {"train": [], "valid": [], "test": []}
    for group in ordered:
        if len(parts["train"]) + len(group) <= train_cut:
            parts["train"] += group
        elif len(parts["train"]) + len(parts["valid"]) + len(group) <= valid_cut:
            parts["valid"] += group
        else:
            parts["test"] += group
    return {k: torch.tensor(v, dtype=torch.long) for k, v in parts.items()}


def _read_hiv_csv(path: Path) -> List[Tuple[str, int]]:
    rows = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"smiles", "HIV_active"} <= set(reader.fieldnames):
                raise DatasetFileError(path, f"header {reader.fieldnames} lacks smiles,HIV_active")
            for row in reader:
                label = int(row["HIV_active"])
                if label not in (0, 1) or not row["smiles"]:
                    raise ValueError(f"label {row['HIV_active']!r}, smiles {row['smiles']!r}")
                if "index" in row and int(row["index"]) != len(rows):
                    raise ValueError(f"index column says {row['index']}, expected {len(rows)}")
                rows.append((row["smiles"], label))
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, csv.Error) as e:
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(path, f"bad data row {len(rows) + 2} ({e})") from e
    if not rows:
        raise DatasetFileError(path, "no data rows")
    return rows


# --------------------------------------------------------------------------- dataset

class OGBMolDataset(InMemoryDataset):
    r"""An ``ogbg-mol*`` dataset in OGB's format (``x`` [n, 9], ``edge_attr``
    [2m, 3] ``long`` feature indices for :class:`ogb.graphproppred.mol_encoder.AtomEncoder`,
    ``y`` [1, num_tasks]: ``long`` for classification, ``float`` for regression).

    Args:
        root: writable folder; files go to ``<root>/<name>/{raw,processed}``.
        name: one of :data:`OGB_MOL_NAMES`.
        source: read-only data folder (default ``$GRAPHEQUI_SHARED_DATA`` or
            ``../shared/data``).
        online: ``True`` forces OGB's download, ``False`` forces local files
            (error if absent), ``None`` uses local files when their folder exists.
        transform, pre_transform, pre_filter, force_reload, log: as in
            :class:`~torch_geometric.data.InMemoryDataset`.

    Attributes:
        eval_metric, task_type, num_tasks: from OGB's dataset table.
    """

    def __init__(self, root: PathLike, name: str, source: Optional[PathLike] = None,
                 online: Optional[bool] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True) -> None:
        _check_name(name)
        self.name = name
        folder = HIV_FOLDER if name == HIV_NAME else OGB_DIR_FOLDERS[name]
        self.source_dir = resolve_source(source) / folder
        self.online = (not self.source_dir.is_dir()) if online is None else bool(online)
        self.from_csv = name == HIV_NAME and not self.online
        if not self.online:
            require_files(self.source_dir, self._source_files())
        meta = _ogb_meta(name)
        self.eval_metric: str = meta["eval metric"]
        self.task_type: str = meta["task type"]
        self.num_tasks: int = int(meta["num tasks"])
        super().__init__(str(Path(root) / name), transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        self.load(self.processed_paths[0])
        self._split = torch.load(self.processed_paths[1])

    # Layout -----------------------------------------------------------------
    @property
    def _ogb_dir_name(self) -> str:
        return "_".join(self.name.split("-"))  # what ogb calls its folder

    def _source_files(self) -> Tuple[str, ...]:
        return (HIV_CSV,) if self.from_csv else OGB_DIR_FILES

    @property
    def raw_file_names(self) -> List[str]:
        if self.from_csv:
            return [HIV_CSV]
        return [f"{self._ogb_dir_name}/{f}" for f in OGB_DIR_FILES]

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", "from_csv" if self.from_csv else "ogb")

    @property
    def processed_file_names(self) -> List[str]:
        return ["data.pt", "split.pt"]

    def download(self) -> None:
        if not self.online:
            dst = self.raw_dir if self.from_csv else osp.join(self.raw_dir, self._ogb_dir_name)
            copy_into_raw(self.source_dir, self._source_files(), dst)
        else:
            self._load_with_ogb()  # ogb downloads into raw/<ogb dir name>

    # Processing ---------------------------------------------------------------
    def process(self) -> None:
        graphs, split = self._process_csv() if self.from_csv else self._process_ogb_dir()
        if self.pre_filter is not None:
            keep = [self.pre_filter(g) for g in graphs]
            if not all(keep):
                raise ValueError("pre_filter would drop graphs and invalidate the official split; "
                                 "filter the split indices instead")
        if self.pre_transform is not None:
            graphs = [self.pre_transform(g) for g in graphs]
        self.save(graphs, self.processed_paths[0])
        torch.save(split, self.processed_paths[1])

    def _load_with_ogb(self):
        from ogb.graphproppred import PygGraphPropPredDataset
        with allow_pyg_pickles():
            return PygGraphPropPredDataset(self.name, root=self.raw_dir)

    def _process_ogb_dir(self):
        ogb_root = Path(self.raw_dir) / self._ogb_dir_name
        for name in OGB_DIR_FILES:
            if name.endswith(".gz"):
                check_gzip(ogb_root / name)
        try:
            dataset = self._load_with_ogb()
            graphs = list(dataset)
            split = dataset.get_idx_split()
        except DatasetFileError:
            raise
        except Exception as e:  # pandas/numpy errors on inconsistent files
            raise DatasetFileError(ogb_root, f"ogb could not read the directory ({type(e).__name__}: {e})") from e
        n = len(graphs)
        for part, index in split.items():
            index = torch.as_tensor(index)
            if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
                raise DatasetFileError(ogb_root / f"split/scaffold/{part}.csv.gz",
                                       f"index outside the {n} graphs")
        return graphs, {k: torch.as_tensor(v, dtype=torch.long) for k, v in split.items()}

    def _process_csv(self):
        from rdkit import RDLogger
        RDLogger.DisableLog("rdApp.*")  # the 7 rejected SMILES are handled, not noise
        path = Path(self.raw_dir) / HIV_CSV
        rows = _read_hiv_csv(path)
        graphs, scaffolds = [], []
        for i, (smiles, label) in enumerate(tqdm(rows, desc=f"{self.name} from SMILES",
                                                 disable=not self.log)):
            try:
                mol, lenient = mol_from_smiles(smiles)
                scaffolds.append(murcko_scaffold(mol, lenient))
            except Exception as e:
                raise DatasetFileError(path, f"row {i + 2} (molecule {i}): {e}") from e
            data = mol_to_ogb_graph(mol)
            data.y = torch.tensor([[label]], dtype=torch.long)
            graphs.append(data)
        return graphs, scaffold_split(scaffolds)

    # API ----------------------------------------------------------------------
    def get_idx_split(self) -> Dict[str, torch.Tensor]:
        """OGB's split: ``{"train", "valid", "test"}`` -> ``long`` index tensors."""
        return {k: v.clone() for k, v in self._split.items()}

    def evaluator(self):
        return evaluator_for(self.name)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)}, name={self.name!r})"


def _ogb_meta(name: str) -> Dict[str, str]:
    import pandas as pd
    import ogb.graphproppred
    master = pd.read_csv(osp.join(osp.dirname(ogb.graphproppred.__file__), "master.csv"),
                         index_col=0, keep_default_na=False)
    return dict(master[name])

r"""ZINC-12k (the benchmarking-gnns "ZINC subset"), online or from local files.

Two modes, chosen by what is available:

* **online** (no local ``zinc12k`` folder): exactly
  :class:`torch_geometric.datasets.ZINC` with ``subset=True`` (10k/1k/1k
  graphs, downloaded into ``<root>/ZINC-12k/raw``).
* **offline** (``<source>/zinc12k`` exists): the *official* val and test
  graphs from PyG's processed ``val.pt``/``test.pt``, and a **stand-in
  training set** rebuilt with RDKit from rows 0-9999 of ``smiles_score.csv``
  (other ZINC-250k molecules: the official ``train.pt`` is not available
  offline). Molecules whose canonical SMILES is in the official val or test
  set (77 of them) are dropped, leaving 9923 training graphs. Results on it
  must be reported as :attr:`ZINC12k.result_name` =
  ``"ZINC-12k, stand-in train, official val/test"``.

The stand-in graphs follow the construction of the official ones: the
molecule is kekulized, each atom gets one of 28 types (``atom_dict.pickle``,
keys such as ``"C"``, ``"C H1"``, ``"N H1 +"``: the element, the number of
hydrogens written in its kekulé SMILES bracket, and the charge sign) and each
bond its order 1-3. The target is the normalized penalized logP

.. math::
    y = \frac{\log P - 2.4571}{1.4343} + \frac{3.0526 - \mathrm{SA}}{0.8335}
        + \frac{0.0486 - c}{0.2860},\qquad
    c = \max\bigl(0,\ \max_{C \in \text{cycle basis}} |C| - 6\bigr),

with logP and SA from the CSV and the cycle basis of :func:`networkx.cycle_basis`.
On the 1000 official test molecules (CSV rows 11000-11999) this reproduces
the official targets within 0.05 for at least 998 of them, and the atom types
and graph structure are isomorphic to the official graphs for all 1000 (the
kekulé assignment of single/double bonds in aromatic rings can differ from
the one the official files were made with, as kekulé structures are not
unique; the multiset of bond types is the same). Tests check all of this.
"""
from __future__ import annotations

import csv
import os.path as osp
import pickle
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import coalesce
from tqdm import tqdm

from ._cache import (DatasetFileError, PathLike, copy_into_raw, require_files,
                     resolve_source, torch_load_pyg)

__all__ = ["ZINC12k", "zinc_target", "zinc_cycle_penalty", "zinc_atom_key",
           "zinc_smiles_to_data", "load_zinc_atom_dict"]

# Normalization constants of the benchmarking-gnns / JT-VAE penalized logP.
LOGP_MEAN, LOGP_STD = 2.4570953396190123, 1.434324401111988
SA_MEAN, SA_STD = 3.0525811293166134, 0.8335207024513095
CYCLE_MEAN, CYCLE_STD = 0.0485696876403053, 0.2860212110245455

_OFFICIAL = "pyg_processed_subset_graphpebench"
OFFLINE_FILES = (
    f"{_OFFICIAL}/val.pt", f"{_OFFICIAL}/test.pt", f"{_OFFICIAL}/atom_dict.pickle",
    f"{_OFFICIAL}/val.index", f"{_OFFICIAL}/test.index",
    "smiles_score.csv", "jtnn_zinc/valid.txt", "jtnn_zinc/test.txt",
)
NUM_STAND_IN_ROWS = 10000  # CSV rows 0-9999: ZINC-250k molecules outside the official subset

SPLITS = ("train", "val", "test")


def zinc_cycle_penalty(mol) -> int:
    """``max(0, longest cycle of networkx.cycle_basis - 6)`` of an RDKit molecule."""
    import networkx as nx
    graph = nx.Graph()
    graph.add_nodes_from(range(mol.GetNumAtoms()))
    graph.add_edges_from((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds())
    longest = max((len(c) for c in nx.cycle_basis(graph)), default=0)
    return max(0, longest - 6)


def zinc_target(logp: float, sa: float, cycle_penalty: int) -> float:
    """The normalized penalized logP target of ZINC (see module docstring)."""
    return ((logp - LOGP_MEAN) / LOGP_STD + (SA_MEAN - sa) / SA_STD
            + (CYCLE_MEAN - cycle_penalty) / CYCLE_STD)


_BRACKET_ATOM = re.compile(
    r"\[(?P<iso>\d*)(?P<sym>[A-Z][a-z]?|[a-z][a-z]?)(?P<chiral>@*)"
    r"(?P<h>H\d*)?(?P<charge>[+-]\d*)?(?::\d+)?\]")


def zinc_atom_key(atom) -> str:
    """The ``atom_dict.pickle`` key of an atom of a kekulized RDKit molecule:
    its kekulé SMILES token without brackets and chirality, e.g. ``[C@@H]`` ->
    ``"C H1"``, ``[NH3+]`` -> ``"N H3 +"``, ``c`` never occurs."""
    token = atom.GetSmarts()
    if not token.startswith("["):
        return token
    match = _BRACKET_ATOM.fullmatch(token)
    if match is None:
        raise ValueError(f"cannot parse SMILES atom token {token!r}")
    key = match["sym"]
    if match["h"]:
        key += " H" + (match["h"][1:] or "1")
    if match["charge"]:
        key += " " + match["charge"]
    return key


def zinc_smiles_to_data(smiles: str, atom_dict: Dict[str, int]) -> tuple:
    """Build the ZINC graph of a SMILES string.

    Returns:
        ``(data, mol)``: ``data.x`` [n, 1] atom types, ``data.edge_index``
        [2, 2m] both directions sorted like PyG's ZINC, ``data.edge_attr``
        [2m] bond orders 1-3; ``mol`` is the kekulized RDKit molecule.
    """
    from rdkit import Chem
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    Chem.Kekulize(mol, clearAromaticFlags=True)
    keys = [zinc_atom_key(a) for a in mol.GetAtoms()]
    unknown = sorted({k for k in keys if k not in atom_dict})
    if unknown:
        raise ValueError(f"atom types {unknown} of {smiles!r} are not among the 28 ZINC types")
    x = torch.tensor([atom_dict[k] for k in keys], dtype=torch.long).view(-1, 1)
    rows, cols, orders = [], [], []
    for bond in mol.GetBonds():
        order = bond.GetBondTypeAsDouble()
        if order not in (1.0, 2.0, 3.0):
            raise ValueError(f"bond order {order} of {smiles!r} is not single/double/triple")
        u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        rows += [u, v]
        cols += [v, u]
        orders += [int(order)] * 2
    edge_index = torch.tensor([rows, cols], dtype=torch.long).view(2, -1)
    edge_attr = torch.tensor(orders, dtype=torch.long)
    edge_index, edge_attr = coalesce(edge_index, edge_attr, num_nodes=x.size(0))
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr), mol


class _PickledDictionary:
    """Stand-in for the ``Dictionary`` class the atom_dict pickle was written
    with (benchmarking-gnns' ``__main__.Dictionary``)."""


class _DictionaryUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if name == "Dictionary":
            return _PickledDictionary
        if module in ("builtins", "collections") and name in ("dict", "list", "OrderedDict"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def load_zinc_atom_dict(path: PathLike) -> Dict[str, int]:
    """``word2idx`` of benchmarking-gnns' ``atom_dict.pickle`` (28 atom types)."""
    try:
        with open(path, "rb") as f:
            word2idx = _DictionaryUnpickler(f).load().word2idx
    except Exception as e:
        raise DatasetFileError(path, f"not a benchmarking-gnns atom dictionary ({e})") from e
    if not (isinstance(word2idx, dict) and sorted(word2idx.values()) == list(range(len(word2idx)))):
        raise DatasetFileError(path, "word2idx is not a 0..n-1 index")
    return word2idx


def _read_index(path: Path) -> List[int]:
    try:
        return [int(t) for t in path.read_text().replace("\n", ",").split(",") if t.strip()]
    except ValueError as e:
        raise DatasetFileError(path, f"not a comma-separated index list ({e})") from e


def _split_old_pyg(path: Path) -> List[Data]:
    """The graphs of an old PyG ``(data, slices)`` ZINC file (local edge indices)."""
    loaded = torch_load_pyg(path, legacy=True)  # written by PyG 1.x
    try:
        data, slices = loaded
        graphs = []
        for i in range(len(slices["x"]) - 1):
            xs, es = slices["x"], slices["edge_index"]
            graphs.append(Data(
                x=data.x[xs[i]:xs[i + 1]].view(-1, 1).long(),
                edge_index=data.edge_index[:, es[i]:es[i + 1]].long(),
                edge_attr=data.edge_attr[slices["edge_attr"][i]:slices["edge_attr"][i + 1]].long(),
                y=data.y[slices["y"][i]:slices["y"][i + 1]].float().view(1)))
    except Exception as e:
        raise DatasetFileError(path, f"not a PyG ZINC (data, slices) pair ({e})") from e
    for i, g in enumerate(graphs):
        if g.num_nodes == 0 or (g.edge_index.numel() and int(g.edge_index.max()) >= g.num_nodes):
            raise DatasetFileError(path, f"graph {i} has an edge index outside its {g.num_nodes} nodes")
    return graphs


def _read_smiles_csv(path: Path, num_rows: int) -> List[dict]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"SMILES", "SA", "logp"} <= set(reader.fieldnames):
                raise DatasetFileError(path, f"header {reader.fieldnames} lacks SMILES,SA,logp")
            rows = []
            for row in reader:
                if len(rows) == num_rows:
                    break
                rows.append({"smiles": row["SMILES"], "sa": float(row["SA"]),
                             "logp": float(row["logp"])})
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as e:
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(path, f"unreadable row {len(rows) + 2} ({e})") from e
    if len(rows) < num_rows:
        raise DatasetFileError(path, f"has {len(rows)} data rows, need {num_rows}")
    return rows


class ZINC12k(InMemoryDataset):
    r"""ZINC-12k graph regression (penalized logP), one split per instance.

    Args:
        root: writable folder; files go to ``<root>/ZINC-12k/{raw,processed}``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        source: read-only data folder holding ``zinc12k/`` (default
            ``$GRAPHEQUI_SHARED_DATA`` or ``../shared/data``).
        online: ``True`` forces PyG's download, ``False`` forces the local
            files (error if absent), ``None`` uses local files when
            ``<source>/zinc12k`` exists.
        transform, pre_transform, pre_filter, force_reload: as in
            :class:`~torch_geometric.data.InMemoryDataset`.

    Each graph: ``x`` [n, 1] atom type in 0..27, ``edge_index`` [2, 2m],
    ``edge_attr`` [2m] bond type in 1..3, ``y`` [1].

    Attributes:
        result_name: the name under which results must be reported.
    """

    name = "ZINC-12k"
    #: How results on the offline data (stand-in training set) must be named.
    STAND_IN_RESULT_NAME = "ZINC-12k, stand-in train, official val/test"
    result_name = STAND_IN_RESULT_NAME
    #: CSV rows the stand-in training set is built from (0..num_stand_in_rows-1).
    num_stand_in_rows = NUM_STAND_IN_ROWS

    def __init__(self, root: PathLike, split: str = "train", source: Optional[PathLike] = None,
                 online: Optional[bool] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.source_dir = resolve_source(source) / "zinc12k"
        self.online = (not self.source_dir.is_dir()) if online is None else bool(online)
        if not self.online:
            require_files(self.source_dir, OFFLINE_FILES)
        self.result_name = "ZINC-12k" if self.online else self.STAND_IN_RESULT_NAME
        super().__init__(str(Path(root) / self.name), transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        self.load(osp.join(self.processed_dir, f"{split}.pt"))

    @property
    def raw_file_names(self) -> List[str]:
        if self.online:
            return [f"pyg/subset/processed/{s}.pt" for s in SPLITS]
        return list(OFFLINE_FILES)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", "online" if self.online else "offline")

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{s}.pt" for s in SPLITS]

    def download(self) -> None:
        if self.online:
            from torch_geometric.datasets import ZINC
            for split in SPLITS:  # downloads once, processes all three splits
                ZINC(osp.join(self.raw_dir, "pyg"), subset=True, split=split)
        else:
            copy_into_raw(self.source_dir, OFFLINE_FILES, self.raw_dir)

    def process(self) -> None:
        splits = self._process_online() if self.online else self._process_offline()
        for split, graphs in splits.items():
            if self.pre_filter is not None:
                graphs = [g for g in graphs if self.pre_filter(g)]
            if self.pre_transform is not None:
                graphs = [self.pre_transform(g) for g in graphs]
            self.save(graphs, osp.join(self.processed_dir, f"{split}.pt"))

    def _process_online(self) -> Dict[str, List[Data]]:
        from torch_geometric.datasets import ZINC
        return {s: list(ZINC(osp.join(self.raw_dir, "pyg"), subset=True, split=s)) for s in SPLITS}

    def _process_offline(self) -> Dict[str, List[Data]]:
        from rdkit import Chem, RDLogger
        RDLogger.DisableLog("rdApp.*")
        raw = Path(self.raw_dir)
        official = raw / _OFFICIAL
        atom_dict = load_zinc_atom_dict(official / "atom_dict.pickle")
        val = _split_old_pyg(official / "val.pt")
        test = _split_old_pyg(official / "test.pt")

        # Official val/test SMILES: JT-VAE valid.txt / test.txt at benchmarking-gnns' indices.
        official_smiles = []
        for graphs, index_file, smiles_file in ((val, "val.index", "valid.txt"),
                                                 (test, "test.index", "test.txt")):
            index = _read_index(official / index_file)
            pool = (raw / "jtnn_zinc" / smiles_file).read_text().split()
            if len(index) != len(graphs) or max(index, default=-1) >= len(pool):
                raise DatasetFileError(official / index_file,
                                       f"{len(index)} indices for {len(graphs)} graphs and "
                                       f"{len(pool)} SMILES in {smiles_file}")
            for i, (g, j) in enumerate(zip(graphs, index)):
                mol = Chem.MolFromSmiles(pool[j])
                if mol is None or mol.GetNumAtoms() != g.num_nodes:
                    raise DatasetFileError(raw / "jtnn_zinc" / smiles_file,
                                           f"line {j + 1} does not match graph {i} of {index_file}")
                official_smiles.append(Chem.MolToSmiles(mol))
        official_smiles = set(official_smiles)

        csv_path = raw / "smiles_score.csv"
        train = []
        for row_id, row in enumerate(tqdm(_read_smiles_csv(csv_path, self.num_stand_in_rows),
                                          desc="ZINC-12k stand-in train", disable=not self.log)):
            try:
                data, mol = zinc_smiles_to_data(row["smiles"], atom_dict)
            except ValueError as e:
                raise DatasetFileError(csv_path, f"row {row_id + 2}: {e}") from e
            if Chem.MolToSmiles(Chem.MolFromSmiles(row["smiles"])) in official_smiles:
                continue
            data.y = torch.tensor([zinc_target(row["logp"], row["sa"], zinc_cycle_penalty(mol))],
                                  dtype=torch.float)
            train.append(data)
        return {"train": train, "val": val, "test": test}

    def __repr__(self) -> str:
        mode = "online" if self.online else "offline stand-in train"
        return f"{self.__class__.__name__}({len(self)}, split={self.split!r}, {mode})"

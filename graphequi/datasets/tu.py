r"""TU graph classification in the GIN/DGCNN text format, with its 10 folds.

The files (``<source>/tu_gin_format/<NAME>/<NAME>.txt`` and
``10fold_idx/{train,test}_idx-{1..10}.txt``) are what the GIN, PPGN and SPEN
papers read::

    N                       number of graphs
    n l                     per graph: number of nodes, graph label
    t m v_1 ... v_m [a...]  per node: tag, number of neighbors, neighbors
                            (0-based), optional continuous attributes

Node features are one-hot node tags (columns: the sorted tag values of the
whole dataset). IMDB-BINARY/-MULTI have no tags; as in GIN
(``degree_as_tag``) they get one-hot node degrees (columns: the sorted
degrees that occur in the dataset). Graph labels become classes 0..C-1 in
sorted order of the label values.

The folds are DGCNN's stratified 10-fold indices (GIN itself reshuffles with
scikit-learn; the fixed files make results comparable). There is no
validation set: like GIN, report the test-fold accuracy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import coalesce, degree, to_undirected

from ._cache import DatasetFileError, PathLike, copy_into_raw, resolve_source

__all__ = ["GINTUDataset", "GIN_TU_NAMES", "canonical_tu_name", "read_gin_txt"]

GIN_TU_NAMES = ("MUTAG", "PTC", "PROTEINS", "NCI1", "IMDBBINARY", "IMDBMULTI")
DEGREE_AS_TAG = ("IMDBBINARY", "IMDBMULTI")
NUM_FOLDS = 10
_ALIASES = {"ptc_mr": "PTC", "imdb-b": "IMDBBINARY", "imdb-binary": "IMDBBINARY",
            "imdb-m": "IMDBMULTI", "imdb-multi": "IMDBMULTI"}


def canonical_tu_name(name: str) -> Optional[str]:
    """``"imdb-b"`` -> ``"IMDBBINARY"`` etc.; ``None`` if not a GIN TU name."""
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    return next((n for n in GIN_TU_NAMES if n.lower() == key), None)


def read_gin_txt(path: PathLike) -> List[dict]:
    """Parse a GIN-format file into ``[{"label", "tags", "edges", "attrs"}]``
    (edges as ``(u, v)`` pairs as listed, ``attrs`` a list of float lists or
    ``None``). Raises :class:`DatasetFileError` naming the file and line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    pos = 0

    def next_tokens() -> List[str]:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1
        if pos >= len(lines):
            raise DatasetFileError(path, f"ends early at line {pos + 1}")
        pos += 1
        return lines[pos - 1].split()

    graphs = []
    try:
        (num_graphs,) = map(int, next_tokens())
        for g in range(num_graphs):
            n, label = map(int, next_tokens())
            if n <= 0:
                raise ValueError(f"graph {g} has {n} nodes")
            tags, edges, attrs = [], [], []
            for v in range(n):
                row = next_tokens()
                tag, m = int(row[0]), int(row[1])
                if len(row) < 2 + m:
                    raise ValueError(f"node {v} of graph {g} lists {len(row) - 2} of its {m} neighbors")
                nbrs = [int(t) for t in row[2:2 + m]]
                if any(not 0 <= u < n for u in nbrs):
                    raise ValueError(f"node {v} of graph {g} has a neighbor outside 0..{n - 1}")
                tags.append(tag)
                edges += [(v, u) for u in nbrs]
                attrs.append([float(t) for t in row[2 + m:]])
            has_attrs = any(attrs)
            if has_attrs and len({len(a) for a in attrs}) != 1:
                raise ValueError(f"graph {g} has nodes with different numbers of attributes")
            graphs.append({"label": label, "tags": tags, "edges": edges,
                           "attrs": attrs if has_attrs else None})
    except DatasetFileError:
        raise
    except ValueError as e:
        raise DatasetFileError(path, f"line {pos}: {e}") from e
    if any(line.strip() for line in lines[pos:]):
        raise DatasetFileError(path, f"unexpected content after graph {num_graphs} (line {pos + 1})")
    return graphs


class GINTUDataset(InMemoryDataset):
    r"""One of MUTAG, PTC, PROTEINS, NCI1, IMDBBINARY, IMDBMULTI in the GIN
    format, with DGCNN's 10 folds (:meth:`fold_split`).

    Each graph: ``x`` [n, F] float one-hot tags (or degrees for IMDB),
    ``edge_index`` [2, E] undirected, ``y`` [1] class; PROTEINS-like files
    with continuous node attributes also get ``node_attr`` [n, A].

    Args:
        root: writable folder; files go to ``<root>/<NAME>/{raw,processed}``.
        name: dataset name (aliases ``IMDB-B``, ``IMDB-M``, ``PTC_MR``).
        source: read-only data folder holding ``tu_gin_format/``.
        transform, pre_transform, pre_filter, force_reload, log: as in PyG
            (``pre_filter`` is refused: it would invalidate the folds).
    """

    def __init__(self, root: PathLike, name: str, source: Optional[PathLike] = None,
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False,
                 log: bool = True) -> None:
        canonical = canonical_tu_name(name)
        if canonical is None:
            raise ValueError(f"unknown GIN TU dataset {name!r}; available: {', '.join(GIN_TU_NAMES)}")
        if pre_filter is not None:
            raise ValueError("pre_filter would drop graphs and invalidate the fixed folds")
        self.name = canonical
        self.source_dir = resolve_source(source) / "tu_gin_format" / canonical
        super().__init__(str(Path(root) / canonical), transform, pre_transform, None,
                         force_reload=force_reload, log=log)
        self.load(self.processed_paths[0])
        self._folds = torch.load(self.processed_paths[1])

    @property
    def raw_file_names(self) -> List[str]:
        folds = [f"10fold_idx/{part}_idx-{k}.txt" for k in range(1, NUM_FOLDS + 1)
                 for part in ("train", "test")]
        return [f"{self.name}.txt"] + folds

    @property
    def processed_file_names(self) -> List[str]:
        return ["data.pt", "folds.pt"]

    def download(self) -> None:
        if not self.source_dir.is_dir():
            raise FileNotFoundError(
                f"GIN-format folder {self.source_dir} is missing; these files have no "
                "online source in PyG (use torch_geometric.datasets.TUDataset for the TU format)")
        copy_into_raw(self.source_dir, self.raw_file_names, self.raw_dir)

    def process(self) -> None:
        path = Path(self.raw_dir) / f"{self.name}.txt"
        parsed = read_gin_txt(path)
        edge_indices = []
        for g in parsed:
            n = len(g["tags"])
            ei = torch.tensor(g["edges"], dtype=torch.long).view(-1, 2).t()
            edge_indices.append(coalesce(to_undirected(ei, num_nodes=n), num_nodes=n))

        if self.name in DEGREE_AS_TAG:
            tags = [degree(ei[0], len(g["tags"]), dtype=torch.long) for ei, g in zip(edge_indices, parsed)]
        else:
            tags = [torch.tensor(g["tags"], dtype=torch.long) for g in parsed]
        tag_values = torch.cat(tags).unique()  # sorted
        label_values = sorted({g["label"] for g in parsed})

        graphs = []
        for g, ei, t in zip(parsed, edge_indices, tags):
            x = torch.zeros(t.numel(), tag_values.numel())
            x[torch.arange(t.numel()), torch.searchsorted(tag_values, t)] = 1.0
            data = Data(x=x, edge_index=ei, y=torch.tensor([label_values.index(g["label"])]))
            if g["attrs"] is not None:
                data.node_attr = torch.tensor(g["attrs"], dtype=torch.float)
            graphs.append(data)

        folds = [self._read_fold(k, len(graphs)) for k in range(NUM_FOLDS)]
        if self.pre_transform is not None:
            graphs = [self.pre_transform(d) for d in graphs]
        self.save(graphs, self.processed_paths[0])
        torch.save(folds, self.processed_paths[1])

    def _read_fold(self, fold: int, num_graphs: int) -> Tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for part in ("train", "test"):
            path = Path(self.raw_dir) / "10fold_idx" / f"{part}_idx-{fold + 1}.txt"
            try:
                index = torch.tensor([int(t) for t in path.read_text().split()], dtype=torch.long)
            except ValueError as e:
                raise DatasetFileError(path, f"not a list of graph indices ({e})") from e
            if index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= num_graphs:
                raise DatasetFileError(path, f"indices must lie in 0..{num_graphs - 1}")
            if index.unique().numel() != index.numel():
                raise DatasetFileError(path, "repeats a graph index")
            parts.append(index)
        train, test = parts
        if train.numel() + test.numel() != num_graphs or torch.cat(parts).unique().numel() != num_graphs:
            raise DatasetFileError(Path(self.raw_dir) / "10fold_idx",
                                   f"fold {fold + 1} train/test do not partition the {num_graphs} graphs")
        return train, test

    def fold_split(self, fold: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(train_idx, test_idx)`` of fold ``0..9`` (files ``*_idx-{fold+1}.txt``)."""
        if not 0 <= fold < NUM_FOLDS:
            raise ValueError(f"fold must be in 0..{NUM_FOLDS - 1}, got {fold}")
        train, test = self._folds[fold]
        return train.clone(), test.clone()

    def __repr__(self) -> str:
        return f"{self.name}({len(self)})"

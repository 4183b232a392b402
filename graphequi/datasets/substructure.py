r"""Substructure counting on the random graphs of Chen et al. (NeurIPS 2020).

The 5000 graphs (10-30 nodes) and their fixed split (1500 train / 1000 val /
2500 test) are those of GNNML (Balcilar et al. 2021), GNN-AK and I2-GNN
(``randomgraph.mat``); here read from ``count_substructures/graph.npy``.

**Targets** are *graph-level, non-induced subgraph counts*, as in GNNML's
``GraphCountDataset`` that the PPGN / PPGN++ substructure tables use
(triangle, tailed triangle, star, 4-cycle; Puny et al. 2023 report normalized
MAE = MAE / std of the target, with the std over all 5000 graphs), plus the
chordal cycle (diamond) of Chen et al. Node-level counts (GNN-AK, I2-GNN) are
a different task.

They are computed exactly from homomorphism counts
:math:`\hom(H, G) = P_H(A)`, evaluated with :func:`graphequi.poly.evaluate`
(``A`` symmetric 0/1 with zero diagonal). A subgraph count is
:math:`\mathrm{sub}(H, G) = \mathrm{inj}(H, G) / |\mathrm{Aut}(H)|`, and the
non-injective homomorphisms of a small pattern are homomorphisms of its
quotients (images with merged non-adjacent nodes; adjacent nodes cannot merge
without self-loops). Writing :math:`K_2` (edge), :math:`P_3` (path with 2
edges), :math:`S_3` (3-star), :math:`K_3`, :math:`C_4`, :math:`T` (tailed
triangle) and :math:`D` (diamond, :math:`K_4` minus an edge):

.. math::
    \#\text{triangle} &= \hom(K_3) / 6 \\
    \#\text{tailed triangle} &= (\hom(T) - 2\hom(K_3)) / 2
        && \text{(tail end onto one of the 2 other triangle nodes)} \\
    \#\text{star} &= (\hom(S_3) - 3\hom(P_3) + 2\hom(K_2)) / 6
        = \textstyle\sum_i \binom{d_i}{3} \\
    \#\text{4-cycle} &= (\hom(C_4) - 2\hom(P_3) + \hom(K_2)) / 8
        && (\hom(C_4) = \operatorname{tr} A^4) \\
    \#\text{chordal cycle} &= (\hom(D) - \hom(K_3)) / 4
        && \text{(the two chord-sharing nodes merged)}

(for the star: :math:`d^3 - 3d^2 + 2d = d(d-1)(d-2)`; for the 4-cycle the
quotients are :math:`P_3` twice and :math:`K_2` once, by inclusion-exclusion).
The tests check all five against networkx subgraph-isomorphism counts and
against the closed-form matrix formulas GNNML uses.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import dense_to_sparse

from ._cache import DatasetFileError, PathLike, copy_into_raw, resolve_source

__all__ = ["SubstructureCountingDataset", "SUBSTRUCTURE_TARGETS", "substructure_counts",
           "canonical_target", "load_graph_npy"]

#: Column order of ``y`` (GNNML's order for the first four).
SUBSTRUCTURE_TARGETS = ("triangle", "tailed_triangle", "star", "4cycle", "chordal_cycle")
_ALIASES = {"tri": "triangle", "triangles": "triangle", "tailed-triangle": "tailed_triangle",
            "tailed": "tailed_triangle", "3star": "star", "3-star": "star", "stars": "star",
            "c4": "4cycle", "4-cycle": "4cycle", "cycle4": "4cycle",
            "chordal-cycle": "chordal_cycle", "chordal": "chordal_cycle", "diamond": "chordal_cycle"}
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 1500, "val": 1000, "test": 2500}


def canonical_target(name: str) -> str:
    """``"c4"`` -> ``"4cycle"`` etc.; raises :class:`ValueError` for unknown names."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SUBSTRUCTURE_TARGETS:
        raise ValueError(f"unknown substructure target {name!r}; available: {', '.join(SUBSTRUCTURE_TARGETS)}")
    return key


def _patterns():
    from graphequi.poly import TRIANGLE, Multigraph
    return {
        "K2": Multigraph(2, [(0, 1)]),
        "P3": Multigraph(3, [(0, 1), (1, 2)]),
        "S3": Multigraph(4, [(0, 1), (0, 2), (0, 3)]),
        "K3": TRIANGLE,  # the pattern of graphequi.poly.triangle_count
        "C4": Multigraph(4, [(0, 1), (1, 2), (2, 3), (3, 0)]),
        "T": Multigraph(4, [(0, 1), (1, 2), (2, 0), (0, 3)]),
        "D": Multigraph(4, [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3)]),
    }


# sub = COEFFS @ hom, hom in the order of _patterns(); rows in SUBSTRUCTURE_TARGETS order.
_COEFFS = torch.tensor([
    # K2    P3    S3    K3    C4    T     D
    [0, 0, 0, 1 / 6, 0, 0, 0],                # triangle
    [0, 0, 0, -1, 0, 1 / 2, 0],               # tailed triangle
    [2 / 6, -3 / 6, 1 / 6, 0, 0, 0, 0],       # star
    [1 / 8, -2 / 8, 0, 0, 1 / 8, 0, 0],       # 4-cycle
    [0, 0, 0, -1 / 4, 0, 0, 1 / 4],           # chordal cycle
], dtype=torch.float64)


def substructure_counts(adj: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    r"""Exact non-induced subgraph counts of simple graphs.

    Args:
        adj: ``(n, n)`` or ``(B, n, n)`` symmetric 0/1 adjacency matrices with
            zero diagonal (padded batches: pass ``mask``).
        mask: ``(B, n)`` boolean mask of real nodes.

    Returns:
        ``(5,)`` or ``(B, 5)`` ``float64`` counts in :data:`SUBSTRUCTURE_TARGETS` order.

    Example:
        >>> import torch
        >>> k4 = torch.ones(4, 4) - torch.eye(4)
        >>> substructure_counts(k4).tolist()  # K4: 4 triangles, 12 tailed, 4 stars, 3 C4, 6 diamonds
        [4.0, 12.0, 4.0, 3.0, 6.0]
    """
    from graphequi.poly import evaluate
    if not isinstance(adj, Tensor):
        raise TypeError(f"adj must be a torch.Tensor, got {type(adj).__name__}")
    if adj.dim() not in (2, 3) or adj.shape[-1] != adj.shape[-2]:
        raise ValueError(f"adj must have shape (n, n) or (B, n, n), got {tuple(adj.shape)}")
    A = adj.to(torch.float64)
    if not torch.isin(A, torch.tensor([0.0, 1.0], dtype=torch.float64)).all():
        raise ValueError("adj must be a 0/1 matrix")
    if not torch.equal(A, A.transpose(-1, -2)):
        raise ValueError("adj must be symmetric (undirected graphs)")
    if A.diagonal(dim1=-2, dim2=-1).any():
        raise ValueError("adj must have a zero diagonal (no self-loops)")
    homs = evaluate(list(_patterns().values()), A, mask=mask)
    counts = homs @ _COEFFS.T
    rounded = counts.round()
    if not torch.allclose(counts, rounded, atol=1e-6):  # float64 sums of integers: exact
        raise RuntimeError("non-integer subgraph count: float64 precision exceeded")
    return rounded + 0.0  # no negative zeros


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles object arrays of numpy arrays and dicts, and nothing that
    could run code."""

    def find_class(self, module, name):
        if module.split(".")[0] == "numpy" and name in (
                "_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in graph.npy")


def load_graph_npy(path: PathLike):
    """Read ``graph.npy``: ``(list of (n, n) adjacency arrays, {"train", "val", "test"} index arrays)``,
    without ``allow_pickle``'s arbitrary code (numpy globals only)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype != np.dtype(object) or shape != (2,):
                raise ValueError(f"expected an object array of 2 entries, got {dtype} {shape}")
            obj = _NumpyOnlyUnpickler(f).load()
        adjs, split = obj[0], obj[1]
        split = split.item() if isinstance(split, np.ndarray) else split
        if not isinstance(split, dict) or set(split) != set(SPLITS):
            raise ValueError(f"second entry must be a dict with keys {SPLITS}")
        adjs = [np.asarray(a) for a in adjs]
    except DatasetFileError:
        raise
    except Exception as e:
        raise DatasetFileError(path, f"not the substructure-counting graph.npy ({type(e).__name__}: {e})") from e
    for i, a in enumerate(adjs):
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
            raise DatasetFileError(path, f"graph {i} is not a non-empty square matrix ({a.shape})")
        if not (np.isin(a, (0, 1)).all() and (a == a.T).all() and not np.diagonal(a).any()):
            raise DatasetFileError(path, f"graph {i} is not a symmetric 0/1 matrix with zero diagonal")
    n = len(adjs)
    index = {k: np.asarray(split[k], dtype=np.int64).reshape(-1) for k in SPLITS}
    joined = np.concatenate(list(index.values()))
    if joined.size and (joined.min() < 0 or joined.max() >= n):
        raise DatasetFileError(path, f"split indices outside 0..{n - 1}")
    if np.unique(joined).size != joined.size:
        raise DatasetFileError(path, "a graph is in two splits")
    return adjs, index


class SubstructureCountingDataset(InMemoryDataset):
    r"""One split of the substructure-counting benchmark.

    Each graph: ``x`` [n, 1] ones, ``edge_index`` [2, 2m], ``counts`` [1, 5]
    (all targets, :data:`SUBSTRUCTURE_TARGETS` order), ``y`` [1, 1] the chosen
    target (or [1, 5] when ``target=None``). Raw counts, not normalized:
    divide the MAE by :attr:`target_std` for the normalized MAE.

    Args:
        root: writable folder; files go to ``<root>/count_substructures/{raw,processed}``.
        split: ``"train"`` (1500), ``"val"`` (1000) or ``"test"`` (2500).
        target: a name of :data:`SUBSTRUCTURE_TARGETS` (aliases such as
            ``"c4"``), or ``None`` for all five.
        source: read-only data folder holding ``count_substructures/graph.npy``.
        transform, pre_transform, pre_filter, force_reload, log: as in PyG.

    Attributes:
        target_std: std of the target(s) over all 5000 graphs (``float``, or
            a [5] tensor when ``target=None``).
    """

    name = "count_substructures"

    def __init__(self, root: PathLike, split: str = "train", target: Optional[str] = "triangle",
                 source: Optional[PathLike] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.target = None if target is None else canonical_target(target)
        self.source_dir = resolve_source(source) / self.name
        super().__init__(str(Path(root) / self.name), transform, pre_transform, pre_filter,
                         force_reload=force_reload, log=log)
        self.load(self.processed_paths[SPLITS.index(split)])
        std = torch.load(self.processed_paths[-1])["std"]
        if self.target is not None:
            col = SUBSTRUCTURE_TARGETS.index(self.target)
            self._data.y = self._data.counts[:, col:col + 1].clone()
            self.target_std = float(std[col])
        else:
            self._data.y = self._data.counts.clone()
            self.target_std = std.clone()
        self.slices["y"] = self.slices["counts"]

    @property
    def raw_file_names(self) -> List[str]:
        return ["graph.npy"]

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{s}.pt" for s in SPLITS] + ["stats.pt"]

    def download(self) -> None:
        if not self.source_dir.is_dir():
            raise FileNotFoundError(
                f"folder {self.source_dir} with graph.npy is missing (no online source: "
                "the random graphs of Chen et al. are distributed as files)")
        copy_into_raw(self.source_dir, self.raw_file_names, self.raw_dir)

    def process(self) -> None:
        adjs, index = load_graph_npy(Path(self.raw_dir) / "graph.npy")
        n_max = max(a.shape[0] for a in adjs)
        padded = torch.zeros(len(adjs), n_max, n_max, dtype=torch.float64)
        mask = torch.zeros(len(adjs), n_max, dtype=torch.bool)
        for i, a in enumerate(adjs):
            padded[i, :a.shape[0], :a.shape[0]] = torch.from_numpy(a.astype(np.float64))
            mask[i, :a.shape[0]] = True
        counts = substructure_counts(padded, mask).float()
        graphs = []
        for i, a in enumerate(adjs):
            n = a.shape[0]
            edge_index, _ = dense_to_sparse(torch.from_numpy(a))
            graphs.append(Data(x=torch.ones(n, 1), edge_index=edge_index, num_nodes=n,
                               counts=counts[i:i + 1]))
        for split, path in zip(SPLITS, self.processed_paths):
            part = [graphs[i] for i in index[split].tolist()]
            if self.pre_filter is not None:
                part = [g for g in part if self.pre_filter(g)]
            if self.pre_transform is not None:
                part = [self.pre_transform(g) for g in part]
            self.save(part, path)
        torch.save({"std": counts.double().std(0), "index": {k: torch.from_numpy(v) for k, v in index.items()}},
                   self.processed_paths[-1])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)}, split={self.split!r}, target={self.target!r})"

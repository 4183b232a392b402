"""Loaders for the published pair benchmarks: BREC, graph6 files, EXP/CEXP
and CSL.

Every loader returns networkx graphs on nodes ``0..n-1`` (pairs as
:class:`~graphequi.expressivity.GraphPair`), reads only, and raises a
``ValueError`` naming the file (and line or index) on malformed input.

BREC (Wang & Zhang 2023, ``github.com/GraphPKU/BREC``) ships two layouts,
both supported by :func:`load_brec`:

* the raw per-family files of ``customize/Data/raw/``: numpy arrays of graph6
  strings ``basic.npy``, ``regular.npy``, ``str.npy``, ``extension.npy``,
  ``cfi.npy``, ``4vtx.npy``, ``dr.npy``. ``basic``, ``str``, ``4vtx`` and
  ``dr`` are flat with pairs ``(2i, 2i+1)``; ``regular``, ``extension`` and
  ``cfi`` have shape ``(k, 2)``. Entries may be ``str`` or ``bytes``. In this
  order they give pair ids Basic 0-59, Regular 60-159 (``regular`` then
  ``str``), Extension 160-259, CFI 260-359, 4-Vertex 360-379, DR 380-399;
* the processed ``brec_v3.npy`` (flat, 32 interleaved relabelings per pair,
  ``64 * 400`` pair entries followed by the reliability block): pair ``i`` is
  read from entries ``64 i`` and ``64 i + 1`` (the unrelabeled originals).
  :func:`load_brec_relabelings` reads the relabelings themselves, so that
  :func:`~graphequi.expressivity.run_brec` can use BREC's exact permutations
  and reliability graphs instead of drawing its own.
"""
from __future__ import annotations

import importlib
import itertools
import pickle
from pathlib import Path
from collections.abc import Mapping
from typing import Iterable, Iterator, Literal, Sequence, Union

import networkx as nx
import numpy as np

from ._graphs import GraphPair, StoredRelabelings

__all__ = [
    "BREC_FILES",
    "BREC_CATEGORIES",
    "load_brec",
    "load_brec_relabelings",
    "BRECRelabelings",
    "load_graph6",
    "make_pairs",
    "load_exp",
    "load_cexp",
    "load_csl",
    "csl_pairs",
]

PathLike = Union[str, Path]

#: BREC raw file stem -> (category, layout); in BREC's pair-id order.
BREC_FILES: dict[str, tuple[str, str]] = {
    "basic": ("Basic", "flat"),
    "regular": ("Regular", "rows"),
    "str": ("Regular", "flat"),
    "extension": ("Extension", "rows"),
    "cfi": ("CFI", "rows"),
    "4vtx": ("4-Vertex", "flat"),
    "dr": ("DR", "flat"),
}

#: Published BREC categories and their pair-id ranges ``[start, stop)``.
BREC_CATEGORIES: dict[str, tuple[int, int]] = {
    "Basic": (0, 60),
    "Regular": (60, 160),
    "Extension": (160, 260),
    "CFI": (260, 360),
    "4-Vertex": (360, 380),
    "DR": (380, 400),
}

_BREC_V3_BLOCK = 64  # 32 relabelings of each graph, interleaved


# --- graph6 ------------------------------------------------------------------------

def _g6_bytes(entry, where: str) -> bytes:
    if isinstance(entry, np.ndarray) and entry.shape == ():
        entry = entry.item()
    if isinstance(entry, (bytes, np.bytes_)):
        raw = bytes(entry)
    elif isinstance(entry, str):
        try:
            raw = entry.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: graph6 string is not ASCII") from None
    else:
        raise ValueError(f"{where}: expected a graph6 string, got {type(entry).__name__}")
    raw = raw.strip()
    if raw.startswith(b">>graph6<<"):
        raw = raw[len(b">>graph6<<"):]
    if raw.startswith(b">>sparse6<<"):
        raw = raw[len(b">>sparse6<<"):]
    if not raw:
        raise ValueError(f"{where}: empty graph6 string")
    return raw


def _parse_g6(entry, where: str) -> nx.Graph:
    raw = _g6_bytes(entry, where)
    try:
        g = nx.from_sparse6_bytes(raw) if raw.startswith(b":") else nx.from_graph6_bytes(raw)
    except (nx.NetworkXError, ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"{where}: invalid graph6/sparse6 string {raw[:20]!r}... ({exc})") from None
    g = nx.Graph(g)
    g.remove_edges_from(nx.selfloop_edges(g))
    return g


def load_graph6(path: PathLike) -> list[nx.Graph]:
    """Read a text file of graph6 (or sparse6, ``:``-prefixed) lines, e.g.
    the strongly-regular families ``sr16622.g6`` or ``graph8c.g6``.

    Blank lines and ``>>graph6<<`` headers are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read graph6 file {path}: {exc}") from None
    graphs = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped in (b">>graph6<<", b">>sparse6<<"):
            continue
        graphs.append(_parse_g6(stripped, f"{path}, line {number}"))
    if not graphs:
        raise ValueError(f"graph6 file {path} contains no graphs")
    return graphs


def make_pairs(graphs: Sequence[nx.Graph], mode: Literal["all", "consecutive"] = "all",
               category: str = "", prefix: str = "pair") -> list[GraphPair]:
    """Pairs from a graph list: every unordered pair (``"all"``, for families
    of mutually non-isomorphic graphs such as SR families) or ``(2i, 2i+1)``
    (``"consecutive"``). Names are ``f"{prefix}-{i}-{j}"``.
    """
    if mode == "all":
        index_pairs = list(itertools.combinations(range(len(graphs)), 2))
    elif mode == "consecutive":
        if len(graphs) % 2:
            raise ValueError(f"consecutive pairing needs an even number of graphs, got {len(graphs)}")
        index_pairs = [(i, i + 1) for i in range(0, len(graphs), 2)]
    else:
        raise ValueError(f"mode must be 'all' or 'consecutive', got {mode!r}")
    return [GraphPair(graphs[i], graphs[j], category, f"{prefix}-{i}-{j}") for i, j in index_pairs]


# --- BREC ----------------------------------------------------------------------------

def _load_npy(path: Path, allow_pickle: bool) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise ValueError(f"{path} is not a readable numpy array: {exc}") from None
    if magic != b"\x93NUMPY":
        raise ValueError(f"{path} is not a readable numpy array (no .npy header)")
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"{path} holds Python objects; load it with allow_pickle=True "
                             f"only if you trust the file") from None
        raise ValueError(f"{path} is not a readable numpy array: {exc}") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable numpy array: {exc}") from None


def _brec_rows(arr: np.ndarray, layout: str, path: Path) -> list[tuple[object, object]]:
    if layout == "flat":
        flat = arr.reshape(-1)
        if arr.ndim != 1 or flat.size % 2:
            raise ValueError(f"{path}: expected a flat array with an even number of graph6 "
                             f"strings, got shape {arr.shape}")
        return [(flat[i], flat[i + 1]) for i in range(0, flat.size, 2)]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{path}: expected shape (k, 2) of graph6 pairs, got {arr.shape}")
    return [(row[0], row[1]) for row in arr]


def load_brec(path: PathLike, allow_pickle: bool = False) -> list[GraphPair]:
    """Load BREC's pairs (see the module docstring for the layouts).

    Args:
        path: a directory holding the seven raw files (``basic.npy`` ...
            ``dr.npy``; all must be present), one raw file (only that
            family, with the ids it has in the full benchmark when the file
            has the published size), or the processed ``brec_v3.npy``.
        allow_pickle: allow object arrays (pickles can run code; the
            published files are plain string arrays and do not need it).

    Returns:
        :class:`GraphPair` list with ``category`` in :data:`BREC_CATEGORIES`
        and ``name = f"brec-{id}"``.
    """
    path = Path(path)
    if path.is_dir():
        missing = [f"{stem}.npy" for stem in BREC_FILES if not (path / f"{stem}.npy").exists()]
        if missing:
            raise ValueError(f"BREC directory {path} lacks {', '.join(missing)}")
        pairs: list[GraphPair] = []
        for stem, (category, layout) in BREC_FILES.items():
            file = path / f"{stem}.npy"
            for a, b in _brec_rows(_load_npy(file, allow_pickle), layout, file):
                index = len(pairs)
                pairs.append(GraphPair(_parse_g6(a, f"{file}, pair {index}"),
                                       _parse_g6(b, f"{file}, pair {index}"),
                                       category, f"brec-{index}"))
        return pairs
    if not path.exists():
        raise ValueError(f"BREC path {path} does not exist")
    stem = path.stem
    arr = _load_npy(path, allow_pickle)
    if stem in BREC_FILES:
        category, layout = BREC_FILES[stem]
        rows = _brec_rows(arr, layout, path)
        start = sum(len(_range_of(s)) for s in list(BREC_FILES)[:list(BREC_FILES).index(stem)])
        return [GraphPair(_parse_g6(a, f"{path}, pair {i}"), _parse_g6(b, f"{path}, pair {i}"),
                          category, f"brec-{start + i}") for i, (a, b) in enumerate(rows)]
    flat = arr.reshape(-1)
    if arr.ndim != 1 or flat.size < _BREC_V3_BLOCK or flat.size % _BREC_V3_BLOCK:
        raise ValueError(f"{path}: not a BREC raw file ({', '.join(f'{s}.npy' for s in BREC_FILES)}) "
                         f"and not a processed brec_v3 array (flat, multiple of {_BREC_V3_BLOCK}); "
                         f"shape {arr.shape}")
    num_pairs = min(flat.size // _BREC_V3_BLOCK, BREC_CATEGORIES["DR"][1])
    pairs = []
    for i in range(num_pairs):
        category = next(c for c, (lo, hi) in BREC_CATEGORIES.items() if lo <= i < hi)
        where = f"{path}, pair {i}"
        pairs.append(GraphPair(_parse_g6(flat[_BREC_V3_BLOCK * i], where),
                               _parse_g6(flat[_BREC_V3_BLOCK * i + 1], where), category, f"brec-{i}"))
    return pairs


class BRECRelabelings(Mapping):
    """BREC's stored relabelings, ``brec-<i>`` -> :class:`StoredRelabelings`,
    parsed from graph6 when a pair is looked up (the full file holds 51,200
    graphs).

    Attributes:
        source: the file name, recorded in a run's fingerprint so that runs
            with stored and with drawn relabelings are never mixed.
        num_relabel: relabelings per graph (BREC: 32).
    """

    def __init__(self, flat: np.ndarray, num_relabel: int, source: str):
        self._flat, self.num_relabel, self.source = flat, num_relabel, source
        self._num_pairs = flat.size // (4 * num_relabel)

    def _index(self, name: str) -> int:
        prefix, _, number = name.rpartition("-")
        if prefix != "brec" or not number.isdigit() or int(number) >= self._num_pairs:
            raise KeyError(name)
        return int(number)

    def __getitem__(self, name: str) -> StoredRelabelings:
        i, block = self._index(name), 2 * self.num_relabel
        where = f"{self.source}, pair {i}"

        def parse(start: int) -> tuple:
            return tuple(_parse_g6(e, f"{where}, entry {start + k}")
                         for k, e in enumerate(self._flat[start:start + block]))

        return StoredRelabelings(parse(block * i), parse(block * (i + self._num_pairs)))

    def __contains__(self, name: object) -> bool:
        try:
            self._index(str(name))
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (f"brec-{i}" for i in range(self._num_pairs))

    def __len__(self) -> int:
        return self._num_pairs

    def __repr__(self) -> str:
        return f"BRECRelabelings({self.source!r}, pairs={self._num_pairs}, num_relabel={self.num_relabel})"


def load_brec_relabelings(path: PathLike, num_relabel: int = 32, allow_pickle: bool = False) -> BRECRelabelings:
    """BREC's stored relabelings from its processed ``brec_v3.npy``.

    The file is flat: for ``P`` pairs, ``P`` blocks of ``2 R`` graphs (pair
    ``i``'s relabelings, first and second graph interleaved) followed by
    ``P`` reliability blocks of ``2 R`` relabelings of one graph, ``R =
    num_relabel``; BREC has ``P = 400``, ``R = 32`` (51,200 entries). Pass
    the result as ``relabelings=`` to :func:`~graphequi.expressivity.run_brec`
    or :func:`~graphequi.expressivity.separates`, or ``--relabelings PATH``
    to ``graphequi expressivity``, to restore BREC's exact permutations and
    reliability graphs.

    Args:
        path: the ``brec_v3.npy`` file.
        num_relabel: ``R``.
        allow_pickle: allow object arrays (see :func:`load_brec`).

    Returns:
        :class:`BRECRelabelings`, keyed like :func:`load_brec`'s pair names.
    """
    if num_relabel < 1:
        raise ValueError(f"num_relabel must be >= 1, got {num_relabel}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"BREC relabelings file {path} does not exist")
    arr = _load_npy(path, allow_pickle)
    quantum = 4 * num_relabel
    if arr.ndim != 1 or arr.size == 0 or arr.size % quantum:
        raise ValueError(f"{path}: stored relabelings must be a flat array of P * {quantum} graph6 strings "
                         f"(P pairs, {2 * num_relabel} relabelings and {2 * num_relabel} reliability graphs "
                         f"each), got shape {arr.shape}")
    return BRECRelabelings(arr, num_relabel, path.name)


def _range_of(stem: str) -> range:
    # Published pair counts per raw file, used to keep global ids when one
    # family file is loaded alone.
    sizes = {"basic": 60, "regular": 50, "str": 50, "extension": 100, "cfi": 100, "4vtx": 20, "dr": 20}
    return range(sizes[stem])


# --- EXP / CEXP ----------------------------------------------------------------------------

def _resolve(path: PathLike, filename: str) -> Path:
    path = Path(path)
    return path / filename if path.is_dir() else path


def _read_ppgn_txt(path: Path) -> list[nx.Graph]:
    """The PPGN/GIN text format: ``N``; per graph ``n label``; then ``n``
    lines ``node_label degree nbr_1 ... nbr_degree``."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    cursor = 0

    def next_ints(what: str) -> list[int]:
        nonlocal cursor
        while cursor < len(lines) and not lines[cursor].strip():
            cursor += 1
        if cursor >= len(lines):
            raise ValueError(f"{path}: file ends early, expected {what}")
        cursor += 1
        try:
            return [int(tok) for tok in lines[cursor - 1].split()]
        except ValueError:
            raise ValueError(f"{path}, line {cursor}: expected integers for {what}, "
                             f"got {lines[cursor - 1]!r}") from None

    header = next_ints("the number of graphs")
    if len(header) != 1 or header[0] < 0:
        raise ValueError(f"{path}, line {cursor}: expected the number of graphs")
    graphs = []
    for gi in range(header[0]):
        head = next_ints(f"'n label' of graph {gi}")
        if len(head) != 2 or head[0] <= 0:
            raise ValueError(f"{path}, line {cursor}: expected 'n label' for graph {gi}, got {head}")
        n, label = head
        g = nx.Graph(label=label)
        g.add_nodes_from(range(n))
        for v in range(n):
            row = next_ints(f"node {v} of graph {gi}")
            if len(row) < 2 or len(row) != 2 + row[1]:
                raise ValueError(f"{path}, line {cursor}: node row must be 'label degree nbrs...' "
                                 f"with 'degree' neighbors, got {row}")
            nbrs = row[2:]
            if any(u < 0 or u >= n for u in nbrs):
                raise ValueError(f"{path}, line {cursor}: neighbor index outside [0, {n})")
            g.nodes[v]["label"] = row[0]
            g.add_edges_from((v, u) for u in nbrs if u != v)
        graphs.append(g)
    return graphs


def load_exp(path: PathLike, category: str = "EXP") -> list[GraphPair]:
    """EXP (Abboud et al. 2021): ``GRAPHSAT.txt`` (or its folder); graphs
    ``(2p, 2p+1)`` form pair ``p``. Node attribute ``"label"`` holds the node
    label, ``graph.graph["label"]`` the satisfiability label."""
    file = _resolve(path, "GRAPHSAT.txt")
    graphs = _read_ppgn_txt(file)
    if len(graphs) % 2:
        raise ValueError(f"{file}: odd number of graphs ({len(graphs)}), pairs are (2p, 2p+1)")
    prefix = category.lower()
    return [GraphPair(graphs[2 * p], graphs[2 * p + 1], category, f"{prefix}-{p}")
            for p in range(len(graphs) // 2)]


def load_cexp(path: PathLike) -> list[GraphPair]:
    """CEXP (same format as :func:`load_exp`), category ``"CEXP"``."""
    return load_exp(path, category="CEXP")


# --- CSL ---------------------------------------------------------------------------------

class _SparseUnpickler(pickle.Unpickler):
    """Unpickles only scipy COO matrices and numpy arrays (no code execution)."""

    _ALLOWED = {
        ("scipy.sparse.coo", "coo_matrix"), ("scipy.sparse._coo", "coo_matrix"),
        ("scipy.sparse", "coo_matrix"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if name == "coo_matrix":
            from scipy.sparse import coo_matrix
            return coo_matrix
        if name == "_reconstruct":
            try:
                return importlib.import_module("numpy._core.multiarray")._reconstruct
            except ImportError:  # numpy < 2
                return importlib.import_module("numpy.core.multiarray")._reconstruct
        return getattr(np, name)


def load_csl(path: PathLike) -> list[nx.Graph]:
    """CSL as packaged by benchmarking-gnns: the folder holding
    ``graphs_Kary_Deterministic_Graphs.pkl`` (150 scipy COO adjacency
    matrices, self-loops stored) and ``y_Kary_Deterministic_Graphs.pt``.

    Returns 150 graphs (self-loops dropped) with ``graph.graph["label"]``
    (class 0-9) and ``graph.graph["skip"]`` (the chord length read off the
    graph). The pickle is read by a restricted unpickler that only builds
    COO matrices and numpy arrays.
    """
    import torch

    folder = Path(path)
    gfile = folder / "graphs_Kary_Deterministic_Graphs.pkl"
    yfile = folder / "y_Kary_Deterministic_Graphs.pt"
    for f in (gfile, yfile):
        if not f.exists():
            raise ValueError(f"CSL folder {folder} lacks {f.name}")
    try:
        with open(gfile, "rb") as fh:
            mats = _SparseUnpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ValueError(f"{gfile}: not a CSL adjacency pickle ({exc})") from None
    try:
        labels = torch.load(yfile, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ValueError(f"{yfile}: not a label tensor ({exc})") from None
    if not isinstance(mats, list) or len(mats) != len(labels):
        raise ValueError(f"{gfile}: expected a list of {len(labels)} matrices")
    graphs = []
    for i, (mat, label) in enumerate(zip(mats, labels.tolist())):
        if not hasattr(mat, "tocoo") or mat.shape[0] != mat.shape[1]:
            raise ValueError(f"{gfile}, graph {i}: expected a square sparse matrix")
        coo = mat.tocoo()
        g = nx.Graph(label=int(label))
        g.add_nodes_from(range(coo.shape[0]))
        g.add_edges_from((int(r), int(c)) for r, c in zip(coo.row, coo.col) if r != c)
        n = g.number_of_nodes()
        chords = sorted(min(u % n, (-u) % n) for u in g[0] if u not in (1, n - 1))
        g.graph["skip"] = chords[0] if chords else None
        graphs.append(g)
    return graphs


def csl_pairs(graphs: Iterable[nx.Graph]) -> list[GraphPair]:
    """One representative per CSL class, every pair of classes (45 pairs for
    the benchmark); category ``"CSL"``, names ``csl-<label>-<label>``."""
    reps: dict[int, nx.Graph] = {}
    for g in graphs:
        reps.setdefault(g.graph["label"], g)
    keys = sorted(reps)
    return [GraphPair(reps[a], reps[b], "CSL", f"csl-{a}-{b}") for a, b in itertools.combinations(keys, 2)]

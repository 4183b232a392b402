"""Shared plumbing of the dataset classes: where the read-only source files
live, copying them into a writable cache, and clear errors for missing or
corrupt files.

Every dataset of :mod:`graphequi.datasets` follows one layout::

    <source>/<source_folder>/...        read-only files (never written)
    <root>/<name>/raw/...               writable copy of what the dataset needs
    <root>/<name>/processed/...         PyG tensors built from raw/

``source`` defaults to the environment variable ``GRAPHEQUI_SHARED_DATA`` and
otherwise to ``../shared/data`` next to the repository root.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import pickle
import shutil
import types
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import torch

from graphequi._io import atomic_write

PathLike = Union[str, os.PathLike]

SHARED_DATA_ENV = "GRAPHEQUI_SHARED_DATA"

__all__ = [
    "DatasetFileError",
    "SHARED_DATA_ENV",
    "default_source",
    "resolve_source",
    "copy_into_raw",
    "require_files",
    "check_gzip",
    "torch_load_pyg",
    "pyg_safe_globals",
    "allow_pyg_pickles",
]


class DatasetFileError(ValueError):
    """A dataset file exists but cannot be read as what it should be.

    The message always names the file, so that a corrupt cache entry or a
    truncated copy can be found and deleted.
    """

    def __init__(self, path: PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"corrupt or unreadable dataset file {self.path}: {problem}")


def default_source() -> Path:
    """The read-only data folder: ``$GRAPHEQUI_SHARED_DATA`` if set, else
    ``<repo>/../shared/data``."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def resolve_source(source: Optional[PathLike]) -> Path:
    return Path(source) if source is not None else default_source()


def require_files(folder: Path, names: Iterable[str]) -> None:
    """Raise :class:`FileNotFoundError` naming the first missing file."""
    for name in names:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"dataset file {path} is missing (expected under {folder}; "
                f"delete the partial folder or restore the file)")


def copy_into_raw(src_folder: Path, names: Iterable[str], raw_dir: PathLike) -> None:
    """Copy ``src_folder/<name>`` to ``raw_dir/<name>`` for every name (paths
    may contain sub-folders), checking first that all of them exist so that a
    missing file never leaves a silently partial cache.

    Copies are made writable: PyG/OGB write next to their raw files.
    """
    names = list(names)
    require_files(src_folder, names)
    raw_dir = Path(raw_dir)
    for name in names:
        dst = raw_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        # atomic: an interrupted copy never looks complete
        atomic_write(dst, lambda tmp: _writable_copy(src_folder / name, tmp))


def _writable_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


def check_gzip(path: PathLike) -> None:
    """Decompress a whole ``.gz`` file (CRC checked) or raise
    :class:`DatasetFileError` naming it."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetFileError(path, f"not a complete gzip file ({e})") from e


def pyg_safe_globals() -> list:
    """The PyG classes that old ``(data, slices)`` pickles reference, for
    :func:`torch.serialization.safe_globals`."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage
    return [DataEdgeAttr, DataTensorAttr, GlobalStorage]


@contextlib.contextmanager
def allow_pyg_pickles() -> Iterator[None]:
    """Let ``torch.load(path)`` (``weights_only=True`` by default since torch
    2.6) read PyG ``Data`` pickles, by allow-listing only the PyG storage
    classes. Used around ``ogb`` 1.3.6, which calls ``torch.load(path)``
    without ``weights_only`` and fails on torch >= 2.6. This is narrower
    than patching ``torch.load`` to ``weights_only=False``: arbitrary code in a
    pickle is still refused."""
    with torch.serialization.safe_globals(pyg_safe_globals()):
        yield


class _LegacyPyGUnpickler(pickle.Unpickler):
    """Unpickler for PyG 1.x ``(data, slices)`` files: only tensors, PyG data
    classes and plain containers; any other global (e.g. ``os.system``) is
    refused, so ``weights_only=False`` cannot run foreign code."""

    _PLAIN = {("collections", "OrderedDict"), ("collections", "defaultdict"),
              ("builtins", "dict"), ("__builtin__", "dict"), ("builtins", "list"),
              ("torch", "Size"), ("torch", "device")}

    def find_class(self, module, name):
        allowed = ((module, name) in self._PLAIN
                   or (module == "torch._utils" and name.startswith("_rebuild_"))
                   or (module == "torch" and name.endswith("Storage"))
                   or (module.startswith("torch_geometric.data.") and name[:1].isupper()))
        if not allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a PyG data file")
        return super().find_class(module, name)


_legacy_pickle_module = types.SimpleNamespace(
    __name__="graphequi_legacy_pyg_pickle", Unpickler=_LegacyPyGUnpickler,
    load=pickle.load, UnpicklingError=pickle.UnpicklingError)


def torch_load_pyg(path: PathLike, legacy: bool = False):
    """Load a PyG ``(data, slices)`` or ``Data`` pickle, raising
    :class:`DatasetFileError` naming ``path`` if it cannot be read.

    Args:
        path: the ``.pt`` file.
        legacy: the file was written by PyG 1.x (it pickles
            ``collections.defaultdict``, which ``weights_only=True`` refuses):
            load it with ``weights_only=False`` through an unpickler that only
            admits tensors, PyG data classes and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} is missing")
    try:
        if legacy:
            return torch.load(path, weights_only=False, pickle_module=_legacy_pickle_module)
        with allow_pyg_pickles():
            return torch.load(path)
    except Exception as e:  # pickle, zip and unpickling errors all mean "corrupt"
        raise DatasetFileError(path, f"torch.load failed ({type(e).__name__}: {e})") from e

r"""Revised MD17 (Christensen & von Lilienfeld, 2020) from the npz files of
the official splits."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from ._cache import DatasetFileError, PathLike, copy_into_raw, resolve_source

__all__ = ["RMD17", "RMD17_MOLECULES", "KCAL_PER_MOL_IN_MEV"]

RMD17_MOLECULES = ("aspirin", "azobenzene", "benzene", "ethanol", "malonaldehyde", "naphthalene",
                   "paracetamol", "salicylic", "toluene", "uracil")
#: 1 kcal/mol in meV (4184 J/mol / 96485.332 C/mol = 0.0433641 eV)
KCAL_PER_MOL_IN_MEV = 4184.0 / 96485.33212 * 1000.0
RMD17_SPLITS = ("train", "val", "test")


class RMD17(InMemoryDataset):
    r"""One molecule and split of rMD17, official split ``01``.

    The 1000 frames of ``rmd17_<mol>_train_01.npz`` give ``train`` (the first
    950 in file order) and ``val`` (the last 50); ``test`` is the 1000 frames
    of ``rmd17_<mol>_test_01.npz``. Units: energies ``y`` [1, 1] in meV,
    forces ``force`` [N, 3] in meV/Å (converted from kcal/mol with
    :data:`KCAL_PER_MOL_IN_MEV`), positions ``pos`` [N, 3] in Å. ``z`` [N]
    holds the atomic numbers and ``x`` [N, K] their one-hot over the K
    elements of the molecule (sorted atomic numbers, ``elements``).

    Args:
        root: writable folder; files under ``<root>/rmd17/<mol>/``.
        molecule: a name of :data:`RMD17_MOLECULES`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        source: read-only folder holding ``rmd17_npz/``.
    """

    def __init__(self, root: PathLike, molecule: str = "aspirin", split: str = "train",
                 source: Optional[PathLike] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, force_reload: bool = False, log: bool = True):
        molecule = molecule.lower()
        if molecule not in RMD17_MOLECULES:
            raise ValueError(f"unknown rMD17 molecule {molecule!r}; known: {', '.join(RMD17_MOLECULES)}")
        if split not in RMD17_SPLITS:
            raise ValueError(f"split must be one of {RMD17_SPLITS}, got {split!r}")
        self.molecule, self.split = molecule, split
        self.source_dir = resolve_source(source) / "rmd17_npz"
        super().__init__(str(Path(root) / "rmd17" / molecule), transform, pre_transform,
                         force_reload=force_reload, log=log)
        self.load(self.processed_paths[RMD17_SPLITS.index(split)])

    @property
    def raw_file_names(self) -> List[str]:
        return [f"rmd17_{self.molecule}_{part}_01.npz" for part in ("train", "test")]

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{s}.pt" for s in RMD17_SPLITS]

    def download(self) -> None:
        if not self.source_dir.is_dir():
            raise FileNotFoundError(f"folder {self.source_dir} with the rMD17 npz files is missing")
        copy_into_raw(self.source_dir, self.raw_file_names, self.raw_dir)

    def _read(self, name: str):
        path = Path(self.raw_dir) / name
        try:
            with np.load(path) as f:
                z, coords, energies, forces = (f[k] for k in ("nuclear_charges", "coords", "energies", "forces"))
        except (OSError, KeyError, ValueError) as e:
            raise DatasetFileError(path, f"not an rMD17 npz ({type(e).__name__}: {e})") from e
        if coords.ndim != 3 or coords.shape[1:] != (z.size, 3) or forces.shape != coords.shape \
                or energies.shape != coords.shape[:1]:
            raise DatasetFileError(path, f"inconsistent shapes {z.shape}, {coords.shape}, "
                                         f"{energies.shape}, {forces.shape}")
        return z, coords, energies, forces

    def process(self) -> None:
        train, test = (self._read(n) for n in self.raw_file_names)
        z = torch.from_numpy(train[0].astype(np.int64))
        elements = torch.unique(z)
        x = (z.unsqueeze(1) == elements.unsqueeze(0)).float()
        parts = {"train": (train, slice(0, 950)), "val": (train, slice(950, 1000)),
                 "test": (test, slice(0, None))}
        for split, path in zip(RMD17_SPLITS, self.processed_paths):
            (_, coords, energies, forces), sl = parts[split]
            graphs = []
            for f in range(coords.shape[0])[sl]:
                data = Data(pos=torch.from_numpy(coords[f]).float(), z=z, x=x,
                            y=torch.tensor([[energies[f] * KCAL_PER_MOL_IN_MEV]], dtype=torch.float64),
                            force=torch.from_numpy(forces[f] * KCAL_PER_MOL_IN_MEV).float())
                if self.pre_transform is not None:
                    data = self.pre_transform(data)
                graphs.append(data)
            self.save(graphs, path)

    @property
    def elements(self) -> torch.Tensor:
        return torch.unique(self._data.z)

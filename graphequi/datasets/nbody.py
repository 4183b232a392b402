r"""The charged 5-body benchmark of EGNN (Satorras et al., 2021), generated
locally with :mod:`graphequi.datasets.nbody_sim`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from graphequi.geometry import fully_connected_graph

from ._cache import PathLike
from .nbody_sim import ChargedInitialStates, draw_initial_states, simulate_charged

__all__ = ["NBodyCharged", "NBODY_SPLITS"]

NBODY_SPLITS = ("train", "valid", "test")


class NBodyCharged(InMemoryDataset):
    r"""One split of the charged N-body benchmark (EGNN protocol).

    Generation: one legacy numpy stream seeded with ``seed`` (43) draws
    ``num_train`` (10000), then ``num_valid`` (2000), then ``num_test``
    (2000) simulations of 5 charged particles (leapfrog, :math:`\Delta t =
    0.001`, 5000 steps, a frame every 100 steps). Only the first
    ``max_train`` (3000) training simulations are integrated and kept, as in
    EGNN's loader; the charges of all simulations are stored in
    ``raw/charges_<split>.npy`` (they equal the reference arrays bit for
    bit).

    Each graph: ``pos`` [5, 3] at frame ``frame_in`` (30), ``vec`` [5, 1, 3]
    the velocities there, ``x`` [5, 1] the charges, ``y`` [5, 3] the
    positions at frame ``frame_out`` (40), ``edge_index`` fully connected
    (20 edges), ``edge_attr`` [20, 1] :math:`q_i q_j`. The metric is the MSE
    of ``y``.

    Args:
        root: writable folder; files under ``<root>/nbody_charged5/``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_train, num_valid, num_test, max_train, seed: the protocol's
            sizes (smaller values give a quick, different dataset; the
            folder name records them).
        frame_in, frame_out: input and target frames.
        walls: elastic walls at every step (NRI's simulator) instead of the
            benchmark's free motion after the initial fold (see
            :func:`~graphequi.datasets.nbody_sim.simulate_charged`).
        progress: tqdm bar during generation.
    """

    def __init__(self, root: PathLike, split: str = "train", *, num_train: int = 10000,
                 num_valid: int = 2000, num_test: int = 2000, max_train: int = 3000, seed: int = 43,
                 frame_in: int = 30, frame_out: int = 40, walls: bool = False, progress: bool = False,
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True):
        if split not in NBODY_SPLITS:
            raise ValueError(f"split must be one of {NBODY_SPLITS}, got {split!r}")
        if not 0 <= frame_in < frame_out < 49:
            raise ValueError(f"need 0 <= frame_in < frame_out < 49, got {frame_in}, {frame_out}")
        self.sizes = (num_train, num_valid, num_test)
        self.max_train, self.seed = min(max_train, num_train), seed
        self.frames, self.progress, self.split, self.walls = (frame_in, frame_out), progress, split, walls
        tag = (f"nbody_charged5_{num_train}_{num_valid}_{num_test}_{self.max_train}_s{seed}_f{frame_in}-{frame_out}"
               f"_{'walls' if walls else 'free'}")
        super().__init__(str(Path(root) / tag), transform, pre_transform, force_reload=force_reload, log=log)
        self.load(self.processed_paths[NBODY_SPLITS.index(split)])

    @property
    def raw_file_names(self) -> List[str]:
        return [f"{kind}_{s}.npy" for s in NBODY_SPLITS for kind in ("charges", "loc", "vel")]

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{s}.pt" for s in NBODY_SPLITS]

    def download(self) -> None:
        # "Download" = generate: the benchmark is defined by its simulator and seed.
        rng = np.random.RandomState(self.seed)
        raw = Path(self.raw_dir)
        raw.mkdir(parents=True, exist_ok=True)
        for split, num in zip(NBODY_SPLITS, self.sizes):
            init = draw_initial_states(rng, num)
            keep = self.max_train if split == "train" else num
            loc, vel = simulate_charged(ChargedInitialStates(*(a[:keep] for a in init)),
                                        walls=self.walls, progress=self.progress)
            frames = list(self.frames)
            np.save(raw / f"charges_{split}.npy", init.charges)
            np.save(raw / f"loc_{split}.npy", loc[:, frames])      # [S, 2, 3, n]
            np.save(raw / f"vel_{split}.npy", vel[:, frames])

    def process(self) -> None:
        raw = Path(self.raw_dir)
        for split, path in zip(NBODY_SPLITS, self.processed_paths):
            loc = torch.from_numpy(np.load(raw / f"loc_{split}.npy")).float().transpose(-1, -2)
            vel = torch.from_numpy(np.load(raw / f"vel_{split}.npy")).float().transpose(-1, -2)
            charges = torch.from_numpy(np.load(raw / f"charges_{split}.npy")).float()[:loc.size(0)]
            n = loc.size(-2)
            edge_index = fully_connected_graph(n)
            graphs = []
            for s in range(loc.size(0)):
                q = charges[s]
                data = Data(pos=loc[s, 0], vec=vel[s, 0].unsqueeze(1), x=q, y=loc[s, 1],
                            edge_index=edge_index, edge_attr=q[edge_index[0]] * q[edge_index[1]])
                if self.pre_transform is not None:
                    data = self.pre_transform(data)
                graphs.append(data)
            self.save(graphs, path)

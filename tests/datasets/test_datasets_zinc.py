"""ZINC-12k: target formula and featurization against the official graphs,
end-to-end processing on a tiny generated source folder, bad input."""
import csv
import pickle
import sys

import networkx as nx
import pytest
import torch
from rdkit import Chem
from torch_geometric.data import Data, InMemoryDataset

from graphequi.datasets import DatasetFileError, ZINC12k
from graphequi.datasets.zinc import (OFFLINE_FILES, _split_old_pyg, load_zinc_atom_dict,
                                     zinc_cycle_penalty, zinc_smiles_to_data, zinc_target)

OFFICIAL = "pyg_processed_subset_graphpebench"


def _official_test(shared_data):
    folder = shared_data("zinc12k")
    graphs = _split_old_pyg(folder / OFFICIAL / "test.pt")
    with open(folder / "smiles_score.csv", newline="") as f:
        rows = list(csv.DictReader(f))[11000:12000]  # the official test molecules, in order
    return folder, graphs, rows


def test_zinc_target_formula_reproduces_official_test_targets(shared_data):
    _, graphs, rows = _official_test(shared_data)
    close = 0
    for g, row in zip(graphs, rows):
        mol = Chem.MolFromSmiles(row["SMILES"])
        y = zinc_target(float(row["logp"]), float(row["SA"]), zinc_cycle_penalty(mol))
        close += abs(y - float(g.y)) <= 0.05
    assert len(graphs) == 1000 and close >= 998


def test_zinc_featurization_is_isomorphic_to_official_test_graphs(shared_data):
    folder, graphs, rows = _official_test(shared_data)
    atom_dict = load_zinc_atom_dict(folder / OFFICIAL / "atom_dict.pickle")
    assert len(atom_dict) == 28

    def to_nx(d, bond_types):
        g = nx.Graph()
        g.add_nodes_from((i, {"t": int(t)}) for i, t in enumerate(d.x.view(-1)))
        for (u, v), b in zip(d.edge_index.t().tolist(), d.edge_attr.tolist()):
            g.add_edge(u, v, b=b if bond_types else 0)
        return g

    same_types = 0
    for g, row in list(zip(graphs, rows))[::5]:  # 200 molecules
        ours, _ = zinc_smiles_to_data(row["SMILES"], atom_dict)
        assert ours.x.shape == g.x.shape and ours.x.dtype == torch.long
        assert sorted(ours.x.view(-1).tolist()) == sorted(g.x.view(-1).tolist())
        # Bond orders as a multiset; the graph with atom types up to isomorphism.
        assert sorted(ours.edge_attr.tolist()) == sorted(g.edge_attr.tolist())
        assert nx.is_isomorphic(to_nx(ours, False), to_nx(g, False),
                                node_match=lambda a, b: a["t"] == b["t"])
        same_types += 1
    assert same_types == 200


def test_zinc_atom_keys_and_bonds_of_a_small_molecule():
    atom_dict = {k: i for i, k in enumerate(["C", "O", "N", "C H1", "N H3 +", "O -"])}
    data, _ = zinc_smiles_to_data("[NH3+][C@@H](C)C(=O)[O-]", atom_dict)
    assert data.x.view(-1).tolist() == [4, 3, 0, 0, 1, 5]
    # Bonds: N-C, C-C, C-C, C=O, C-O-, both directions, sorted by (row, col).
    assert data.edge_index.t().tolist() == [[0, 1], [1, 0], [1, 2], [1, 3], [2, 1], [3, 1],
                                            [3, 4], [3, 5], [4, 3], [5, 3]]
    assert data.edge_attr.tolist() == [1, 1, 1, 1, 1, 1, 2, 1, 2, 1]
    # Aromatic rings are kekulized: benzene has 3 single and 3 double bonds.
    benzene, _ = zinc_smiles_to_data("c1ccccc1", atom_dict)
    assert sorted(benzene.edge_attr.tolist()) == [1] * 6 + [2] * 6
    with pytest.raises(ValueError, match="not among the 28"):
        zinc_smiles_to_data("[Si](C)(C)C", atom_dict)


def test_zinc_cycle_penalty():
    assert zinc_cycle_penalty(Chem.MolFromSmiles("CCO")) == 0
    assert zinc_cycle_penalty(Chem.MolFromSmiles("c1ccccc1")) == 0
    assert zinc_cycle_penalty(Chem.MolFromSmiles("C1CCCCCCC1")) == 2  # 8-ring


# --------------------------------------------------------------------------- tiny source

class _Dictionary:  # pickled under the name benchmarking-gnns used
    pass


def _write_atom_dict(path, words):
    obj = _Dictionary()
    obj.word2idx = {w: i for i, w in enumerate(words)}
    obj.idx2word = list(words)
    main = sys.modules["__main__"]
    _Dictionary.__module__, _Dictionary.__qualname__ = "__main__", "Dictionary"
    setattr(main, "Dictionary", _Dictionary)
    try:
        path.write_bytes(pickle.dumps(obj))
    finally:
        delattr(main, "Dictionary")


WORDS = ["C", "O", "N", "F", "C H1", "S", "Cl", "O -"]
VAL_SMILES = ["CCO", "c1ccccc1O"]
TEST_SMILES = ["CC(=O)O", "CCN"]
TRAIN_ROWS = [("OCC", 2.0, 0.5), ("CCCl", 2.5, 1.2), ("C1CCCCCCC1", 3.0, 2.1),
              ("CC(C)F", 2.2, 0.9), ("CC(=O)O", 1.9, 0.1)]  # rows 0 and 4 are val/test molecules


def _make_source(tmp_path):
    folder = tmp_path / "source" / "zinc12k"
    official = folder / OFFICIAL
    official.mkdir(parents=True)
    (folder / "jtnn_zinc").mkdir()
    atom_dict = {w: i for i, w in enumerate(WORDS)}
    _write_atom_dict(official / "atom_dict.pickle", WORDS)
    for split, smiles, pool in (("val", VAL_SMILES, "valid.txt"), ("test", TEST_SMILES, "test.txt")):
        graphs = []
        for i, s in enumerate(smiles):
            g, _ = zinc_smiles_to_data(s, atom_dict)
            g.y = torch.tensor([float(i)])
            graphs.append(g)
        data, slices = InMemoryDataset.collate(graphs)
        torch.save((data, slices), official / f"{split}.pt")
        # The pool holds a decoy first; the index file points past it.
        (folder / "jtnn_zinc" / pool).write_text("\n".join(["CCCCCC"] + smiles) + "\n")
        (official / f"{split}.index").write_text(",".join(str(i + 1) for i in range(len(smiles))) + "\n")
    with open(folder / "smiles_score.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SMILES", "SA", "logp", "score"])
        for s, sa, logp in TRAIN_ROWS:
            w.writerow([s, sa, logp, logp - sa])
    return tmp_path / "source"


class TinyZINC(ZINC12k):
    num_stand_in_rows = len(TRAIN_ROWS)


def test_zinc_offline_processing_on_tiny_source(tmp_path):
    source = _make_source(tmp_path)
    train = TinyZINC(tmp_path / "root", "train", source=source, log=False)
    val = TinyZINC(tmp_path / "root", "val", source=source, log=False)
    assert train.result_name == "ZINC-12k, stand-in train, official val/test"
    assert len(train) == 3 and len(val) == 2  # OCC (= CCO) and CC(=O)O dropped
    for g, (s, sa, logp) in zip(train, [TRAIN_ROWS[i] for i in (1, 2, 3)]):
        cycle = 2 if s == "C1CCCCCCC1" else 0
        assert g.y.shape == (1,)
        assert float(g.y) == pytest.approx(zinc_target(logp, sa, cycle), abs=1e-5)
        assert g.edge_attr.dtype == torch.long and g.x.shape == (g.num_nodes, 1)
    assert val.y.tolist() == [0.0, 1.0]
    # raw/ is a copy of the source; processed/ next to it.
    for name in OFFLINE_FILES:
        assert (tmp_path / "root" / "ZINC-12k" / "raw" / name).is_file()
    assert (tmp_path / "root" / "ZINC-12k" / "processed" / "offline" / "train.pt").is_file()


@pytest.mark.parametrize("victim", ["smiles_score.csv", f"{OFFICIAL}/test.index", "jtnn_zinc/valid.txt"])
def test_zinc_missing_source_file_is_named(tmp_path, victim):
    source = _make_source(tmp_path)
    (source / "zinc12k" / victim).unlink()
    with pytest.raises(FileNotFoundError, match=victim.split("/")[-1]):
        TinyZINC(tmp_path / "root", "train", source=source, log=False)


@pytest.mark.parametrize("victim, content, match", [
    (f"{OFFICIAL}/val.pt", b"not a torch file", "val.pt"),
    (f"{OFFICIAL}/atom_dict.pickle", b"garbage", "atom_dict.pickle"),
    (f"{OFFICIAL}/test.index", b"1,x,3", "test.index"),
    (f"{OFFICIAL}/test.index", b"2,1", "test.index"),  # points at the wrong molecules
    ("smiles_score.csv", b"SMILES,SA,logp\nCCO,abc,1.0\n", "smiles_score.csv"),
    ("smiles_score.csv", b"SMILES,SA,logp\nCCO,1.0,1.0\n", "smiles_score.csv"),  # too few rows
    ("smiles_score.csv", b"SMILES,SA,logp\nC1CC,1,1\nCC,1,1\nC,1,1\nC,1,1\nC,1,1\n", "smiles_score.csv"),
])
def test_zinc_corrupt_file_is_named(tmp_path, victim, content, match):
    source = _make_source(tmp_path)
    (source / "zinc12k" / victim).write_bytes(content)
    with pytest.raises(DatasetFileError, match=match):
        TinyZINC(tmp_path / "root", "train", source=source, log=False)
    # Nothing half-processed is left to be picked up by the next run.
    assert not (tmp_path / "root" / "ZINC-12k" / "processed" / "offline" / "train.pt").exists()


def test_zinc_refuses_code_in_the_legacy_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    source = _make_source(tmp_path)
    torch.save((Evil(), {}), source / "zinc12k" / OFFICIAL / "test.pt")
    with pytest.raises(DatasetFileError, match="test.pt.*print is not allowed"):
        TinyZINC(tmp_path / "root", "train", source=source, log=False)


def test_zinc_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        ZINC12k(tmp_path, split="validation")
    with pytest.raises(FileNotFoundError, match="zinc12k"):
        ZINC12k(tmp_path, source=tmp_path / "nowhere", online=False)


@pytest.mark.slow
def test_zinc_full_offline_build(shared_data, tmp_path):
    source = shared_data("zinc12k").parent
    sizes = {s: len(ZINC12k(tmp_path, s, source=source, log=False)) for s in ("train", "val", "test")}
    assert sizes == {"train": 9923, "val": 1000, "test": 1000}
    train = ZINC12k(tmp_path, "train", source=source)
    assert int(train.x.max()) < 28 and set(train.edge_attr.unique().tolist()) <= {1, 2, 3}
    assert abs(float(train.y.mean())) < 0.2 and 1.5 < float(train.y.std()) < 2.5


def test_zinc_online_mode_delegates_to_pyg_zinc(tmp_path, monkeypatch):
    """Without local files, ZINC12k is PyG's ZINC(subset=True); a stand-in
    for PyG's class records the calls (no network in tests)."""
    import torch_geometric.datasets

    calls = []

    class FakeZINC(InMemoryDataset):
        def __init__(self, root, subset=False, split="train"):
            calls.append((root, subset, split))
            self.split = split
            super().__init__(root, log=False)
            self.load(f"{self.processed_dir}/{split}.pt")

        @property
        def processed_dir(self):
            return f"{self.root}/subset/processed"

        @property
        def processed_file_names(self):
            return ["train.pt", "val.pt", "test.pt"]

        def process(self):
            for k, s in enumerate(("train", "val", "test")):
                graphs = [Data(x=torch.zeros(2, 1, dtype=torch.long), edge_index=torch.tensor([[0, 1], [1, 0]]),
                               edge_attr=torch.tensor([1, 1]), y=torch.tensor([float(k + i)])) for i in range(k + 2)]
                self.save(graphs, f"{self.processed_dir}/{s}.pt")

    monkeypatch.setattr(torch_geometric.datasets, "ZINC", FakeZINC)
    val = ZINC12k(tmp_path, "val", source=tmp_path / "no_local_files", log=False)
    assert val.online and val.result_name == "ZINC-12k"
    assert len(val) == 3 and val.y.tolist() == [1.0, 2.0, 3.0]
    assert all(subset for _, subset, _ in calls)
    assert {s for _, _, s in calls} == {"train", "val", "test"}

"""OGB molecular datasets: offline loading of the official directories, the
rebuilt scaffold split against the official splits, featurization against
OGB's, the RDKit fallback, molhiv from a CSV, bad input."""
import csv
import gzip
import shutil

import pandas as pd
import pytest
import torch
from rdkit import Chem

from graphequi.datasets import DatasetFileError, OGBMolDataset, evaluator_for, get_dataset
from graphequi.datasets.ogb_mol import (mol_from_smiles, mol_to_ogb_graph, murcko_scaffold,
                                        scaffold_split)

HIV_REJECTED_ROWS = (137, 987, 12882, 18293, 30784, 30785, 35728)


def test_ogb_molesol_offline_copy_loads(shared_data, tmp_path):
    source = shared_data("ogbg_molesol").parent
    dataset = OGBMolDataset(tmp_path, "ogbg-molesol", source=source, log=False)
    assert len(dataset) == 1128 and dataset.eval_metric == "rmse" and dataset.num_tasks == 1
    split = dataset.get_idx_split()
    assert {k: len(v) for k, v in split.items()} == {"train": 902, "valid": 113, "test": 113}
    assert sorted(torch.cat(list(split.values())).tolist()) == list(range(1128))
    g = dataset[0]
    assert g.x.shape[1] == 9 and g.edge_attr.shape[1] == 3 and g.y.shape == (1, 1)
    assert g.y.dtype == torch.float32 and g.x.dtype == torch.long
    assert (tmp_path / "ogbg-molesol" / "raw" / "ogbg_molesol" / "RELEASE_v1.txt").is_file()
    # The trainer's view: parts and the official evaluator.
    parts = get_dataset("ogbg-molesol", tmp_path, source=source, log=False)
    y = parts.test.y
    pred = y + 0.5
    expected = evaluator_for("ogbg-molesol").eval({"y_true": y.numpy(), "y_pred": pred.numpy()})["rmse"]
    assert parts.evaluate(y, pred) == pytest.approx(expected) == pytest.approx(0.5)
    assert not parts.higher_is_better


@pytest.mark.parametrize("folder", ["ogbg_molesol", "ogbg_molfreesolv", "ogbg_molbace", "ogbg_molbbbp"])
def test_scaffold_split_reproduces_official_ogb_splits(shared_data, folder):
    path = shared_data(folder)
    smiles = pd.read_csv(path / "mapping" / "mol.csv.gz")["smiles"]
    split = scaffold_split([murcko_scaffold(*mol_from_smiles(s)) for s in smiles])
    for part in ("train", "valid", "test"):
        official = pd.read_csv(path / "split" / "scaffold" / f"{part}.csv.gz", header=None)[0]
        assert sorted(split[part].tolist()) == sorted(official.tolist())


def test_featurization_matches_official_ogb_features(shared_data, tmp_path):
    from ogb.utils import smiles2graph
    source = shared_data("ogbg_molbace").parent
    dataset = OGBMolDataset(tmp_path, "ogbg-molbace", source=source, log=False)
    smiles = pd.read_csv(source / "ogbg_molbace" / "mapping" / "mol.csv.gz")["smiles"]
    for i in range(0, len(dataset), 30):
        ours = mol_to_ogb_graph(mol_from_smiles(smiles[i])[0])
        ref = dataset[i]
        assert torch.equal(ours.x, ref.x)
        assert torch.equal(ours.edge_index, ref.edge_index)
        assert torch.equal(ours.edge_attr, ref.edge_attr)
        fresh = smiles2graph(smiles[i])
        assert torch.equal(ours.x, torch.from_numpy(fresh["node_feat"]))
        assert torch.equal(ours.edge_attr, torch.from_numpy(fresh["edge_feat"]))


def test_mol_to_ogb_graph_without_bonds():
    g = mol_to_ogb_graph(Chem.MolFromSmiles("[Na+]"))
    assert g.x.shape == (1, 9) and g.edge_index.shape == (2, 0) and g.edge_attr.shape == (0, 3)


def test_rejected_hiv_smiles_use_the_lenient_fallback(shared_data):
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
    with open(shared_data("moleculenet_hiv", "HIV_with_index.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for i in HIV_REJECTED_ROWS:
        assert Chem.MolFromSmiles(rows[i]["smiles"]) is None  # current RDKit rejects it
        mol, lenient = mol_from_smiles(rows[i]["smiles"])
        assert lenient
        g = mol_to_ogb_graph(mol)
        assert g.num_nodes == Chem.MolFromSmiles(rows[i]["smiles"], sanitize=False).GetNumAtoms()
        assert (g.x < torch.tensor(get_atom_feature_dims())).all()
        assert (g.edge_attr < torch.tensor(get_bond_feature_dims())).all()
        assert murcko_scaffold(mol, lenient)  # every one of them has a ring system
    mol, lenient = mol_from_smiles("CCO")
    assert not lenient
    with pytest.raises(ValueError, match="cannot parse"):
        mol_from_smiles("C1CC(")


def test_scaffold_split_algorithm_on_synthetic_scaffolds():
    # 20 molecules: groups a(6) b(4) c(3) d(2) e(2) and singletons x, y, z, shuffled.
    scaffolds = list("aaaaaabbbbcccddee") + ["x", "y", "z"]
    order = [3, 0, 5, 17, 1, 10, 2, 4, 6, 11, 7, 8, 12, 19, 13, 14, 15, 16, 18, 9]
    shuffled = [scaffolds[i] for i in order]
    first = {s: shuffled.index(s) for s in set(shuffled)}
    split = scaffold_split(shuffled)
    # Cut-offs 16 and 18. Groups by (size, first index) descending: a, b, c (13),
    # then of d/e the one first seen later (15); the other would pass 16 -> valid;
    # the singleton first seen latest still fits train (16); the rest -> test.
    later_pair, earlier_pair = sorted("de", key=first.get, reverse=True)
    singles = sorted("xyz", key=first.get, reverse=True)
    parts = {k: {shuffled[i] for i in v.tolist()} for k, v in split.items()}
    assert parts == {"train": {"a", "b", "c", later_pair, singles[0]},
                     "valid": {earlier_pair}, "test": set(singles[1:])}
    assert {k: len(v) for k, v in split.items()} == {"train": 16, "valid": 2, "test": 2}
    # Groups appear largest first, each sorted.
    train = split["train"].tolist()
    assert train[:6] == sorted(i for i, s in enumerate(shuffled) if s == "a")
    assert train[6:10] == sorted(i for i, s in enumerate(shuffled) if s == "b")
    assert sorted(torch.cat(list(split.values())).tolist()) == list(range(20))


def _tiny_hiv_source(tmp_path, rows):
    folder = tmp_path / "source" / "moleculenet_hiv"
    folder.mkdir(parents=True)
    with open(folder / "HIV_with_index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "smiles", "activity", "HIV_active"])
        for i, (s, y) in enumerate(rows):
            w.writerow([i, s, "CI", y])
    return tmp_path / "source"


TINY_HIV = [("c1ccccc1C", 0), ("c1ccccc1CC", 1), ("c1ccccc1O", 0), ("C1CCCCC1N", 0),
            ("C1CCCCC1O", 1), ("c1ccncc1", 0), ("CCO", 0), ("CCN", 0), ("c1ccc2ccccc2c1", 1),
            ("O=C1O[Al]23(OC1=O)(OC(=O)C(=O)O2)OC(=O)C(=O)O3", 0)]  # the last needs the fallback


def test_molhiv_from_tiny_csv(tmp_path):
    source = _tiny_hiv_source(tmp_path, TINY_HIV)
    dataset = OGBMolDataset(tmp_path / "root", "ogbg-molhiv", source=source, log=False)
    assert dataset.from_csv and len(dataset) == len(TINY_HIV)
    assert dataset.y.view(-1).tolist() == [y for _, y in TINY_HIV] and dataset.y.dtype == torch.long
    expected = scaffold_split([murcko_scaffold(*mol_from_smiles(s)) for s, _ in TINY_HIV])
    split = dataset.get_idx_split()
    assert all(torch.equal(split[k], expected[k]) for k in expected)
    parts = get_dataset("ogbg-molhiv", tmp_path / "root", source=source, log=False)
    assert parts.metric == "rocauc" and parts.higher_is_better
    assert "rebuilt" in parts.result_name
    y_true = torch.tensor([[0], [1], [0], [1]])
    assert parts.evaluate(y_true, torch.tensor([[0.1], [0.9], [0.2], [0.8]])) == 1.0


@pytest.mark.parametrize("content, match", [
    ("index,smiles,activity,HIV_active\n0,CCO,CI,2\n", "row 2"),
    ("index,smiles,activity,HIV_active\n0,CCO,CI,0\n5,CCN,CI,0\n", "row 3"),
    ("index,smiles,activity,HIV_active\n0,C1CC(,CI,0\n", "row 2"),
    ("index,smile,activity\n0,CCO,CI\n", "header"),
    ("index,smiles,activity,HIV_active\n", "no data rows"),
])
def test_molhiv_corrupt_csv_is_named(tmp_path, content, match):
    source = _tiny_hiv_source(tmp_path, [])
    (source / "moleculenet_hiv" / "HIV_with_index.csv").write_text(content)
    with pytest.raises(DatasetFileError, match=f"HIV_with_index.csv.*{match}"):
        OGBMolDataset(tmp_path / "root", "ogbg-molhiv", source=source, log=False)


def _ogb_copy(shared_data, tmp_path, folder="ogbg_molfreesolv"):
    dst = tmp_path / "source" / folder
    shutil.copytree(shared_data(folder), dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


@pytest.mark.parametrize("victim", ["RELEASE_v1.txt", "raw/edge.csv.gz", "split/scaffold/valid.csv.gz"])
def test_ogb_missing_file_is_named(shared_data, tmp_path, victim):
    folder = _ogb_copy(shared_data, tmp_path)
    (folder / victim).unlink()
    with pytest.raises(FileNotFoundError, match=victim.split("/")[-1]):
        OGBMolDataset(tmp_path / "root", "ogbg-molfreesolv", source=folder.parent, log=False)


def test_ogb_corrupt_files_are_named(shared_data, tmp_path):
    folder = _ogb_copy(shared_data, tmp_path)
    data = (folder / "raw" / "node-feat.csv.gz").read_bytes()
    (folder / "raw" / "node-feat.csv.gz").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DatasetFileError, match="node-feat.csv.gz"):
        OGBMolDataset(tmp_path / "root", "ogbg-molfreesolv", source=folder.parent, log=False)
    # A valid gzip whose content disagrees with the other files.
    (folder / "raw" / "node-feat.csv.gz").write_bytes(data)
    (folder / "raw" / "num-node-list.csv.gz").write_bytes(gzip.compress(b"3\n3\n"))
    with pytest.raises(DatasetFileError, match="ogbg_molfreesolv"):
        OGBMolDataset(tmp_path / "root2", "ogbg-molfreesolv", source=folder.parent, log=False)


def test_ogb_bad_names(tmp_path):
    with pytest.raises(ValueError, match="unknown OGB molecular dataset"):
        OGBMolDataset(tmp_path, "ogbg-molesoll")
    with pytest.raises(ValueError, match="unknown OGB molecular dataset"):
        evaluator_for("ogbg-ppa")
    with pytest.raises(ValueError, match="unknown dataset"):
        get_dataset("molesol", tmp_path)
    with pytest.raises(FileNotFoundError, match="moleculenet_hiv"):
        OGBMolDataset(tmp_path, "ogbg-molhiv", source=tmp_path / "nowhere", online=False)


@pytest.mark.slow
def test_molhiv_full_rebuild_split_sizes(shared_data, tmp_path):
    """41,127 molecules through RDKit: minutes on 2 cores, hence slow."""
    source = shared_data("moleculenet_hiv").parent
    dataset = OGBMolDataset(tmp_path, "ogbg-molhiv", source=source, log=False)
    assert len(dataset) == 41127 and int(dataset.y.sum()) == 1443
    assert {k: len(v) for k, v in dataset.get_idx_split().items()} == \
        {"train": 32901, "valid": 4113, "test": 4113}


def test_ogb_online_mode_lets_ogb_download(shared_data, tmp_path, monkeypatch):
    """Without local files the OGB class downloads into ``raw/``; a stand-in
    "downloads" by copying the shared directory (no network in tests)."""
    import ogb.graphproppred
    real_class = ogb.graphproppred.PygGraphPropPredDataset
    calls = []

    def downloading(name, root):
        calls.append((name, root))
        target = f"{root}/ogbg_molesol"
        if not (tmp_path / "downloaded").exists():
            shutil.copytree(shared_data("ogbg_molesol"), target, dirs_exist_ok=True)
            for p in (tmp_path / "root").rglob("*"):
                p.chmod(0o755 if p.is_dir() else 0o644)
            (tmp_path / "downloaded").touch()
        return real_class(name, root=root)

    monkeypatch.setattr(ogb.graphproppred, "PygGraphPropPredDataset", downloading)
    dataset = OGBMolDataset(tmp_path / "root", "ogbg-molesol", source=tmp_path / "nowhere", log=False)
    assert dataset.online and len(dataset) == 1128
    assert calls and all(root == str(tmp_path / "root" / "ogbg-molesol" / "raw") for _, root in calls)

"""GIN-format TU datasets: parsing, one-hot tags / degrees, folds, bad input."""
import pytest
import torch

from graphequi.datasets import DatasetFileError, GINTUDataset, get_dataset
from graphequi.datasets.tu import canonical_tu_name, read_gin_txt

# Graph 0: triangle 0-1-2 plus pendant 3 (label 1); graph 1: edge (label -1);
# graph 2: path 0-1-2 (label 1). Tags 7, 3, 5.
TINY = """3
4 1
7 2 1 2
3 3 0 2 3
7 2 0 1
5 1 1
2 -1
3 1 1
3 1 0
3 1
5 1 1
5 2 0 2
7 1 1
"""
FOLDS = {1: ([0, 1], [2]), 2: ([2, 0], [1])}


def _source(tmp_path, name="MUTAG", text=TINY, folds=None):
    folder = tmp_path / "source" / "tu_gin_format" / name
    (folder / "10fold_idx").mkdir(parents=True)
    (folder / f"{name}.txt").write_text(text)
    folds = folds or FOLDS
    for k in range(1, 11):
        train, test = folds.get(k, ([0, 2], [1]))
        (folder / "10fold_idx" / f"train_idx-{k}.txt").write_text("".join(f"{i}\n" for i in train))
        (folder / "10fold_idx" / f"test_idx-{k}.txt").write_text("".join(f"{i}\n" for i in test))
    return tmp_path / "source"


def test_tiny_gin_file_tags_edges_labels_and_folds(tmp_path):
    dataset = GINTUDataset(tmp_path / "root", "MUTAG", source=_source(tmp_path), log=False)
    assert len(dataset) == 3 and dataset.num_classes == 2
    g0 = dataset[0]
    # Tag columns in sorted order 3, 5, 7.
    assert g0.x.tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert g0.edge_index.t().tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [1, 3], [2, 0], [2, 1], [3, 1]]
    assert dataset.y.tolist() == [1, 0, 1]  # labels -1 -> 0, 1 -> 1
    train, test = dataset.fold_split(0)
    assert train.tolist() == [0, 1] and test.tolist() == [2]
    train, test = dataset.fold_split(1)
    assert train.tolist() == [2, 0] and test.tolist() == [1]
    parts = get_dataset("mutag", tmp_path / "root", source=tmp_path / "source", fold=1, log=False)
    assert len(parts.train) == 2 and parts.val is parts.test and parts.metric == "accuracy"
    assert parts.evaluate(torch.tensor([0]), torch.tensor([[2.0, 1.0]])) == 1.0


def test_imdb_gets_one_hot_degrees(tmp_path):
    source = _source(tmp_path, "IMDBBINARY")
    dataset = GINTUDataset(tmp_path / "root", "IMDB-B", source=source, log=False)
    # Degrees that occur: 1, 2, 3 -> columns 0, 1, 2.
    assert dataset[0].x.tolist() == [[0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert dataset[1].x.tolist() == [[1, 0, 0], [1, 0, 0]]
    assert dataset[2].x.argmax(1).tolist() == [0, 1, 0]


def test_read_gin_txt_symmetrizes(tmp_path):
    path = tmp_path / "X.txt"
    path.write_text("1\n3 0\n1 1 1\n1 0\n1 1 1\n")  # node 1 lists no neighbors
    (graph,) = read_gin_txt(path)
    assert graph["edges"] == [(0, 1), (2, 1)]
    folder = _source(tmp_path, "PTC", text="1\n3 0\n1 1 1\n1 0\n1 1 1\n", folds={k: ([0], [0]) for k in range(1, 11)})
    with pytest.raises(DatasetFileError, match="partition"):  # train and test overlap
        GINTUDataset(tmp_path / "root", "PTC", source=folder, log=False)


@pytest.mark.parametrize("text, match", [
    (TINY.replace("5 1 1\n2 -1", "5 1 9\n2 -1"), "line 6: node 3 of graph 0 has a neighbor outside"),
    (TINY[: TINY.index("3 1\n5 1 1")], "ends early"),
    (TINY.replace("3 1 0\n", "3 2 0\n"), "lists 1 of its 2 neighbors"),
    (TINY + "1 0\n", "unexpected content"),
    ("x\n", "line 1"),
    (TINY.replace("7 2 1 2", "7 2 1 2 0.5"), "different numbers of attributes"),
])
def test_corrupt_gin_file_is_named(tmp_path, text, match):
    source = _source(tmp_path, text=text)
    with pytest.raises(DatasetFileError, match=f"MUTAG.txt.*{match}"):
        GINTUDataset(tmp_path / "root", "MUTAG", source=source, log=False)


@pytest.mark.parametrize("folds, match", [
    ({3: ([0, 1], [7])}, "test_idx-3.txt.*0..2"),
    ({3: ([0, 1], ["a"])}, "test_idx-3.txt"),
    ({3: ([0, 0], [2])}, "train_idx-3.txt.*repeats"),
    ({3: ([0], [2])}, "fold 3"),
])
def test_corrupt_fold_file_is_named(tmp_path, folds, match):
    source = _source(tmp_path, folds=folds)
    with pytest.raises(DatasetFileError, match=match):
        GINTUDataset(tmp_path / "root", "MUTAG", source=source, log=False)


def test_missing_files_and_bad_arguments(tmp_path):
    source = _source(tmp_path)
    (source / "tu_gin_format" / "MUTAG" / "10fold_idx" / "test_idx-10.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test_idx-10.txt"):
        GINTUDataset(tmp_path / "root", "MUTAG", source=source, log=False)
    with pytest.raises(FileNotFoundError, match="NCI1"):
        GINTUDataset(tmp_path / "root", "NCI1", source=source, log=False)
    with pytest.raises(ValueError, match="unknown GIN TU dataset"):
        GINTUDataset(tmp_path / "root", "ENZYMES", source=source)
    assert canonical_tu_name("imdb-m") == "IMDBMULTI" and canonical_tu_name("ptc_mr") == "PTC"
    dataset = GINTUDataset(tmp_path / "root2", "MUTAG", source=_source(tmp_path / "b"), log=False)
    with pytest.raises(ValueError, match="fold"):
        dataset.fold_split(10)


@pytest.mark.parametrize("name, size, classes, test_size", [("MUTAG", 188, [63, 125], 18),
                                                          ("PTC", 344, [192, 152], 34)])
def test_real_gin_datasets(shared_data, tmp_path, name, size, classes, test_size):
    source = shared_data("tu_gin_format", name).parent.parent
    dataset = GINTUDataset(tmp_path, name, source=source, log=False)
    assert len(dataset) == size and dataset.y.bincount().tolist() == classes
    assert (dataset.x.sum(1) == 1).all()
    tests = []
    for fold in range(10):
        train, test = dataset.fold_split(fold)
        assert test.numel() == test_size and train.numel() + test.numel() == size
        tests.append(test)
    # DGCNN's test folds are disjoint (10 x floor(N/10) graphs; the remainder is always in train).
    assert torch.cat(tests).unique().numel() == 10 * test_size
    # Undirected, no self-loops.
    ei = dataset[0].edge_index
    assert set(map(tuple, ei.t().tolist())) == set(map(tuple, ei.flip(0).t().tolist()))
    assert not (ei[0] == ei[1]).any()

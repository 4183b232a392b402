import argparse

import networkx as nx
import numpy as np
import pytest
import torch
from ogb import graphproppred
from sklearn import metrics
from torch_geometric.utils import to_networkx

from graphequi.train import TrainConfig, add_train_arguments, config_from_args, synthetic_count_graphs
from graphequi.train.config import parse_seeds
from graphequi.datasets.metrics import METRICS, average_precision
from graphequi.train.metrics import loss_fn, roc_auc, score
from graphequi.train.models import MODELS
from graphequi.train.tasks import Task, load_task


def parse(argv):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: zinc\nmodel: ppgn++\nepochs: 7\nlr: 0.01\n"
                    "model_kwargs: {hidden_channels: 95, num_layers: 8}\n")
    cfg = parse(["--config", str(path), "--epochs", "3", "--seeds", "0-2,5",
                 "--model-arg", "num_layers=6", "--model-arg", "readout=sum"])
    assert (cfg.dataset, cfg.model, cfg.epochs, cfg.lr) == ("zinc", "ppgn++", 3, 0.01)
    assert cfg.seeds == (0, 1, 2, 5)
    assert cfg.batch_size == TrainConfig.batch_size  # default kept
    assert cfg.model_options == {"hidden_channels": 95, "num_layers": 6, "readout": "sum"}


def test_config_is_an_immutable_hashable_value():
    a = TrainConfig("zinc", "gin", model_kwargs={"num_layers": 1, "hidden_channels": [1, 2]})
    b = TrainConfig("zinc", "gin", model_kwargs={"hidden_channels": [1, 2], "num_layers": 1})
    assert a == b and hash(a) == hash(b)
    with pytest.raises(Exception):
        a.epochs = 3
    assert TrainConfig.from_dict(a.to_dict()) == a


@pytest.mark.parametrize("bad, match", [
    (dict(epochs=0), "epochs"), (dict(seeds="1,1"), "repeated"), (dict(lr=-1.0), "lr"),
    (dict(device="tpu"), "device"), (dict(lr_factor=1.5), "lr_factor"), (dict(subset=0), "subset"),
    (dict(model="nope"), "unknown model 'nope'; known: ppgn"),
    (dict(model_kwargs={"hidden_channel": 8}), "PolyGIN does not take 'hidden_channel'; its model arguments "
                                                "are aggr, dropout, fused, hidden_channels"),
    (dict(model_kwargs={"node_vocab": 8}), "PolyGIN does not take 'node_vocab'"),  # set from the task
    (dict(dataset="zinc-250k"), "unknown dataset 'zinc-250k'; available: zinc, ogbg-molesol"),
    (dict(dataset="rmd17-water"), "unknown dataset 'rmd17-water'"),
    (dict(dataset="count", target="pentagon"), "unknown substructure target 'pentagon'"),
])
def test_invalid_config_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"dataset": "zinc", "model": "gin", **bad})


def test_cli_reports_config_mistakes_in_one_line():
    from graphequi.cli.main import main

    with pytest.raises(SystemExit, match="graphequi train: invalid training config: unknown model 'nope'"):
        main(["train", "--dataset", "zinc", "--model", "nope"])
    with pytest.raises(SystemExit, match="graphequi train: --model-arg expects KEY=VALUE"):
        main(["train", "--dataset", "zinc", "--model", "gin", "--model-arg", "hidden"])
    with pytest.raises(SystemExit, match="graphequi train: invalid training config: epochs"):
        main(["train", "--dataset", "zinc", "--model", "gin", "--epochs", "0"])
    with pytest.raises(SystemExit, match="graphequi train: invalid training config: unknown dataset 'nope'"):
        main(["train", "--dataset", "nope", "--model", "gin"])


@pytest.mark.parametrize("name", ["ZINC-12k", "ogbg-molhiv", "imdb-b", "NCI1", "count-c4", "count",
                                  "synthetic-count", "rmd17-Aspirin"])
def test_every_loadable_dataset_spelling_is_a_valid_config(name):
    target = "triangle" if name == "count" else None
    assert TrainConfig(name, "gin", target=target).dataset == name


def test_every_model_row_takes_its_own_documented_arguments():
    from graphequi.train.models import MODELS

    for name, row in MODELS.items():
        accepted = row.accepted_arguments()
        assert "hidden_channels" in accepted or "hidden" in accepted, name
        assert not {"out_channels", "node_vocab", "poly_channels"} & set(accepted), name
        TrainConfig("zinc", name, model_kwargs={key: None for key in accepted})  # no error
    assert "num_hops" in MODELS["spen"].accepted_arguments()
    assert "lcm_cell" in MODELS["gin-lcm"].accepted_arguments()


def test_canonical_dataset_names_are_what_get_dataset_lists():
    from graphequi.datasets import canonical_dataset_name, dataset_names

    assert all(canonical_dataset_name(n) == n for n in dataset_names())
    assert canonical_dataset_name(" Zinc12k ") == "zinc"
    with pytest.raises(TypeError, match="string"):
        canonical_dataset_name(3)


def test_unknown_yaml_key_and_missing_dataset_raise(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: zinc\nmodel: gin\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        parse(["--config", str(path)])
    with pytest.raises(ValueError, match="--dataset is required"):
        parse(["--model", "gin"])
    with pytest.raises(FileNotFoundError):
        parse(["--config", str(tmp_path / "missing.yaml")])


def test_parse_seeds():
    assert parse_seeds("0,1,2") == (0, 1, 2)
    assert parse_seeds("0-3") == (0, 1, 2, 3)
    assert parse_seeds(4) == (4,)


def test_synthetic_counts_match_networkx():
    for g in synthetic_count_graphs(12, seed=3):
        graph = to_networkx(g, to_undirected=True)
        triangles = sum(nx.triangles(graph).values()) // 3
        c4 = sum(1 for c in nx.simple_cycles(graph, length_bound=4) if len(c) == 4)
        assert g.y.tolist() == [[triangles, c4]]
    a, b = synthetic_count_graphs(5, seed=7), synthetic_count_graphs(5, seed=7)
    assert all(torch.equal(x.edge_index, y.edge_index) for x, y in zip(a, b))


def test_roc_auc_is_the_mean_over_tasks_of_sklearns_on_the_labeled_entries():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, 3)).astype(float)
    s = np.round(rng.normal(size=(200, 3)) + y, 1)  # rounding makes ties
    y[rng.random((200, 3)) < 0.1] = np.nan
    expected = np.mean([metrics.roc_auc_score(y[~np.isnan(y[:, t]), t], s[~np.isnan(y[:, t]), t])
                        for t in range(3)])
    assert roc_auc(y, s) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.ones((5, 1)), np.zeros((5, 1)))


def test_ogb_tasks_are_scored_by_the_ogb_evaluator():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(100, 1)).astype(float)
    pred = rng.normal(size=(100, 1)) + y
    task = Task("ogbg-molhiv", [], [], [], kind="binary", num_outputs=1, metric="rocauc", loss="bce",
                result_name="ogbg-molhiv", ogb_name="ogbg-molhiv")
    expected = graphproppred.Evaluator("ogbg-molhiv").eval({"y_true": y, "y_pred": pred})["rocauc"]
    assert score(task, y, pred) == {"rocauc": expected}
    assert expected == pytest.approx(roc_auc(y, pred))


def test_losses_skip_unlabeled_targets():
    out = torch.tensor([[0.5, 2.0], [1.0, -1.0]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    assert loss_fn("l1", out, y).item() == pytest.approx((0.5 + 1.0 + 2.0) / 3)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([0.5, 1.0, -1.0]), torch.tensor([1.0, 0.0, 1.0]))
    assert loss_fn("bce", out, y).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="unknown loss"):
        loss_fn("hinge", out, y)


def test_average_precision_is_the_ogb_evaluators():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=(150, 128)).astype(float)  # molpcba's 128 tasks
    pred = rng.normal(size=(150, 128)) + y
    y[rng.random((150, 128)) < 0.2] = np.nan
    expected = graphproppred.Evaluator("ogbg-molpcba").eval({"y_true": y, "y_pred": pred})["ap"]
    assert average_precision(y, pred) == pytest.approx(expected, abs=1e-12)
    assert METRICS["ap"].higher_is_better and not METRICS["rmse"].higher_is_better


def test_every_model_of_the_table_gets_exactly_its_features_and_is_in_the_help(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    text = " ".join(parser.format_help().split())
    keys = {"node": "poly_x", "edge": "poly_edge_attr", "pair": "poly_pair_attr"}
    for name, model in MODELS.items():
        assert f"{name}: {model.description}" in text
        cfg = TrainConfig("synthetic-count", name, subset=4, progress=False, root=str(tmp_path))
        graph = load_task(cfg).train[0]
        assert {level for level, key in keys.items() if key in graph} == set(model.poly_levels), name


def test_load_task_validates_every_graph_where_data_enters(monkeypatch, tmp_path):
    from torch_geometric.data import Data

    from graphequi.train import tasks

    good = Data(x=torch.zeros(3, 1), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.zeros(1, 1))
    bad = Data(x=torch.zeros(3, 1), edge_index=torch.tensor([[0, 1], [1, 5]]), y=torch.zeros(1, 1))
    monkeypatch.setattr(tasks, "_loader_for", lambda name: lambda cfg: Task(
        "toy", [good, good], [good], [good, bad], kind="regression", num_outputs=1, metric="mae",
        loss="l1", result_name="toy"))
    cfg = TrainConfig(dataset="synthetic-count", model="gin", root=str(tmp_path), out=str(tmp_path))
    with pytest.raises(IndexError, match="test graph 1: edge_index contains node 5"):
        tasks.load_task(cfg)

"""Every benchmark config is a valid TrainConfig whose model kwargs build the model."""
from pathlib import Path

import pytest
import torch
import yaml

from graphequi.train import TrainConfig, build_model, synthetic_count_graphs
from graphequi.train.tasks import Task

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "configs").glob("*.yaml"))


def fake_task(cfg: TrainConfig) -> Task:
    graphs = synthetic_count_graphs(2, seed=0)
    for g in graphs:
        n, e = g.num_nodes, g.edge_index.size(1)
        g.x = torch.zeros(n, 9, dtype=torch.long)
        g.edge_attr = torch.zeros(e, 3, dtype=torch.long)
        g.poly_x, g.poly_edge_attr, g.poly_pair_attr = torch.ones(n, 12), torch.ones(e, 12), torch.ones(n * n, 12)
    return Task(cfg.dataset, graphs, graphs, graphs, kind="regression", num_outputs=1, metric="mae",
                loss="l1", result_name="fake", node_vocab=(5,) * 9, edge_vocab=(4,) * 3)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_benchmark_config_is_valid(path):
    cfg = TrainConfig.from_dict(yaml.safe_load(path.read_text()))
    model = build_model(cfg.model, fake_task(cfg), **cfg.model_options)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_every_reported_benchmark_has_a_config():
    names = {p.stem for p in CONFIGS}
    assert {"count_ppgnpp", "count_gin", "zinc_ppgnpp_cpu", "zinc_ppgnpp_gpu", "molhiv_polygin",
            "molesol_polygin", "molbace_polygin"} <= names

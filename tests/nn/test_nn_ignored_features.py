"""A model built without an encoder for the features a graph carries warns
once per call instead of silently reading a constant input."""
import warnings

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphequi.nn import SPEN, PolyGIN, PolyGINE
from graphequi.transforms import EgoNetBags


def _graph(with_x=True, with_edge_attr=True):
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    data = Data(edge_index=edge_index, num_nodes=4)
    if with_x:
        data.x = torch.randn(4, 3)
    if with_edge_attr:
        data.edge_attr = torch.randn(6, 2)
    return data


def _ignored(model, data):
    """The data attributes ``model`` warns that it ignores."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.eval()(Batch.from_data_list([data]))
    return sorted(str(w.message).split(":")[0].split("data.")[1] for w in caught
                  if "ignores data." in str(w.message))


@pytest.mark.parametrize("kwargs, ignored", [
    ({}, ["edge_attr", "x"]),
    (dict(node_in_channels=3), ["edge_attr"]),
    (dict(node_in_channels=3, edge_in_channels=2), []),
])
def test_spen_names_the_features_it_ignores(kwargs, ignored):
    model = SPEN(1, hidden_channels=4, num_layers=1, **kwargs)
    assert _ignored(model, EgoNetBags()(_graph())) == ignored


def test_spen_without_features_on_a_featureless_graph_is_silent():
    model = SPEN(1, hidden_channels=4, num_layers=1)
    assert _ignored(model, EgoNetBags()(_graph(with_x=False, with_edge_attr=False))) == []


def test_polygin_warns_for_x_and_polygine_for_edge_attr_too():
    # PolyGIN has no edge input at all, so edge_attr is not a feature it could have read
    assert _ignored(PolyGIN(1, 4, 2), _graph()) == ["x"]
    assert _ignored(PolyGIN(1, 4, 2, node_in_channels=3), _graph()) == []
    assert _ignored(PolyGINE(1, 4, 2, node_in_channels=3, edge_in_channels=2), _graph()) == []

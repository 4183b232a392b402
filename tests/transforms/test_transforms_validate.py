"""ValidateGraph: the value checks that layers leave out of forward; the feature-key contract."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from graphequi.poly.keys import KEY_BY_LEVEL, row_major_pairs
from graphequi.transforms import PolynomialFeatures, ValidateGraph


def good(n=4):
    ring = torch.arange(n)
    edge_index = torch.stack([torch.cat([ring, (ring + 1) % n]), torch.cat([(ring + 1) % n, ring])])
    return Data(x=torch.randn(n, 2), edge_index=edge_index, edge_attr=torch.randn(2 * n, 1))


def test_a_good_graph_and_batch_pass_unchanged():
    g = good()
    assert ValidateGraph()(g).x is g.x
    ValidateGraph()(Batch.from_data_list([good(3), good(5)]))


@pytest.mark.parametrize("change, error, match", [
    (dict(edge_index=torch.tensor([[0, 1], [1, 7]])), IndexError, "node 7, out of range for 4 nodes"),
    (dict(edge_index=torch.tensor([[0, -2], [1, 0]])), IndexError, "negative node id"),
    (dict(edge_index=torch.tensor([[0.0, 1.0], [1.0, 0.0]])), TypeError, "int64 or int32"),
    (dict(edge_index=torch.tensor([0, 1, 2])), ValueError, r"shape \[2, E\]"),
    (dict(edge_attr=torch.randn(3, 1)), ValueError, "edge_attr has 3 rows for 8 edges"),
    (dict(poly_edge_attr=torch.randn(7, 2)), ValueError, "poly_edge_attr has 7 rows for 8 edges"),
    (dict(num_nodes=4, x=torch.randn(3, 2)), ValueError, "x has 3 rows for 4 nodes"),
    (dict(pos=torch.randn(5, 3)), ValueError, "pos has 5 rows for 4 nodes"),
    (dict(poly_x=torch.randn(2, 3)), ValueError, "poly_x has 2 rows for 4 nodes"),
    (dict(x=torch.full((4, 2), float("nan"))), ValueError, "data.x contains NaN"),
    (dict(poly_x=torch.tensor([[1.0], [float("inf")], [0.0], [0.0]])), ValueError, "poly_x contains NaN or inf"),
])
def test_each_bad_input_is_named(change, error, match):
    g = good()
    for key, value in change.items():
        g[key] = value
    with pytest.raises(error, match=match):
        ValidateGraph()(g)


def test_empty_graphs():
    empty = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    with pytest.raises(ValueError, match="0 nodes"):
        ValidateGraph()(empty)
    assert ValidateGraph(allow_empty=True)(empty).num_nodes == 0
    isolated = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=3)  # isolated nodes are fine
    ValidateGraph()(isolated)
    assert repr(ValidateGraph()) == "ValidateGraph(allow_empty=False)"


def test_max_num_nodes_bounds_every_graph_of_a_batch():
    batch = Batch.from_data_list([good(3), good(5)])
    ValidateGraph(max_num_nodes=5)(batch)
    with pytest.raises(ValueError, match="a graph has 5 nodes, more than max_num_nodes=4"):
        ValidateGraph(max_num_nodes=4)(batch)
    with pytest.raises(ValueError, match="a graph has 4 nodes, more than max_num_nodes=3"):
        ValidateGraph(max_num_nodes=3)(good(4))
    no_ptr = Data(**{k: batch[k] for k in batch.keys() if k != "ptr"})  # sizes from the batch vector
    ValidateGraph(max_num_nodes=5)(no_ptr)
    with pytest.raises(ValueError, match="a graph has 5 nodes, more than max_num_nodes=4"):
        ValidateGraph(max_num_nodes=4)(no_ptr)
    assert repr(ValidateGraph(max_num_nodes=4)) == "ValidateGraph(allow_empty=False, max_num_nodes=4)"


def test_polynomial_features_write_the_contract_keys_or_the_given_name():
    g = good(5)
    for level, key in KEY_BY_LEVEL.items():
        assert key in PolynomialFeatures("ppgn++", level=level)(g)
    custom = PolynomialFeatures("ppgn++", level="node", attr_name="triangles")(g)
    assert "triangles" in custom and KEY_BY_LEVEL["node"] not in custom
    torch.testing.assert_close(custom.triangles, PolynomialFeatures("ppgn++")(g)[KEY_BY_LEVEL["node"]])
    listed = PolynomialFeatures("ppgn++", level="node", attr_name="triangles").apply_to_dataset(
        [good(3), g], progress=False)
    torch.testing.assert_close(listed[1].triangles, custom.triangles)
    assert "attr_name='triangles'" in repr(PolynomialFeatures(attr_name="triangles"))
    assert "poly_x" not in g  # the input is not modified


def test_row_major_pairs_against_a_loop():
    counts = torch.tensor([3, 1, 2])
    expected = [(b, i, j) for b, n in enumerate(counts.tolist()) for i in range(n) for j in range(n)]
    layout = row_major_pairs(counts)
    assert list(zip(layout.graph.tolist(), layout.row.tolist(), layout.col.tolist())) == expected

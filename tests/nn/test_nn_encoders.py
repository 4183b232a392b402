"""FeatureEncoder: the shared input encoder of the graph-level models."""
import pytest
import torch

from graphequi.nn.encoders import FeatureEncoder


def test_categorical_encoder_is_the_sum_of_its_column_embeddings():
    enc = FeatureEncoder(4, vocab=[3, 5])
    x = torch.tensor([[0, 4], [2, 1], [1, 0]])
    expected = enc.embeddings[0].weight[x[:, 0]] + enc.embeddings[1].weight[x[:, 1]]
    assert torch.equal(enc(x), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.float64, torch.int64])
def test_real_features_are_mapped_in_the_encoders_precision(dtype, input_dtype):
    enc = FeatureEncoder(4, in_channels=3).to(dtype)
    x = torch.tensor([[1, 0, 2], [3, 1, 0]]).to(input_dtype)
    out = enc(x)
    assert out.dtype == dtype
    assert torch.equal(out, torch.nn.functional.linear(x.to(dtype), enc.lin.weight, enc.lin.bias))


def test_bad_input_is_named():
    real, cat = FeatureEncoder(4, in_channels=3, name="data.x"), FeatureEncoder(4, vocab=[3], name="data.x")
    with pytest.raises(ValueError, match=r"data.x: expected shape \[N, 3\]"):
        real(torch.ones(2, 2))
    with pytest.raises(ValueError, match="data.x: contains NaN"):
        real(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(TypeError, match="data.x: expected integer type ids"):
        cat(torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"outside \[0, 2\]"):
        cat(torch.tensor([[3]]))
    with pytest.raises(ValueError, match="outside"):
        cat(torch.tensor([[-1]]))
    with pytest.raises(ValueError, match="exactly one"):
        FeatureEncoder(4)


def test_a_float64_model_reads_float32_features():
    from torch_geometric.data import Batch, Data

    from graphequi.nn import SPEN, PolyGIN
    from graphequi.transforms import EgoNetBags

    g = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=4)
    spen = SPEN(1, hidden_channels=4, num_layers=1, node_in_channels=3).double().eval()
    gin = PolyGIN(1, 4, 2, node_in_channels=3).double().eval()
    assert spen(Batch.from_data_list([EgoNetBags()(g)])).dtype == torch.float64
    assert gin(Batch.from_data_list([g])).dtype == torch.float64

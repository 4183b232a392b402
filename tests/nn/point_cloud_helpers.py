"""Point clouds and small PONITA models shared by the PONITA and
frame-averaging tests (imported through tests/nn/conftest.py)."""
import torch
from torch_geometric.data import Data

from graphequi.geometry import fully_connected_graph
from graphequi.nn import Ponita

NODE_ATTRS = ("x", "pos", "vec")


def cloud(n=6, seed=0, vec=True, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    data = Data(pos=torch.randn(n, 3, generator=gen, dtype=dtype),
                x=torch.randn(n, 2, generator=gen, dtype=dtype),
                edge_index=fully_connected_graph(n))
    if vec:
        data.vec = torch.randn(n, 1, 3, generator=gen, dtype=dtype)
    return data


def model(num_ori, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("in_vectors", 1 if num_ori != 0 else 0)
    kw.setdefault("out_vectors", 1 if num_ori != 0 else 0)
    # layer_scale=None so that every layer contributes at full strength
    return Ponita(2, 16, 1, num_layers=2, num_ori=num_ori, layer_scale=None, **kw).double()


def with_points(data, points):
    """The cloud with positions points[:n] and vectors points[n:] - points[:n]:
    assert_e3_equivariant's rigid motion then rotates the vectors as well."""
    n = data.num_nodes
    out = data.clone()
    out.pos = points[:n]
    if "vec" in data:
        out.vec = (points[n:] - points[:n]).unsqueeze(1)
    return out


def points_of(data):
    return torch.cat([data.pos, data.pos + data.vec[:, 0]]) if "vec" in data else data.pos

r"""Bags of k-hop ego-networks, stored flat for size-bucketed dense layers.

For a graph with nodes :math:`V`, the ego-network of node :math:`r` is
:math:`S_r = \{r\} \cup \{v : d(r, v) \le k\}` with :math:`m_r = |S_r|`.
The centre is always a member (so an isolated node's ego-net is the node
itself, :math:`m_r = 1`) and is the first local node of its ego-net.
Subgraph :math:`r` of a graph is the ego-net of node :math:`r`, so subgraph
ids are node ids and PyG's collation keeps them aligned.

Stored per graph (all integer, on the graph's device):

* ``ego_size`` ``[N]`` -- :math:`m_r`;
* ``ego_node`` ``[sum_r m_r]`` -- the global node id of local node
  :math:`a` of ego-net :math:`r` at position ``offset_r + a``, with
  ``offset_r = sum_{s<r} m_s`` (local node 0 is :math:`r`; the others in
  increasing id);
* ``ego_pair_index`` ``[2, P]`` -- the :math:`P` distinct node pairs
  :math:`(u, v)` (the diagonal included) that lie together in at least one
  ego-net, in increasing ``u * N + v``;
* ``ego_pair`` ``[sum_r m_r^2]`` -- for the local pair :math:`(a, b)` of
  ego-net :math:`r`, at position ``pair_offset_r + a * m_r + b``, its column
  in ``ego_pair_index``;
* ``ego_edge_pair`` ``[E]`` -- the column of every edge :math:`(u, v)` of
  ``edge_index`` in ``ego_pair_index`` (edges lie in the ego-net of their
  source, so every edge has one).

``__inc__`` shifts node ids by ``num_nodes`` and pair ids by :math:`P`, so a
``DataLoader`` batch is the disjoint union of its graphs' bags.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .validate import validate_graph

__all__ = ["EgoNetBags", "EgoNetData", "EGO_KEYS"]

EGO_KEYS = ("ego_size", "ego_node", "ego_pair", "ego_pair_index", "ego_edge_pair")


class EgoNetData(Data):
    """A :class:`~torch_geometric.data.Data` carrying the ego-net bags written by
    :class:`EgoNetBags`, with the increments that keep them aligned in a batch."""

    def __inc__(self, key: str, value, *args, **kwargs):
        if key in ("ego_node", "ego_pair_index"):
            return self.num_nodes
        if key in ("ego_pair", "ego_edge_pair"):
            return self.ego_pair_index.size(1)
        if key == "ego_size":
            return 0
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value, *args, **kwargs):
        if key == "ego_pair_index":
            return -1
        if key in ("ego_size", "ego_node", "ego_pair", "ego_edge_pair"):
            return 0
        return super().__cat_dim__(key, value, *args, **kwargs)


def _closed_neighborhoods(edge_index: Tensor, num_nodes: int, num_hops: int) -> Tensor:
    """Sorted unique keys ``r * N + v`` of the pairs with ``d(r, v) <= num_hops``
    (``r`` included), by repeated expansion along the (symmetrised) edges."""
    n = num_nodes
    src = torch.cat([edge_index[0], edge_index[1]])
    dst = torch.cat([edge_index[1], edge_index[0]])
    order = torch.argsort(src, stable=True)
    src, dst = src[order], dst[order]
    ptr = torch.zeros(n + 1, dtype=torch.long, device=src.device)
    ptr[1:] = torch.cumsum(torch.bincount(src, minlength=n), 0)
    nodes = torch.arange(n, device=src.device)
    keys = nodes * n + nodes
    frontier = keys
    for _ in range(num_hops):
        r, v = frontier // n, frontier % n
        deg = ptr[v + 1] - ptr[v]
        owner = torch.repeat_interleave(torch.arange(v.numel(), device=v.device), deg)
        start = torch.repeat_interleave(ptr[v], deg)
        within = torch.arange(owner.numel(), device=v.device) - torch.repeat_interleave(
            torch.cumsum(deg, 0) - deg, deg)
        reached = r[owner] * n + dst[start + within]
        merged = torch.unique(torch.cat([keys, reached]))
        frontier = merged[~torch.isin(merged, keys)]
        keys = merged
        if frontier.numel() == 0:
            break
    return keys


@functional_transform("ego_net_bags")
class EgoNetBags(BaseTransform):
    r"""Attach the bag of ``num_hops``-hop ego-networks of every node (SPEN,
    Mitton & Murray-Smith, *Subgraph Permutation Equivariant Networks*).

    The graph is validated first (:func:`graphequi.transforms.validate_graph`:
    index range, no empty graph, finite features). Edges are read as
    undirected for the neighbourhoods; the edges themselves (and their
    features) are kept as given. The layout is described in the module
    docstring; :class:`graphequi.nn.SPEN` reads it.

    Args:
        num_hops (int): :math:`k \ge 1` (the paper uses 1).
        include_center (bool): must be ``True``: the centre is always a
            member of its ego-net. It makes the ego-net's root identifiable to
            the model (SPEN marks local node 0) and gives an isolated node a
            one-node ego-net instead of an empty one.

    Example:
        >>> from torch_geometric.data import Data
        >>> g = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=4)
        >>> out = EgoNetBags()(g)
        >>> out.ego_size.tolist()  # path 0-1-2 and the isolated node 3
        [2, 3, 2, 1]
        >>> out.ego_node.tolist()
        [0, 1, 1, 0, 2, 2, 1, 3]
    """

    def __init__(self, num_hops: int = 1, include_center: bool = True):
        if int(num_hops) != num_hops or num_hops < 1:
            raise ValueError(f"num_hops must be a positive integer, got {num_hops!r}")
        if not include_center:
            raise ValueError("include_center=False is not supported: the centre is always part of its "
                             "ego-net (it makes the root identifiable and isolated nodes non-empty)")
        self.num_hops = int(num_hops)
        self.include_center = True

    def forward(self, data: Data) -> EgoNetData:
        validate_graph(data)
        if isinstance(getattr(data, "ptr", None), Tensor):
            raise ValueError("EgoNetBags expects a single graph (apply it per graph, before batching)")
        n = int(data.num_nodes)
        edge_index = data.edge_index
        device = edge_index.device
        keys = _closed_neighborhoods(edge_index, n, self.num_hops)  # sorted by (r, v)
        r, v = keys // n, keys % n
        size = torch.bincount(r, minlength=n)
        # local order: the centre first, then the others by id (keys are sorted by (r, v))
        order = torch.argsort(r * 2 * n + torch.where(v == r, -1, v) + 1, stable=True)
        node = v[order]
        offset = torch.cumsum(size, 0) - size
        # local pairs (a, b) of every ego-net, row-major: position t of ego-net s
        sq = size * size
        owner = torch.repeat_interleave(torch.arange(n, device=device), sq)
        t = torch.arange(int(sq.sum()), device=device) - torch.repeat_interleave(torch.cumsum(sq, 0) - sq, sq)
        m = size[owner]
        u_glob = node[offset[owner] + t // m]
        v_glob = node[offset[owner] + t % m]
        pair_keys, pair = torch.unique(u_glob * n + v_glob, return_inverse=True)
        edge_keys = edge_index[0] * n + edge_index[1]
        edge_pair = torch.searchsorted(pair_keys, edge_keys)
        out = EgoNetData(**{k: data[k] for k in data.keys()})
        out.num_nodes = n
        out.ego_size = size
        out.ego_node = node
        out.ego_pair = pair
        out.ego_pair_index = torch.stack([pair_keys // n, pair_keys % n])
        out.ego_edge_pair = edge_pair
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_hops={self.num_hops}, include_center=True)"

r"""Equivariant polynomial features as a PyG transform."""
from __future__ import annotations

import copy
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import to_dense_adj, to_dense_batch

from graphequi.ops.checks import check_edge_index
from graphequi.poly import Multigraph, evaluate_each, select
from graphequi.poly.keys import KEY_BY_LEVEL, PAIR_INDEX_KEY, row_major_pairs

__all__ = ["PolynomialFeatures"]

_LEVELS = ("node", "edge", "pair")


@functional_transform("polynomial_features")
class PolynomialFeatures(BaseTransform):
    r"""Add equivariant polynomial features :math:`P_H(A)` of the adjacency
    matrix :math:`A` (Puny et al., *Equivariant Polynomials for Graph Neural
    Networks*, ICML 2023).

    Each polynomial (a :class:`~graphequi.poly.Multigraph` with 0, 1 or 2
    marks, see :func:`graphequi.poly.evaluate`) is brought to the requested
    ``level``:

    ========  ======================  ==========================  =====================
    marks     ``level='node'``        ``level='edge'`` (i, j)     ``level='pair'`` (i, j)
    ========  ======================  ==========================  =====================
    0         :math:`P` at each node  :math:`P`                   :math:`P`
    1         :math:`P_i`             :math:`P_i + P_j`           :math:`P_i \delta_{ij}`
    2         :math:`\sum_j P_{ij}`   :math:`P_{ij}`              :math:`P_{ij}`
    ========  ======================  ==========================  =====================

    (a node-level polynomial sits on the diagonal of the pair level, as a
    PPGN++ expects its node inputs; on an edge it is summed over both ends so
    that an undirected edge gets one value; a pair-level polynomial summed
    over its second mark is the node-level polynomial of the same multigraph
    with that mark unmarked).

    Outputs (float, one column per polynomial, in ``polys`` order):

    * ``level='node'``: ``data.poly_x`` of shape ``[num_nodes, k]``;
    * ``level='edge'``: ``data.poly_edge_attr`` of shape ``[num_edges, k]``,
      aligned with ``data.edge_index``;
    * ``level='pair'``: ``data.poly_pair_attr`` of shape ``[num_nodes**2, k]``
      for all ordered pairs in row-major order, and ``data.pair_index``
      ``[2, num_nodes**2]``. Because its name contains ``index``, PyG's
      collation offsets ``pair_index`` by the number of nodes, so a
      :class:`~torch_geometric.loader.DataLoader` batch holds every graph's
      pairs, e.g. for :func:`torch_geometric.utils.to_dense_adj` with
      ``edge_attr=poly_pair_attr``.

    The transform works on a single :class:`~torch_geometric.data.Data`, on a
    :class:`~torch_geometric.data.Batch` (evaluated as one padded batch) and,
    fastest, on a whole dataset with :meth:`apply_to_dataset`, which groups
    graphs of similar size into padded batches. All three give the same
    values: padded nodes contribute nothing (see
    :func:`graphequi.poly.evaluate`).

    Args:
        polys: ``'ppgn++'`` (the 12 polynomials of
            :func:`graphequi.poly.select`) or a sequence of undirected
            :class:`~graphequi.poly.Multigraph` (mixed marks allowed).
        level: ``'node'``, ``'edge'`` or ``'pair'``.
        normalize: divide each polynomial of a graph with ``n`` real nodes by
            :math:`n^{u}`, where :math:`u` is its number of unmarked nodes:
            the value becomes the *mean* over the :math:`n^u` maps of the
            free nodes instead of their sum, which keeps the scale
            comparable across graph sizes. The factor depends only on the
            graph itself, so batched and per-graph results agree.
        max_degree: degree bound for named polynomial sets.
        dtype: dtype of the computation and of the features.
        attr_name: the attribute written; by default the level's key in
            :mod:`graphequi.poly.keys` (``poly_x``, ``poly_edge_attr``,
            ``poly_pair_attr``), which graphequi's models read.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> triangle = Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]]), num_nodes=3)
        >>> data = PolynomialFeatures('ppgn++', level='node')(triangle)
        >>> data.poly_x.shape
        torch.Size([3, 12])
    """

    def __init__(self, polys: Union[str, Sequence[Multigraph]] = "ppgn++", level: str = "node",
                 normalize: bool = True, max_degree: int = 6, dtype: torch.dtype = torch.float32,
                 attr_name: Optional[str] = None):
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}, got {level!r}")
        self.name = polys if isinstance(polys, str) else None
        self.polys: tuple[Multigraph, ...] = (
            select(polys, max_degree) if isinstance(polys, str) else tuple(polys))
        if not self.polys:
            raise ValueError("PolynomialFeatures needs at least one polynomial")
        for p in self.polys:
            if not isinstance(p, Multigraph):
                raise TypeError(f"polys must be Multigraph objects or a name, got {type(p).__name__}")
            if p.directed:
                raise ValueError("PolynomialFeatures uses the symmetric adjacency matrix; "
                                 f"directed multigraph {p} is not supported")
        self.level = level
        self.attr_name = attr_name or KEY_BY_LEVEL[level]
        self.normalize = normalize
        self.max_degree = max_degree
        self.dtype = dtype
        self._free_nodes = [p.num_nodes - p.num_marks for p in self.polys]

    @property
    def num_features(self) -> int:
        return len(self.polys)

    def __repr__(self) -> str:
        polys = repr(self.name) if self.name else f"<{len(self.polys)} multigraphs>"
        return (f"{self.__class__.__name__}(polys={polys}, level={self.level!r}, "
                f"normalize={self.normalize}, num_features={self.num_features}, attr_name={self.attr_name!r})")

    # -- core: one padded batch -------------------------------------------------
    def _columns(self, A: Tensor, mask: Tensor, flat: Tensor) -> Tensor:
        """Evaluate on the padded batch ``A`` (B, n, n) / ``mask`` (B, n), lay
        every polynomial out densely at the requested level -- (B, n) for
        nodes, (B, n, n) for edges and pairs -- and read the positions
        ``flat`` (indices into that flattened layout). Returns ``[P, k]``."""
        values = evaluate_each(self.polys, A, mask=mask)
        B, n = mask.shape
        counts = mask.sum(1).to(A.dtype).clamp(min=1)
        shape = (B, n) if self.level == "node" else (B, n, n)
        dense = A.new_empty((len(self.polys),) + shape)
        for i, (poly, free, val) in enumerate(zip(self.polys, self._free_nodes, values)):
            marks, out = poly.num_marks, dense[i]
            if marks == 0:
                out.copy_(val.view((B,) + (1,) * (len(shape) - 1)).expand(shape))
            elif marks == 1 and self.level == "node":
                out.copy_(val)
            elif marks == 1 and self.level == "edge":
                torch.add(val.unsqueeze(2), val.unsqueeze(1), out=out)
            elif marks == 1:  # pair level: on the diagonal
                out.zero_()
                out.diagonal(dim1=1, dim2=2).copy_(val)
            elif self.level == "node":
                torch.sum(val, 2, out=out)
            else:
                out.copy_(val)
            if self.normalize and free:
                out.mul_((counts ** -free).view((B,) + (1,) * (len(shape) - 1)))
        return dense.view(len(self.polys), -1).index_select(1, flat).t().contiguous()

    def _check(self, data) -> None:
        if getattr(data, "edge_index", None) is None:
            raise ValueError("PolynomialFeatures needs data.edge_index")
        if data.num_nodes is None or data.num_nodes == 0:
            raise ValueError("PolynomialFeatures got a graph without nodes")
        check_edge_index(data.edge_index, data.num_nodes)

    def _features_for(self, data, batch: Optional[Tensor]) -> dict:
        """Compute the attributes for ``data`` whose nodes are grouped by
        ``batch`` (None: one graph)."""
        self._check(data)
        num_nodes = data.num_nodes
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=data.edge_index.device)
        counts = torch.bincount(batch)
        if (counts == 0).any():
            raise ValueError("PolynomialFeatures got a graph without nodes in the batch")
        A = to_dense_adj(data.edge_index, batch, max_num_nodes=int(counts.max())).to(self.dtype)
        if not torch.equal(A, A.transpose(1, 2)):
            raise ValueError("PolynomialFeatures needs undirected graphs (a symmetric edge_index); "
                             "apply torch_geometric.transforms.ToUndirected first")
        _, mask = to_dense_batch(batch, batch)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        local = torch.arange(num_nodes, device=batch.device) - ptr[batch]
        n = A.shape[-1]
        if self.level == "node":
            return {self.attr_name: self._columns(A, mask, batch * n + local)}
        if self.level == "edge":
            src, dst = data.edge_index
            flat = (batch[src] * n + local[src]) * n + local[dst]
            return {self.attr_name: self._columns(A, mask, flat)}
        graphs, rows, cols = row_major_pairs(counts)
        return {self.attr_name: self._columns(A, mask, (graphs * n + rows) * n + cols),
                PAIR_INDEX_KEY: torch.stack([rows + ptr[graphs], cols + ptr[graphs]])}

    # -- PyG entry points -------------------------------------------------------
    def forward(self, data):
        """Transform a :class:`Data` (one graph) or a :class:`Batch`
        (evaluated as one padded batch). Called through ``__call__``, which
        hands it a shallow copy, as every PyG transform."""
        batch = data.batch if isinstance(data, Batch) else None
        for key, value in self._features_for(data, batch).items():
            data[key] = value
        return data

    def apply_to_dataset(self, dataset: Iterable[Data], batch_size: int = 256,
                         progress: bool = True) -> list[Data]:
        """Transform every graph of ``dataset``, evaluating graphs of similar
        size together as padded batches (sorted by node count so that
        padding stays small). Returns a list of new ``Data`` objects in the
        dataset's order, identical to applying the transform one by one.

        Args:
            dataset: any iterable of ``Data`` (e.g. a PyG dataset).
            batch_size: largest number of graphs per padded batch.
            progress: show a tqdm progress bar.
        """
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        graphs = list(dataset)
        order = sorted(range(len(graphs)), key=lambda i: graphs[i].num_nodes)
        results: list[Optional[Data]] = [None] * len(graphs)
        with tqdm(total=len(graphs), disable=not progress, desc="polynomial features") as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = Batch.from_data_list([graphs[i] for i in idx])
                attrs = self._features_for(batch, batch.batch)
                node_ptr = batch.ptr.tolist()
                pair_ptr = [0]
                for lo, hi in zip(node_ptr[:-1], node_ptr[1:]):
                    pair_ptr.append(pair_ptr[-1] + (hi - lo) ** 2)
                edge_ptr = [0]
                for i in idx:
                    edge_ptr.append(edge_ptr[-1] + graphs[i].edge_index.size(1))
                values = attrs[self.attr_name]
                for j, i in enumerate(idx):
                    data = copy.copy(graphs[i])
                    lo, hi = node_ptr[j], node_ptr[j + 1]
                    if self.level == "node":
                        data[self.attr_name] = values[lo:hi]
                    elif self.level == "edge":
                        data[self.attr_name] = values[edge_ptr[j]:edge_ptr[j + 1]]
                    else:
                        p_lo, p_hi = pair_ptr[j], pair_ptr[j + 1]
                        data[self.attr_name] = values[p_lo:p_hi]
                        data[PAIR_INDEX_KEY] = attrs[PAIR_INDEX_KEY][:, p_lo:p_hi] - lo
                    results[i] = data
                bar.update(len(idx))
        return results

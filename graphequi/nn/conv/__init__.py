"""Message-passing layers on graphequi's kernels."""
from graphequi.nn.conv.adjacency import CSRAdjacency, as_csr_adjacency, is_csr_adjacency
from graphequi.nn.conv.gin import GINConv, GINEConv, resolve_aggregation

__all__ = ["GINConv", "GINEConv", "CSRAdjacency", "as_csr_adjacency", "is_csr_adjacency",
           "resolve_aggregation"]

"""Message-passing layers on graphequi's kernels."""
from graphequi.nn.conv.gin import GINConv, GINEConv, is_csr_adjacency, resolve_aggregation

__all__ = ["GINConv", "GINEConv", "is_csr_adjacency", "resolve_aggregation"]

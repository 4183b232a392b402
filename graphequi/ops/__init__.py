"""Scatter and segment reductions, the fused CSR gather-reduce (``spmm``) and
the depthwise mix of PONITA's fiber kernel, the pair features of LCM's
cheap cell and a linear map per segment of rows (weights per group, as SPEN's
per subgraph size): the aggregation engine of graphequi.

C++ kernels (``csrc/cpu``, parallel with ``at::parallel_for``) and CUDA kernels
(``csrc/cuda``) registered as ``torch.ops.graphequi.*``, with fake kernels and
autograd so they work under ``torch.compile``; a pure-PyTorch backend
(``torch.ops.graphequi_torch.*``) with identical semantics serves devices
without compiled kernels, or everything when ``GRAPHEQUI_BACKEND=torch``.
"""
from graphequi.ops._backend import backend, cpp_devices, use_backend
from graphequi.ops.linear import segment_linear
from graphequi.ops.mix import depthwise_mix
from graphequi.ops.pairs import symmetric_pair_features
from graphequi.ops.ptr import index_to_ptr, ptr_to_index
from graphequi.ops.reduce import SegmentArgResult, scatter, scatter_arg, segment, segment_arg
from graphequi.ops.spmm import CSR, spmm, to_csr

__all__ = [
    "scatter",
    "scatter_arg",
    "segment",
    "segment_arg",
    "SegmentArgResult",
    "spmm",
    "to_csr",
    "CSR",
    "segment_linear",
    "depthwise_mix",
    "symmetric_pair_features",
    "index_to_ptr",
    "ptr_to_index",
    "backend",
    "cpp_devices",
    "use_backend",
]

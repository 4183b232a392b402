"""Layers and graph-level models of graphequi, on graphequi's kernels.

* :mod:`graphequi.nn.aggr` -- PyG aggregations (sum, mean, max, min) on
  graphequi's scatter/segment kernels, usable as any layer's ``aggr=``.
* :mod:`graphequi.nn.conv` -- :class:`GINConv` (fused CSR gather-reduce) and
  :class:`GINEConv`.
* :class:`PPGNPlusPlus` -- dense batched 2-FWL network (PPGN++, Puny et al. 2023)
  on polynomial pair channels, with padding masks.
* :class:`PolyGIN` / :class:`PolyGINE` -- GIN / GINE with polynomial node
  (and edge) features concatenated.
* :class:`SPEN` / :class:`SPENConv` -- subgraph permutation equivariant
  networks (Mitton & Murray-Smith): order-1/2 equivariant layers inside
  ego-nets bucketed by size, features shared across ego-nets.
* :class:`FeatureEncoder` -- categorical-type embeddings or a linear map.
* :class:`Ponita`, :class:`PonitaConv`, :class:`PonitaBlock` -- PONITA
  (Bekkers et al., ICLR 2024) on point clouds (:mod:`graphequi.nn.ponita`).
* :class:`FrameAveraging` -- exact E(3)/SE(3)/O(3) symmetry for any
  point-cloud backbone by PCA frame averaging.
"""
from graphequi.nn import aggr
from graphequi.nn.conv import GINConv, GINEConv
from graphequi.nn.encoders import FeatureEncoder
from graphequi.nn.frame_averaging import FrameAveraging, pca_frames
from graphequi.nn.ponita import (PointCloudOutput, Ponita, PonitaBlock, PonitaConv, build_ponita,
                                 energy_and_forces)
from graphequi.nn.poly_gin import PolyGIN, PolyGINE
from graphequi.nn.ppgn import PPGNBlock, PPGNPlusPlus, dense_nodes, dense_pair_features, dense_pairs
from graphequi.nn.spen import SPEN, build_spen
from graphequi.nn.spen_conv import SPENConv, spen_conv_ragged
from graphequi.nn.spen_layout import EgoNetLayout, RaggedEgoNets, SizeMap

__all__ = ["aggr", "GINConv", "GINEConv", "PPGNPlusPlus", "PPGNBlock", "PolyGIN",
           "PolyGINE", "FeatureEncoder", "dense_nodes", "dense_pairs", "dense_pair_features", "Ponita",
           "PonitaConv", "PonitaBlock",
           "PointCloudOutput", "energy_and_forces", "build_ponita", "FrameAveraging", "pca_frames",
           "SPEN", "SPENConv", "spen_conv_ragged", "SizeMap", "EgoNetLayout", "RaggedEgoNets",
           "build_spen"]

"""Graph-level models of graphequi.

* :class:`PPGNPlusPlus` -- dense batched 2-FWL network (PPGN++, Puny et al. 2023)
  on polynomial pair channels, with padding masks.
* :class:`PolyGIN` / :class:`PolyGINE` -- PyG GIN / GINE with polynomial node
  (and edge) features concatenated.
* :class:`FeatureEncoder` -- categorical-type embeddings or a linear map.
"""
from graphequi.nn.encoders import FeatureEncoder
from graphequi.nn.poly_gin import PolyGIN, PolyGINE
from graphequi.nn.ppgn import PPGNBlock, PPGNPlusPlus, dense_pair_features

__all__ = ["PPGNPlusPlus", "PPGNBlock", "PolyGIN", "PolyGINE", "FeatureEncoder",
           "dense_pair_features"]

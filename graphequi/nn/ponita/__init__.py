r"""PONITA (Bekkers et al., ICLR 2024): separable group convolutions on
position-orientation space.

* :class:`Ponita` -- the model (grid, distance-only or position-orientation
  point cloud modes), :class:`PointCloudOutput`, :func:`energy_and_forces`.
* :class:`PonitaConv`, :class:`PonitaBlock` -- the separable convolution and
  its ConvNeXt block; :func:`csr_adjacency` -- the CSR their fused path takes.
* :class:`KernelBasis`, :class:`PolynomialEmbedding` -- shared kernel bases.
* :func:`build_ponita` -- the trainer's constructor.
"""
from .block import PonitaBlock
from .builder import build_ponita
from .conv import PonitaConv, csr_adjacency
from .embedding import KernelBasis, PolynomialEmbedding
from .model import PointCloudOutput, Ponita, energy_and_forces

__all__ = ["Ponita", "PointCloudOutput", "energy_and_forces", "PonitaConv", "PonitaBlock", "csr_adjacency",
           "KernelBasis", "PolynomialEmbedding", "build_ponita"]

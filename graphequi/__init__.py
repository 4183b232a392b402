"""graphequi: a graph-first GNN toolkit on PyTorch Geometric.

Submodules (each imports only from the levels below it):

* ``graphequi.ops`` -- scatter / segment, spmm and depthwise-mix kernels (C++/CUDA, torch fallback)
* ``graphequi.geometry``, ``graphequi.poly`` -- 3D invariants; equivariant polynomials
* ``graphequi.transforms``, ``graphequi.nn`` -- PyG transforms and layers
* ``graphequi.expressivity``, ``graphequi.datasets``
* ``graphequi.train`` -- trainer (single process or ``torchrun``)
* ``graphequi.cli`` -- the ``graphequi`` command
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("ops", "geometry", "poly", "transforms", "nn", "expressivity",
               "datasets", "train", "cli", "testing")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"graphequi.{name}")
    raise AttributeError(f"module 'graphequi' has no attribute {name!r}")


__all__ = list(_SUBMODULES) + ["__version__"]

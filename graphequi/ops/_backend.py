"""Chooses between the C++/CUDA extension and the pure-PyTorch backend.

``GRAPHEQUI_BACKEND`` selects it at import time:

* ``auto`` (default): the extension when it was built, else PyTorch;
* ``cpp``: the extension, and an ``ImportError`` if it is missing;
* ``torch``: the pure-PyTorch backend even if the extension exists.

Devices for which the extension has no kernel (CUDA in a CPU-only build, MPS,
...) always run on the PyTorch backend.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

import torch

from graphequi.ops import _registry

_VALID = ("auto", "cpp", "torch")
_requested = os.environ.get("GRAPHEQUI_BACKEND", "auto").strip().lower() or "auto"
if _requested not in _VALID:
    raise ValueError(f"GRAPHEQUI_BACKEND must be one of {_VALID}, got {_requested!r}")

_registry.define_torch_backend()
TORCH_OPS = _registry.namespace(_registry.TORCH_NAMESPACE)

CPP_OPS = None
_load_error: Exception | None = None
if _requested != "torch":
    try:
        import graphequi._C  # noqa: F401  (loading runs the static op registrations)

        _registry.register_cpp_backend()
        CPP_OPS = _registry.namespace("graphequi")
    except ImportError as exc:  # not built (e.g. GRAPHEQUI_NO_EXT=1)
        _load_error = exc
        if _requested == "cpp":
            raise ImportError("GRAPHEQUI_BACKEND=cpp but the graphequi._C extension could not be "
                              f"loaded: {exc}") from exc
        warnings.warn(f"graphequi._C not available ({exc}); using the pure-PyTorch backend",
                      RuntimeWarning, stacklevel=2)

# Which device types the extension has kernels for, computed once so the
# per-call dispatch below is a plain dict lookup (traceable by dynamo).
_CPP_DEVICES = frozenset(
    dev for dev, key in (("cpu", "CPU"), ("cuda", "CUDA"))
    if CPP_OPS is not None and torch._C._dispatch_has_kernel_for_dispatch_key("graphequi::segment", key)
)
_state = {"backend": "cpp" if CPP_OPS is not None else "torch"}


def backend() -> str:
    """The active backend: ``'cpp'`` (the compiled extension) or ``'torch'``."""
    return _state["backend"]


def cpp_devices() -> frozenset:
    """Device types with compiled kernels (empty without the extension)."""
    return _CPP_DEVICES


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Temporarily switch backend (``'cpp'`` or ``'torch'``), e.g. in tests."""
    if name not in ("cpp", "torch"):
        raise ValueError(f"backend must be 'cpp' or 'torch', got {name!r}")
    if name == "cpp" and CPP_OPS is None:
        raise RuntimeError(f"the C++ backend is not available: {_load_error}")
    previous = _state["backend"]
    _state["backend"] = name
    try:
        yield
    finally:
        _state["backend"] = previous


def cpu_isa() -> str:
    """The CPU kernels' instruction-set choice: ``'auto'``, ``'avx2'`` or ``'baseline'``.

    Initially ``GRAPHEQUI_CPU_ISA`` (read once, at the first kernel call), or
    ``'auto'``: the widest copy the CPU supports.
    """
    _require_cpp("the CPU instruction-set choice")
    import graphequi._C as ext

    return ext.cpu_isa()


def set_cpu_isa(name: str) -> str:
    """Choose the copy of the C++ CPU kernels that runs (returns the previous
    choice): ``'baseline'`` (x86-64 SSE2), ``'avx2'`` or ``'auto'``. Both
    copies give bit-identical results; the tests compare them this way.

    Raises:
        ValueError: for any other name.
    """
    _require_cpp("the CPU instruction-set choice")
    import graphequi._C as ext

    previous = ext.cpu_isa()
    ext.set_cpu_isa(name)
    return previous


def cpu_supports_avx2() -> bool:
    """Whether the AVX2 kernel copy exists in this build and the CPU runs it."""
    _require_cpp("the CPU instruction-set choice")
    import graphequi._C as ext

    previous = set_cpu_isa("auto")
    try:
        return ext.cpu_isa_is_avx2()
    finally:
        ext.set_cpu_isa(previous)


def _require_cpp(what: str) -> None:
    if CPP_OPS is None:
        raise RuntimeError(f"{what} needs the C++ backend, which is not available: {_load_error}")


def ops_for(device: torch.device):
    """The op table that serves tensors on ``device`` under the active backend."""
    if _state["backend"] == "cpp" and device.type in _CPP_DEVICES:
        return CPP_OPS
    return TORCH_OPS

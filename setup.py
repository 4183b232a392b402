"""Builds the ``graphequi._C`` extension from ``csrc/``.

CPU kernels are always built.  CUDA kernels are added when a CUDA build of
torch sees a device, or when ``FORCE_CUDA=1`` (e.g. building on a GPU-less
node for a GPU cluster).  ``GRAPHEQUI_NO_EXT=1`` skips the extension entirely;
graphequi then runs on its pure-PyTorch backend.
"""
import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _extensions():
    if os.environ.get("GRAPHEQUI_NO_EXT", "0") == "1":
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    def rel(pattern):
        return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))

    sources = rel("csrc/*.cpp") + rel("csrc/cpu/*.cpp")
    cxx_flags = ["-O3", "-std=c++17", "-fopenmp"] if os.name != "nt" else ["/O2"]
    define_macros = []
    with_cuda = os.environ.get("FORCE_CUDA", "0") == "1" or (
        torch.cuda.is_available() and torch.version.cuda is not None
    )
    if with_cuda:
        sources += rel("csrc/cuda/*.cu") + rel("csrc/cuda/*.cpp")
        define_macros.append(("WITH_CUDA", None))
        ext = CUDAExtension(
            "graphequi._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "graphequi._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": BuildExtension.with_options(no_python_abi_suffix=False)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)

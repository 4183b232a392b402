// The one TORCH_LIBRARY block of graphequi: every op's schema lives here.
// Kernels are registered per device in csrc/cpu/ and csrc/cuda/; fake (meta)
// kernels and autograd formulas are registered from Python
// (graphequi/ops/_registry.py), which also defines the same schemas for the
// pure-PyTorch backend (namespace graphequi_torch).
//
// Layout contract shared by all ops: `src`/`grad` are contiguous [B, E, F]
// (B = product of dims before the reduced dim, F = product of dims after it),
// `index` is 1-D of length E, `ptr` is 1-D of length G + 1 (CSR offsets),
// `arg` holds the winning row of each (b, g, f) or -1 for an empty group.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(graphequi, m) {
  m.def("segment(Tensor src, Tensor ptr, str reduce) -> Tensor");
  m.def("segment_arg(Tensor src, Tensor ptr, str reduce) -> (Tensor, Tensor)");
  m.def("scatter(Tensor src, Tensor index, SymInt dim_size, str reduce) -> Tensor");
  m.def("scatter_arg(Tensor src, Tensor index, SymInt dim_size, str reduce) -> (Tensor, Tensor)");
  m.def("gather_csr(Tensor grad, Tensor ptr, Tensor? arg, SymInt num_rows, str reduce) -> Tensor");
  m.def("gather_coo(Tensor grad, Tensor index, Tensor? arg, str reduce) -> Tensor");
}

// `import graphequi._C` only has to load this library so the static
// registrations above run; the module itself exposes nothing.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

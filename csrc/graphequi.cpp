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
//
// spmm ops: a CSR matrix (ptr [G + 1], col [E], optional value [E]) times
// x [N, F]; out [G, F], arg [G, F] holds the winning edge k or -1 for an empty
// row. csc_* is the optional precomputed transpose (colptr [N + 1], row [E],
// perm [E]) used by the backward; `validate = false` skips the index checks.
// spmm_arg_grad is the min/max backward for x: out [N, F] from the transpose,
// arg [G, F] and grad [G, F]. spmm_feature takes a value per edge and feature
// (value [E, F], sum/mean; edge k reads value row value_perm[k] when given, so
// the backward runs over the transpose without reordering value), and
// spmm_feature_value_grad is its value gradient [E, F].
//
// depthwise_mix: out [N, O, C] = sum over l of weight [O, L, C] * x [N, L, C],
// channel by channel (PONITA's fiber kernel mixing the orientations of every
// node); depthwise_mix_weight_grad is its weight gradient [O, L, C] from
// grad [N, O, C] and x. symmetric_pair_features: pairs [P, 2, D] (rows a, b)
// -> [P, 3 D] = [a + b, a * b, |a - b|], the input of LCM's cheap cell;
// symmetric_pair_features_backward is its adjoint [P, 2, D]. These CPU
// kernels are compiled here; on CUDA the PyTorch formulations of
// graphequi/ops/_registry.py serve them.
//
// segment_linear: x [L, K] times weight [G, N, K] (+ bias [G, N]) per
// contiguous segment of rows with the given sizes, out [L, N];
// segment_linear_weight_grad is its weight (and bias) gradient. Their one
// kernel (csrc/segment_linear.cpp) calls ATen's GEMMs and serves every device.
#include <Python.h>
#include <torch/library.h>

#include "cpu/isa.h"

TORCH_LIBRARY(graphequi, m) {
  m.def("segment(Tensor src, Tensor ptr, str reduce) -> Tensor");
  m.def("segment_arg(Tensor src, Tensor ptr, str reduce) -> (Tensor, Tensor)");
  m.def("scatter(Tensor src, Tensor index, SymInt dim_size, str reduce) -> Tensor");
  m.def("scatter_arg(Tensor src, Tensor index, SymInt dim_size, str reduce) -> (Tensor, Tensor)");
  m.def("gather_csr(Tensor grad, Tensor ptr, Tensor? arg, SymInt num_rows, str reduce) -> Tensor");
  m.def("gather_coo(Tensor grad, Tensor index, Tensor? arg, str reduce) -> Tensor");
  m.def("spmm(Tensor ptr, Tensor col, Tensor x, Tensor? value, Tensor? csc_ptr, Tensor? csc_row, "
        "Tensor? csc_perm, str reduce, bool validate) -> Tensor");
  m.def("spmm_arg(Tensor ptr, Tensor col, Tensor x, Tensor? value, str reduce, bool validate) -> (Tensor, Tensor)");
  m.def("spmm_value_grad(Tensor ptr, Tensor col, Tensor grad, Tensor x, str reduce, bool validate) -> Tensor");
  m.def("spmm_arg_grad(Tensor csc_ptr, Tensor csc_row, Tensor csc_perm, Tensor arg, Tensor grad, Tensor? value) "
        "-> Tensor");
  m.def("spmm_feature(Tensor ptr, Tensor col, Tensor x, Tensor value, Tensor? value_perm, Tensor? csc_ptr, "
        "Tensor? csc_row, Tensor? csc_perm, str reduce, bool validate) -> Tensor");
  m.def("spmm_feature_value_grad(Tensor ptr, Tensor col, Tensor grad, Tensor x, str reduce, bool validate) "
        "-> Tensor");
  m.def("csr_transpose(Tensor ptr, Tensor col, SymInt num_cols, bool validate) -> (Tensor, Tensor, Tensor)");
  m.def("depthwise_mix(Tensor weight, Tensor x) -> Tensor");
  m.def("depthwise_mix_weight_grad(Tensor grad, Tensor x) -> Tensor");
  m.def("symmetric_pair_features(Tensor pairs) -> Tensor");
  m.def("symmetric_pair_features_backward(Tensor grad, Tensor pairs) -> Tensor");
  m.def("segment_linear(Tensor x, SymInt[] sizes, Tensor weight, Tensor? bias) -> Tensor");
  m.def("segment_linear_weight_grad(Tensor grad, Tensor x, SymInt[] sizes, bool bias) -> (Tensor, Tensor)");
}

// `import graphequi._C` loads this library so the static registrations above
// run. The module itself only exposes the CPU instruction-set switch, which is
// process state rather than an op (graphequi.ops._backend wraps it).
namespace {

PyObject* py_set_cpu_isa(PyObject* /*self*/, PyObject* args) {
  const char* isa = nullptr;
  if (!PyArg_ParseTuple(args, "s", &isa)) return nullptr;
  try {
    graphequi::set_cpu_isa(isa);
  } catch (const c10::Error& e) {
    PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* py_cpu_isa(PyObject* /*self*/, PyObject* /*args*/) {
  return PyUnicode_FromString(graphequi::cpu_isa().c_str());
}

PyObject* py_cpu_isa_is_avx2(PyObject* /*self*/, PyObject* /*args*/) {
  try {
    return PyBool_FromLong(graphequi::cpu_isa_is_avx2());
  } catch (const c10::Error& e) {
    PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    return nullptr;
  }
}

PyMethodDef methods[] = {
    {"set_cpu_isa", py_set_cpu_isa, METH_VARARGS, "Choose the CPU kernels: 'auto', 'avx2' or 'baseline'."},
    {"cpu_isa", py_cpu_isa, METH_NOARGS, "The current CPU instruction-set choice."},
    {"cpu_isa_is_avx2", py_cpu_isa_is_avx2, METH_NOARGS, "Whether the AVX2 kernels run now."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}
}

// ATen glue for the CUDA kernels: checks, allocation, stream and dtype
// dispatch. The kernels themselves (segment_kernels.cu, scatter_kernels.cu)
// see raw pointers only.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/library.h>

#include "../checks.h"
#include "kernels.h"

namespace graphequi {
namespace {

template <typename scalar_t> struct CudaType { using type = scalar_t; };
template <> struct CudaType<at::Half> { using type = __half; };
template <> struct CudaType<at::BFloat16> { using type = __nv_bfloat16; };

template <typename scalar_t>
const typename CudaType<scalar_t>::type* cptr(const at::Tensor& t) {
  return reinterpret_cast<const typename CudaType<scalar_t>::type*>(t.data_ptr<scalar_t>());
}
template <typename scalar_t>
typename CudaType<scalar_t>::type* mptr(at::Tensor& t) {
  return reinterpret_cast<typename CudaType<scalar_t>::type*>(t.data_ptr<scalar_t>());
}

#define GRAPHEQUI_CUDA_DISPATCH(TYPE, NAME, ...)                              \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                              \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__)     \
                     AT_DISPATCH_CASE(at::ScalarType::Double, __VA_ARGS__)    \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)      \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::Int, __VA_ARGS__)       \
                     AT_DISPATCH_CASE(at::ScalarType::Long, __VA_ARGS__))

cuda::ReduceKind kind_of(Reduce r) { return static_cast<cuda::ReduceKind>(static_cast<int>(r)); }

void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* name) {
  TORCH_CHECK_VALUE(a.device() == b.device(), name, " is on ", b.device(), " but the data is on ", a.device());
}

// One host sync for all value checks of ptr.
void validate_ptr(const at::Tensor& ptr, int64_t E, const char* rows = "src.size(dim)") {
  TORCH_CHECK_VALUE(ptr.numel() >= 1, "ptr must have at least one entry");
  auto p = ptr.to(at::kLong);
  auto decreasing = p.numel() > 1 ? (p.slice(0, 1) < p.slice(0, 0, -1)).any().to(at::kLong).reshape({1})
                                  : at::zeros({1}, p.options());
  auto stats = at::cat({p.slice(0, 0, 1), p.slice(0, -1), decreasing}).cpu();
  const int64_t* s = stats.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(s[0] == 0, "ptr must start at 0, got ", s[0]);
  TORCH_CHECK_VALUE(s[1] == E, "ptr[-1] must equal ", rows, " = ", E, ", got ", s[1]);
  TORCH_CHECK_VALUE(s[2] == 0, "ptr must be non-decreasing");
}

// Range check plus sortedness, in one host sync. Returns whether sorted.
bool validate_index(const at::Tensor& index, int64_t G, const char* name = "index", const char* bound = "dim_size") {
  if (index.numel() == 0) return true;
  auto i = index.to(at::kLong);
  auto unsorted = i.numel() > 1 ? (i.slice(0, 1) < i.slice(0, 0, -1)).any().to(at::kLong).reshape({1})
                                : at::zeros({1}, i.options());
  auto stats = at::cat({i.min().reshape({1}), i.max().reshape({1}), unsorted}).cpu();
  const int64_t* s = stats.data_ptr<int64_t>();
  TORCH_CHECK_INDEX(s[0] >= 0, name, " contains a negative entry (", s[0], ")");
  TORCH_CHECK_INDEX(s[1] < G, name, " contains ", s[1], ", out of range for ", bound, " ", G);
  return s[2] == 0;
}

at::Tensor ptr_of_sorted(const at::Tensor& index, int64_t G) {
  auto boundaries = at::arange(G + 1, index.options());
  return at::searchsorted(index, boundaries, /*out_int32=*/index.scalar_type() == at::kInt, /*right=*/false);
}

at::Tensor segment_impl(const at::Tensor& src, const at::Tensor& ptr, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = at::empty({B, G, F}, src.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(src.scalar_type(), "segment_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cuda_idx", [&] {
      C10_CUDA_CHECK(cuda::segment_reduce(cptr<scalar_t>(src), ptr.data_ptr<index_t>(), mptr<scalar_t>(out), B, E, G,
                                          F, kind_of(r), stream));
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> segment_arg_impl(const at::Tensor& src, const at::Tensor& ptr, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = at::empty({B, G, F}, src.options());
  auto arg = at::empty({B, G, F}, src.options().dtype(at::kLong));
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(src.scalar_type(), "segment_arg_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_arg_cuda_idx", [&] {
      C10_CUDA_CHECK(cuda::segment_arg(cptr<scalar_t>(src), ptr.data_ptr<index_t>(), mptr<scalar_t>(out),
                                       arg.data_ptr<int64_t>(), B, E, G, F, r == Reduce::Max, stream));
    });
  });
  return {out, arg};
}

at::Tensor segment_cuda(const at::Tensor& src_in, const at::Tensor& ptr_in, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  check_mean_dtype(src_in, r);
  check_same_device(src_in, ptr_in, "ptr");
  const c10::cuda::CUDAGuard guard(src_in.device());
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  validate_ptr(ptr, src.size(1));
  if (r == Reduce::Min || r == Reduce::Max) return std::get<0>(segment_arg_impl(src, ptr, r));
  return segment_impl(src, ptr, r);
}

std::tuple<at::Tensor, at::Tensor> segment_arg_cuda(const at::Tensor& src_in, const at::Tensor& ptr_in,
                                                    c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  check_same_device(src_in, ptr_in, "ptr");
  const c10::cuda::CUDAGuard guard(src_in.device());
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  validate_ptr(ptr, src.size(1));
  return segment_arg_impl(src, ptr, r);
}

void check_scatter_inputs(const at::Tensor& src, const at::Tensor& index, int64_t G) {
  check_src(src, "src");
  check_index_tensor(index, "index");
  check_index_matches(src, index);
  check_same_device(src, index, "index");
  TORCH_CHECK_VALUE(G >= 0, "dim_size must be non-negative, got ", G);
}

std::tuple<at::Tensor, at::Tensor> scatter_arg_cuda(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G,
                                                    c10::string_view reduce);

at::Tensor scatter_cuda(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  if (r == Reduce::Min || r == Reduce::Max) return std::get<0>(scatter_arg_cuda(src_in, index_in, G, reduce));
  check_scatter_inputs(src_in, index_in, G);
  check_mean_dtype(src_in, r);
  const c10::cuda::CUDAGuard guard(src_in.device());
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  if (validate_index(index, G)) return segment_impl(src, ptr_of_sorted(index, G), r);
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2);
  // Half types accumulate in float: 16-bit atomics lose too much precision.
  const bool half = src.scalar_type() == at::kHalf || src.scalar_type() == at::kBFloat16;
  auto work = half ? src.to(at::kFloat) : src;
  auto out = at::zeros({B, G, F}, work.options());
  auto count = at::zeros({r == Reduce::Mean ? G : 0}, src.options().dtype(at::kLong));
  auto stream = c10::cuda::getCurrentCUDAStream();
  // Expanded inside each case, where scalar_t is defined.
#define GRAPHEQUI_LAUNCH_SCATTER_SUM                                                                           \
  [&] {                                                                                                        \
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cuda_idx", [&] {                                     \
      C10_CUDA_CHECK(cuda::scatter_sum(work.data_ptr<scalar_t>(), index.data_ptr<index_t>(),                   \
                                       out.data_ptr<scalar_t>(), count.data_ptr<int64_t>(), B, E, G, F,        \
                                       r == Reduce::Mean, stream));                                            \
    });                                                                                                        \
  }
  AT_DISPATCH_SWITCH(work.scalar_type(), "scatter_cuda",
                     AT_DISPATCH_CASE(at::ScalarType::Float, GRAPHEQUI_LAUNCH_SCATTER_SUM)
                     AT_DISPATCH_CASE(at::ScalarType::Double, GRAPHEQUI_LAUNCH_SCATTER_SUM)
                     AT_DISPATCH_CASE(at::ScalarType::Int, GRAPHEQUI_LAUNCH_SCATTER_SUM)
                     AT_DISPATCH_CASE(at::ScalarType::Long, GRAPHEQUI_LAUNCH_SCATTER_SUM));
#undef GRAPHEQUI_LAUNCH_SCATTER_SUM
  return half ? out.to(src.scalar_type()) : out;
}

std::tuple<at::Tensor, at::Tensor> scatter_arg_cuda(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G,
                                                    c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_scatter_inputs(src_in, index_in, G);
  const c10::cuda::CUDAGuard guard(src_in.device());
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  if (validate_index(index, G)) return segment_arg_impl(src, ptr_of_sorted(index, G), r);
  // Stable sort keeps rows of a group in their original order, so the CSR
  // kernel's "first row wins ties" is the original lowest row: deterministic.
  auto sorted = at::sort(index, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto perm = std::get<1>(sorted);
  auto src_sorted = src.index_select(1, perm);
  auto result = segment_arg_impl(src_sorted, ptr_of_sorted(std::get<0>(sorted), G), r);
  auto arg_sorted = std::get<1>(result);
  auto arg = at::where(arg_sorted >= 0, perm.index_select(0, arg_sorted.clamp_min(0).flatten()).view_as(arg_sorted),
                       arg_sorted);
  return {std::get<0>(result), arg};
}

at::Tensor gather_csr_cuda(const at::Tensor& grad_in, const at::Tensor& ptr_in, const c10::optional<at::Tensor>& arg_in,
                           int64_t E, c10::string_view reduce) {
  const Reduce r = parse_any_reduce(std::string(reduce));
  check_src(grad_in, "grad");
  check_index_tensor(ptr_in, "ptr");
  check_arg(arg_in, grad_in, r);
  check_same_device(grad_in, ptr_in, "ptr");
  TORCH_CHECK_VALUE(ptr_in.numel() == grad_in.size(1) + 1, "ptr must have grad.size(1) + 1 = ", grad_in.size(1) + 1,
                    " entries, got ", ptr_in.numel());
  const c10::cuda::CUDAGuard guard(grad_in.device());
  auto grad = grad_in.contiguous();
  auto ptr = ptr_in.contiguous();
  validate_ptr(ptr, E);
  at::Tensor arg = arg_in.has_value() ? arg_in->contiguous() : at::Tensor();
  const int64_t B = grad.size(0), G = grad.size(1), F = grad.size(2);
  auto out = at::empty({B, E, F}, grad.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(grad.scalar_type(), "gather_csr_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gather_csr_cuda_idx", [&] {
      C10_CUDA_CHECK(cuda::gather_csr(cptr<scalar_t>(grad), ptr.data_ptr<index_t>(),
                                      arg.defined() ? arg.data_ptr<int64_t>() : nullptr, mptr<scalar_t>(out), B, E, G,
                                      F, kind_of(r), stream));
    });
  });
  return out;
}

at::Tensor gather_coo_cuda(const at::Tensor& grad_in, const at::Tensor& index_in, const c10::optional<at::Tensor>& arg_in,
                           c10::string_view reduce) {
  const Reduce r = parse_any_reduce(std::string(reduce));
  check_src(grad_in, "grad");
  check_index_tensor(index_in, "index");
  check_arg(arg_in, grad_in, r);
  check_same_device(grad_in, index_in, "index");
  const c10::cuda::CUDAGuard guard(grad_in.device());
  auto grad = grad_in.contiguous();
  auto index = index_in.contiguous();
  const int64_t B = grad.size(0), G = grad.size(1), F = grad.size(2), E = index.numel();
  validate_index(index, G);
  at::Tensor arg = arg_in.has_value() ? arg_in->contiguous() : at::Tensor();
  auto count = at::zeros({r == Reduce::Mean ? G : 0}, grad.options().dtype(at::kLong));
  auto out = at::empty({B, E, F}, grad.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(grad.scalar_type(), "gather_coo_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "gather_coo_cuda_idx", [&] {
      if (r == Reduce::Mean) C10_CUDA_CHECK(cuda::count_index(index.data_ptr<index_t>(), count.data_ptr<int64_t>(), E, stream));
      C10_CUDA_CHECK(cuda::gather_coo(cptr<scalar_t>(grad), index.data_ptr<index_t>(),
                                      arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
                                      r == Reduce::Mean ? count.data_ptr<int64_t>() : nullptr, mptr<scalar_t>(out), B, E,
                                      G, F, kind_of(r), stream));
    });
  });
  return out;
}


// ---------------------------------------------------------------------- spmm

struct SpmmInputs {
  at::Tensor ptr, col, x, value;
};

// Shape/dtype checks (always), then the index checks (one host sync each)
// unless the caller vouches for the CSR (validate = false).
SpmmInputs prepare_spmm(const at::Tensor& ptr_in, const at::Tensor& col_in, const at::Tensor& x_in,
                        const c10::optional<at::Tensor>& value_in, bool validate) {
  check_spmm_inputs(ptr_in, col_in, x_in, value_in);
  check_same_device(x_in, ptr_in, "ptr");
  check_same_device(x_in, col_in, "col");
  if (value_in.has_value()) check_same_device(x_in, *value_in, "value");
  SpmmInputs in{ptr_in.contiguous(), col_in.contiguous(), x_in.contiguous(),
                value_in.has_value() ? value_in->contiguous() : at::Tensor()};
  if (validate) {
    validate_ptr(in.ptr, in.col.numel(), "col.numel()");
    validate_index(in.col, in.x.size(0), "col", "x.size(0) =");
  }
  return in;
}

std::tuple<at::Tensor, at::Tensor> spmm_launch(const SpmmInputs& in, Reduce r, bool with_arg) {
  const int64_t G = in.ptr.numel() - 1, F = in.x.size(1);
  auto out = at::empty({G, F}, in.x.options());
  auto arg = with_arg ? at::empty({G, F}, in.x.options().dtype(at::kLong)) : at::Tensor();
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(in.x.scalar_type(), "spmm_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(in.ptr.scalar_type(), "spmm_cuda_idx", [&] {
      C10_CUDA_CHECK(cuda::spmm(in.ptr.data_ptr<index_t>(), in.col.data_ptr<index_t>(), cptr<scalar_t>(in.x),
                                in.value.defined() ? cptr<scalar_t>(in.value) : nullptr, mptr<scalar_t>(out),
                                with_arg ? arg.data_ptr<int64_t>() : nullptr, G, F, kind_of(r), stream));
    });
  });
  return {out, arg};
}

at::Tensor spmm_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& x,
                     const c10::optional<at::Tensor>& value, const c10::optional<at::Tensor>& /*csc_ptr*/,
                     const c10::optional<at::Tensor>& /*csc_row*/, const c10::optional<at::Tensor>& /*csc_perm*/,
                     c10::string_view reduce, bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_mean_dtype(x, r, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  return std::get<0>(spmm_launch(prepare_spmm(ptr, col, x, value, validate), r, false));
}

std::tuple<at::Tensor, at::Tensor> spmm_arg_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& x,
                                                 const c10::optional<at::Tensor>& value, c10::string_view reduce,
                                                 bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  const c10::cuda::CUDAGuard guard(x.device());
  return spmm_launch(prepare_spmm(ptr, col, x, value, validate), r, true);
}

// The value gradients of spmm ([E]) and of spmm_feature ([E, F]): the same
// inputs and checks.
at::Tensor value_grad_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& grad_in,
                           const at::Tensor& x, c10::string_view reduce, bool validate, bool per_feature) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_spmm_value_grad_args(ptr, grad_in, x, r, std::string(reduce));
  check_same_device(x, grad_in, "grad");
  const c10::cuda::CUDAGuard guard(x.device());
  auto in = prepare_spmm(ptr, col, x, c10::nullopt, validate);
  auto grad = grad_in.contiguous();
  const int64_t G = in.ptr.numel() - 1, E = in.col.numel(), F = in.x.size(1);
  auto out = per_feature ? at::empty({E, F}, in.x.options()) : at::empty({E}, in.x.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(in.x.scalar_type(), "spmm_value_grad_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(in.ptr.scalar_type(), "spmm_value_grad_cuda_idx", [&] {
      using cuda_t = typename CudaType<scalar_t>::type;
      auto fn = per_feature ? cuda::spmm_feature_value_grad<cuda_t, index_t> : cuda::spmm_value_grad<cuda_t, index_t>;
      C10_CUDA_CHECK(fn(in.ptr.data_ptr<index_t>(), in.col.data_ptr<index_t>(), cptr<scalar_t>(grad),
                        cptr<scalar_t>(in.x), mptr<scalar_t>(out), G, F, r == Reduce::Mean, stream));
    });
  });
  return out;
}

at::Tensor spmm_value_grad_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& grad,
                                const at::Tensor& x, c10::string_view reduce, bool validate) {
  return value_grad_cuda(ptr, col, grad, x, reduce, validate, false);
}

at::Tensor spmm_feature_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& x,
                             const at::Tensor& value_in, const c10::optional<at::Tensor>& value_perm_in,
                             const c10::optional<at::Tensor>& /*csc_ptr*/, const c10::optional<at::Tensor>& /*csc_row*/,
                             const c10::optional<at::Tensor>& /*csc_perm*/, c10::string_view reduce, bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  TORCH_CHECK_VALUE(r == Reduce::Sum || r == Reduce::Mean, "spmm_feature takes reduce 'sum' or 'mean', got '",
                    std::string(reduce), "'");
  check_mean_dtype(x, r, "x");
  check_spmm_feature_inputs(ptr, col, x, value_in, value_perm_in);
  check_same_device(x, value_in, "value");
  if (value_perm_in.has_value()) check_same_device(x, *value_perm_in, "value_perm");
  const c10::cuda::CUDAGuard guard(x.device());
  auto in = prepare_spmm(ptr, col, x, c10::nullopt, validate);
  auto value = value_in.contiguous();
  at::Tensor value_perm = value_perm_in.has_value() ? value_perm_in->contiguous() : at::Tensor();
  if (validate && value_perm.defined()) validate_index(value_perm, value.size(0), "value_perm", "E =");
  const int64_t G = in.ptr.numel() - 1, F = in.x.size(1);
  auto out = at::empty({G, F}, in.x.options());
  auto stream = c10::cuda::getCurrentCUDAStream();
  GRAPHEQUI_CUDA_DISPATCH(in.x.scalar_type(), "spmm_feature_cuda", [&] {
    AT_DISPATCH_INDEX_TYPES(in.ptr.scalar_type(), "spmm_feature_cuda_idx", [&] {
      C10_CUDA_CHECK(cuda::spmm_feature(in.ptr.data_ptr<index_t>(), in.col.data_ptr<index_t>(), cptr<scalar_t>(in.x),
                                        cptr<scalar_t>(value),
                                        value_perm.defined() ? value_perm.data_ptr<int64_t>() : nullptr,
                                        mptr<scalar_t>(out), G, F, r == Reduce::Mean, stream));
    });
  });
  return out;
}

at::Tensor spmm_feature_value_grad_cuda(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& grad,
                                        const at::Tensor& x, c10::string_view reduce, bool validate) {
  return value_grad_cuda(ptr, col, grad, x, reduce, validate, true);
}

// Stable sort of col (edges of one column keep their CSR order); without
// validation nothing here syncs with the host.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose_cuda(const at::Tensor& ptr_in, const at::Tensor& col_in,
                                                                  int64_t num_cols, bool validate) {
  check_csr_transpose_args(ptr_in, col_in, num_cols);
  check_same_device(ptr_in, col_in, "col");
  const c10::cuda::CUDAGuard guard(ptr_in.device());
  auto ptr = ptr_in.contiguous();
  auto col = col_in.contiguous();
  const int64_t E = col.numel();
  if (validate) {
    validate_ptr(ptr, E, "col.numel()");
    validate_index(col, num_cols, "col", "num_cols");
  }
  auto sorted = at::sort(col, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto perm = std::get<1>(sorted);
  auto colptr = ptr_of_sorted(std::get<0>(sorted), num_cols).to(col.scalar_type());
  auto counts = (ptr.slice(0, 1) - ptr.slice(0, 0, -1)).to(at::kLong);
  auto row_of = at::repeat_interleave(at::arange(ptr.numel() - 1, col.options()), counts, /*dim=*/0,
                                      /*output_size=*/E);
  return {colptr, row_of.index_select(0, perm), perm};
}

}  // namespace

TORCH_LIBRARY_IMPL(graphequi, CUDA, m) {
  m.impl("segment", &segment_cuda);
  m.impl("segment_arg", &segment_arg_cuda);
  m.impl("scatter", &scatter_cuda);
  m.impl("scatter_arg", &scatter_arg_cuda);
  m.impl("gather_csr", &gather_csr_cuda);
  m.impl("gather_coo", &gather_coo_cuda);
  m.impl("spmm", &spmm_cuda);
  m.impl("spmm_arg", &spmm_arg_cuda);
  m.impl("spmm_value_grad", &spmm_value_grad_cuda);
  m.impl("spmm_feature", &spmm_feature_cuda);
  m.impl("spmm_feature_value_grad", &spmm_feature_value_grad_cuda);
  m.impl("csr_transpose", &csr_transpose_cuda);
}

}  // namespace graphequi

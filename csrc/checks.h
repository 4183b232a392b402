// Shape and value checks shared by the CPU and CUDA glue. They run before any
// kernel and name the offending argument; TORCH_CHECK_{VALUE,INDEX,TYPE}
// surface in Python as ValueError / IndexError / TypeError.
#pragma once
#include <ATen/ATen.h>
#include <string>

namespace graphequi {

enum class Reduce { Sum, Mean, Min, Max };

// Value ops take all four reductions; arg ops (which also return the winning
// rows) only min and max.
inline Reduce parse_reduce(const std::string& r, bool arg_op) {
  if (r == "min") return Reduce::Min;
  if (r == "max") return Reduce::Max;
  if (!arg_op) {
    if (r == "sum" || r == "add") return Reduce::Sum;
    if (r == "mean") return Reduce::Mean;
    TORCH_CHECK_VALUE(false, "reduce must be 'sum', 'mean', 'min' or 'max', got '", r, "'");
  }
  TORCH_CHECK_VALUE(false, "reduce must be 'min' or 'max' for this op, got '", r, "'");
}

inline void check_src(const at::Tensor& src, const char* name) {
  TORCH_CHECK_VALUE(src.dim() == 3, name, " must be a 3-D [B, E, F] tensor, got ", src.dim(), " dims");
  TORCH_CHECK_TYPE(!src.is_complex() && src.scalar_type() != at::kBool,
                   name, " must be a real floating or integer tensor, got ", src.scalar_type());
}

inline void check_index_tensor(const at::Tensor& index, const char* name) {
  TORCH_CHECK_TYPE(index.scalar_type() == at::kLong || index.scalar_type() == at::kInt,
                   name, " must be int64 or int32, got ", index.scalar_type());
  TORCH_CHECK_VALUE(index.dim() == 1, name, " must be 1-D, got ", index.dim(), " dims");
}

inline void check_index_matches(const at::Tensor& src, const at::Tensor& index) {
  TORCH_CHECK_VALUE(index.numel() == src.size(1), "index must have one entry per row of src (", src.size(1),
                    "), got ", index.numel());
}

inline void check_mean_dtype(const at::Tensor& src, Reduce r, const char* name = "src") {
  TORCH_CHECK_TYPE(r != Reduce::Mean || at::isFloatingType(src.scalar_type()),
                   "reduce='mean' needs floating-point ", name, ", got ", src.scalar_type());
}

inline void check_arg(const c10::optional<at::Tensor>& arg, const at::Tensor& grad, Reduce r) {
  if (r == Reduce::Min || r == Reduce::Max) {
    TORCH_CHECK_VALUE(arg.has_value(), "arg is required for reduce='min'/'max'");
    TORCH_CHECK_TYPE(arg->scalar_type() == at::kLong, "arg must be int64, got ", arg->scalar_type());
    TORCH_CHECK_VALUE(arg->sizes() == grad.sizes(), "arg must have the shape of grad ", grad.sizes(),
                      ", got ", arg->sizes());
  }
}

// spmm's CSR (ptr [G + 1], col [E], same index dtype), x [N, F] and the
// optional per-edge value [E] of x's dtype. Shapes and dtypes only: no sync.
inline void check_spmm_inputs(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& x,
                              const c10::optional<at::Tensor>& value) {
  check_index_tensor(ptr, "ptr");
  check_index_tensor(col, "col");
  TORCH_CHECK_TYPE(ptr.scalar_type() == col.scalar_type(), "ptr and col must have the same dtype, got ",
                   ptr.scalar_type(), " and ", col.scalar_type());
  TORCH_CHECK_VALUE(ptr.numel() >= 1, "ptr must have at least one entry");
  TORCH_CHECK_VALUE(x.dim() == 2, "x must be a 2-D [N, F] tensor, got ", x.dim(), " dims");
  TORCH_CHECK_TYPE(!x.is_complex() && x.scalar_type() != at::kBool,
                   "x must be a real floating or integer tensor, got ", x.scalar_type());
  if (value.has_value()) {
    TORCH_CHECK_VALUE(value->dim() == 1 && value->numel() == col.numel(), "value must be 1-D with one entry per edge (",
                      col.numel(), "), got shape ", value->sizes());
    TORCH_CHECK_TYPE(value->scalar_type() == x.scalar_type(), "value must have the dtype of x (", x.scalar_type(),
                     "), got ", value->scalar_type());
  }
}

// spmm_feature: a value per edge and feature, value [E, F] of x's dtype and width.
// value_perm, when given: int64 [E], edge k reads value row value_perm[k].
inline void check_spmm_feature_inputs(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& x,
                                      const at::Tensor& value, const c10::optional<at::Tensor>& value_perm) {
  check_spmm_inputs(ptr, col, x, c10::nullopt);
  TORCH_CHECK_VALUE(value.dim() == 2 && value.size(0) == col.numel() && value.size(1) == x.size(1),
                    "value must be [E, F] = [", col.numel(), ", ", x.size(1), "], got shape ", value.sizes());
  if (value_perm.has_value()) {
    TORCH_CHECK_TYPE(value_perm->scalar_type() == at::kLong, "value_perm must be int64");
    TORCH_CHECK_VALUE(value_perm->dim() == 1 && value_perm->numel() == col.numel(),
                      "value_perm must be 1-D with one entry per edge (", col.numel(), ")");
  }
  TORCH_CHECK_TYPE(value.scalar_type() == x.scalar_type(), "value must have the dtype of x (", x.scalar_type(),
                   "), got ", value.scalar_type());
}

inline Reduce parse_any_reduce(const std::string& r) { return parse_reduce(r, false); }

// spmm_value_grad: sum/mean only, grad [G, F] in x's dtype.
inline void check_spmm_value_grad_args(const at::Tensor& ptr, const at::Tensor& grad, const at::Tensor& x,
                                       Reduce r, const std::string& reduce) {
  TORCH_CHECK_VALUE(r == Reduce::Sum || r == Reduce::Mean, "spmm_value_grad takes reduce 'sum' or 'mean', got '",
                    reduce, "'");
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == ptr.numel() - 1 && grad.size(1) == x.size(1),
                    "grad must be [", ptr.numel() - 1, ", ", x.size(1), "], got ", grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), "grad must have the dtype of x");
}

// csr_transpose: ptr and col of one index dtype, a non-negative column count.
inline void check_csr_transpose_args(const at::Tensor& ptr, const at::Tensor& col, int64_t num_cols) {
  check_index_tensor(ptr, "ptr");
  check_index_tensor(col, "col");
  TORCH_CHECK_TYPE(ptr.scalar_type() == col.scalar_type(), "ptr and col must have the same dtype, got ",
                   ptr.scalar_type(), " and ", col.scalar_type());
  TORCH_CHECK_VALUE(ptr.numel() >= 1, "ptr must have at least one entry");
  TORCH_CHECK_VALUE(num_cols >= 0, "num_cols must be non-negative, got ", num_cols);
}

// depthwise_mix: weight [O, L, C] and x [N, L, C] of one floating dtype.
inline void check_depthwise_mix_args(const at::Tensor& weight, const at::Tensor& x) {
  TORCH_CHECK_VALUE(weight.dim() == 3 && x.dim() == 3, "depthwise_mix: weight must be [O, L, C] and x [N, L, C], got ",
                    weight.sizes(), " and ", x.sizes());
  TORCH_CHECK_VALUE(weight.size(1) == x.size(1) && weight.size(2) == x.size(2),
                    "depthwise_mix: weight [O, L, C] and x [N, L, C] must agree on L and C, got ", weight.sizes(),
                    " and ", x.sizes());
  TORCH_CHECK_TYPE(x.is_floating_point() && weight.scalar_type() == x.scalar_type(),
                   "depthwise_mix: weight and x must share a floating dtype, got ", weight.scalar_type(), " and ",
                   x.scalar_type());
}

// depthwise_mix_weight_grad: grad [N, O, C] and x [N, L, C] of one floating dtype.
inline void check_depthwise_mix_weight_grad_args(const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK_VALUE(grad.dim() == 3 && x.dim() == 3 && grad.size(0) == x.size(0) && grad.size(2) == x.size(2),
                    "depthwise_mix_weight_grad: grad must be [N, O, C] and x [N, L, C], got ", grad.sizes(), " and ",
                    x.sizes());
  TORCH_CHECK_TYPE(x.is_floating_point() && grad.scalar_type() == x.scalar_type(),
                   "depthwise_mix_weight_grad: grad and x must share a floating dtype, got ", grad.scalar_type(),
                   " and ", x.scalar_type());
}

// symmetric_pair_features: pairs [P, 2, D] of a floating dtype.
inline void check_symmetric_pairs(const at::Tensor& pairs) {
  TORCH_CHECK_VALUE(pairs.dim() == 3 && pairs.size(1) == 2, "symmetric_pair_features: pairs must be [P, 2, D], got ",
                    pairs.sizes());
  TORCH_CHECK_TYPE(pairs.is_floating_point(), "symmetric_pair_features: pairs must be floating point, got ",
                   pairs.scalar_type());
}

}  // namespace graphequi

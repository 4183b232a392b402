// segment_linear: a linear map per contiguous segment of rows,
//   out[r] = x[r] @ weight[g]^T (+ bias[g])   for the rows r of segment g,
// with x [L, K], weight [G, N, K], bias [G, N] and the segment sizes given as
// integers (static shapes: no device value is read). One op call replaces G
// F.linear calls, their concatenation and their G autograd nodes; the GEMMs
// are ATen's, on narrowed views written in place, so the kernel is the same
// on every device and is registered as CompositeExplicitAutograd.
// segment_linear_weight_grad returns the weight gradient [G, N, K] (grad_g^T
// x_g per segment, 0 for an empty one) and, when asked, the bias gradient
// [G, N] (the column sums of grad_g).
#include <ATen/ATen.h>
#include <torch/library.h>

namespace graphequi {
namespace {

void check_sizes(c10::IntArrayRef sizes, int64_t rows, int64_t groups, const char* op) {
  TORCH_CHECK_VALUE(static_cast<int64_t>(sizes.size()) == groups, op, ": sizes has ", sizes.size(),
                    " segments but the weight has ", groups, " groups");
  int64_t total = 0;
  for (size_t g = 0; g < sizes.size(); ++g) {
    TORCH_CHECK_VALUE(sizes[g] >= 0, op, ": segment sizes must be non-negative, got ", sizes[g], " at segment ", g);
    total += sizes[g];
  }
  TORCH_CHECK_VALUE(total == rows, op, ": segment sizes sum to ", total, " but there are ", rows, " rows");
}

void check_floating(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name, " must be a floating-point tensor, got ",
                   t.scalar_type());
}

at::Tensor segment_linear(const at::Tensor& x, c10::IntArrayRef sizes, const at::Tensor& weight,
                          const c10::optional<at::Tensor>& bias) {
  check_floating(x, "segment_linear", "x");
  TORCH_CHECK_VALUE(x.dim() == 2, "segment_linear: x must be a 2-D [L, K] tensor, got ", x.dim(), " dims");
  TORCH_CHECK_VALUE(weight.dim() == 3 && weight.size(2) == x.size(1), "segment_linear: weight must be [G, N, ",
                    x.size(1), "] for x [L, ", x.size(1), "], got ", weight.sizes());
  TORCH_CHECK_TYPE(weight.scalar_type() == x.scalar_type(), "segment_linear: weight (", weight.scalar_type(),
                   ") and x (", x.scalar_type(), ") must share a dtype");
  check_sizes(sizes, x.size(0), weight.size(0), "segment_linear");
  const int64_t N = weight.size(1);
  if (bias.has_value()) {
    TORCH_CHECK_VALUE(bias->dim() == 2 && bias->size(0) == weight.size(0) && bias->size(1) == N,
                      "segment_linear: bias must be [", weight.size(0), ", ", N, "], got ", bias->sizes());
    TORCH_CHECK_TYPE(bias->scalar_type() == x.scalar_type(), "segment_linear: bias (", bias->scalar_type(),
                     ") and x (", x.scalar_type(), ") must share a dtype");
  }
  auto out = at::empty({x.size(0), N}, x.options());
  int64_t start = 0;
  for (size_t g = 0; g < sizes.size(); ++g) {
    const int64_t rows = sizes[g];
    if (rows > 0) {
      auto out_g = out.narrow(0, start, rows);
      auto x_g = x.narrow(0, start, rows);
      auto w_t = weight.select(0, static_cast<int64_t>(g)).t();
      if (bias.has_value()) {
        at::addmm_out(out_g, bias->select(0, static_cast<int64_t>(g)), x_g, w_t);
      } else {
        at::mm_out(out_g, x_g, w_t);
      }
    }
    start += rows;
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> segment_linear_weight_grad(const at::Tensor& grad, const at::Tensor& x,
                                                              c10::IntArrayRef sizes, bool with_bias) {
  check_floating(grad, "segment_linear_weight_grad", "grad");
  TORCH_CHECK_VALUE(x.dim() == 2 && grad.dim() == 2 && grad.size(0) == x.size(0),
                    "segment_linear_weight_grad: grad [L, N] and x [L, K] must have the same rows, got ",
                    grad.sizes(), " and ", x.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), "segment_linear_weight_grad: grad (", grad.scalar_type(),
                   ") and x (", x.scalar_type(), ") must share a dtype");
  const int64_t G = static_cast<int64_t>(sizes.size());
  check_sizes(sizes, x.size(0), G, "segment_linear_weight_grad");
  const int64_t N = grad.size(1), K = x.size(1);
  auto grad_weight = at::empty({G, N, K}, x.options());
  auto grad_bias = with_bias ? at::empty({G, N}, x.options()) : at::empty({0}, x.options());
  int64_t start = 0;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t rows = sizes[g];
    auto gw = grad_weight.select(0, g);
    if (rows > 0) {
      auto grad_g = grad.narrow(0, start, rows);
      at::mm_out(gw, grad_g.t(), x.narrow(0, start, rows));
      if (with_bias) {
        auto gb = grad_bias.select(0, g);
        at::sum_out(gb, grad_g, {0});
      }
    } else {
      gw.zero_();
      if (with_bias) grad_bias.select(0, g).zero_();
    }
    start += rows;
  }
  return {grad_weight, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(graphequi, CompositeExplicitAutograd, m) {
  m.impl("segment_linear", &segment_linear);
  m.impl("segment_linear_weight_grad", &segment_linear_weight_grad);
}

}  // namespace graphequi

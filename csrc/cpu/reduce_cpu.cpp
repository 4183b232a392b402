// CPU kernels for segment (CSR) and scatter (COO) reductions and their
// adjoints (gather_csr / gather_coo).
//
// Parallel strategies (both cores busy on one large call):
// * CSR: rows are split into equal-sized chunks and each chunk owns the groups
//   that start inside it, so skewed degree distributions stay balanced.
// * COO (unsorted index): "owner computes" -- each thread owns a contiguous
//   range of output groups, scans the whole index and reduces only the rows
//   that land in its range. The index is read once per thread (cheap: 8 bytes
//   per row versus 4F bytes of features), src is read once overall, no atomics
//   and no private copies of the output, and the reduction order equals the
//   sequential row order, so results are deterministic and ties in min/max go
//   to the lowest row. A sorted index (detected during validation) takes the
//   CSR path instead.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <atomic>
#include <mutex>
#include <vector>

#include "../checks.h"
#include "isa.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace graphequi {
namespace {

template <typename cmp_t>
using lane_of = std::conditional_t<sizeof(cmp_t) == 8, int64_t, int32_t>;

// A fresh output tensor. Large outputs are written once, straight after
// allocation, so their first-touch page faults cost more than the kernel
// itself (a fresh 256 MB tensor: ~100 ms of faults on 4 KiB pages). Asking the
// kernel for transparent huge pages on the untouched range cuts the number of
// faults 512x; it is only advice (a no-op where THP is disabled or the memory
// was already touched), so results never depend on it.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  auto out = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const size_t bytes = out.nbytes();
  if (bytes >= 4 * kHuge) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(out.data_ptr());
    const uintptr_t first = (start + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t last = (start + bytes) & ~(kHuge - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return out;
}

// ---------------------------------------------------------------- validation

// `rows` names what ptr[-1] must equal in the message.
template <typename index_t>
void validate_ptr(const at::Tensor& ptr_t, int64_t E, const char* rows = "src.size(dim)") {
  const index_t* ptr = ptr_t.data_ptr<index_t>();
  const int64_t n = ptr_t.numel();
  TORCH_CHECK_VALUE(n >= 1, "ptr must have at least one entry");
  TORCH_CHECK_VALUE(ptr[0] == 0, "ptr must start at 0, got ", static_cast<int64_t>(ptr[0]));
  TORCH_CHECK_VALUE(static_cast<int64_t>(ptr[n - 1]) == E, "ptr[-1] must equal ", rows, " = ", E,
                    ", got ", static_cast<int64_t>(ptr[n - 1]));
  for (int64_t i = 1; i < n; ++i) {
    TORCH_CHECK_VALUE(ptr[i] >= ptr[i - 1], "ptr must be non-decreasing, but ptr[", i, "] = ",
                      static_cast<int64_t>(ptr[i]), " < ptr[", i - 1, "] = ", static_cast<int64_t>(ptr[i - 1]));
  }
}

struct IndexStats {
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
  bool sorted = true;
};

template <typename index_t>
IndexStats index_stats(const index_t* index, int64_t E) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  std::vector<IndexStats> partial(threads);
  at::parallel_for(0, E, 1 << 16, [&](int64_t b, int64_t e) {
    IndexStats s;
    for (int64_t i = b; i < e; ++i) {
      const int64_t v = index[i];
      s.min = std::min(s.min, v);
      s.max = std::max(s.max, v);
      if (i > 0 && index[i - 1] > index[i]) s.sorted = false;
    }
    auto& slot = partial[at::get_thread_num()];
    slot.min = std::min(slot.min, s.min);
    slot.max = std::max(slot.max, s.max);
    slot.sorted = slot.sorted && s.sorted;
  });
  IndexStats total;
  for (auto& s : partial) {
    total.min = std::min(total.min, s.min);
    total.max = std::max(total.max, s.max);
    total.sorted = total.sorted && s.sorted;
  }
  return total;
}

template <typename index_t>
bool validate_index(const at::Tensor& index_t_, int64_t G, const char* name = "index",
                    const char* bound = "dim_size") {
  const int64_t E = index_t_.numel();
  if (E == 0) return true;
  auto s = index_stats(index_t_.data_ptr<index_t>(), E);
  TORCH_CHECK_INDEX(s.min >= 0, name, " contains a negative entry (", s.min, ")");
  TORCH_CHECK_INDEX(s.max < G, name, " contains ", s.max, ", out of range for ", bound, " ", G);
  return s.sorted;
}

// ptr of a sorted, validated index: ptr[g] = first row with index >= g.
template <typename index_t>
at::Tensor ptr_from_sorted(const at::Tensor& index, int64_t G) {
  auto ptr = at::empty({G + 1}, index.options());
  const index_t* idx = index.data_ptr<index_t>();
  index_t* p = ptr.data_ptr<index_t>();
  const int64_t E = index.numel();
  at::parallel_for(0, G + 1, 4096, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g)
      p[g] = static_cast<index_t>(std::lower_bound(idx, idx + E, static_cast<index_t>(g)) - idx);
  });
  return ptr;
}

// Stable parallel counting sort of a validated index: ptr [G + 1] and perm [E]
// with rows of group g at perm[ptr[g]:ptr[g+1]] in increasing order (so the
// CSR kernels' "first row wins ties" is the lowest original row).
template <typename index_t>
std::pair<at::Tensor, at::Tensor> counting_sort(const at::Tensor& index_t_, int64_t G) {
  const index_t* index = index_t_.data_ptr<index_t>();
  const int64_t E = index_t_.numel();
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), E / 65536));
  std::vector<std::vector<int64_t>> offset(chunks, std::vector<int64_t>(G, 0));
  at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c)
      for (int64_t e = E * c / chunks; e < E * (c + 1) / chunks; ++e) ++offset[c][index[e]];
  });
  auto ptr = at::empty({G + 1}, index_t_.options().dtype(at::kLong));
  int64_t* p = ptr.data_ptr<int64_t>();
  int64_t running = 0;
  for (int64_t g = 0; g < G; ++g) {
    p[g] = running;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t count = offset[c][g];
      offset[c][g] = running;
      running += count;
    }
  }
  p[G] = running;
  auto perm = at::empty({E}, index_t_.options().dtype(at::kLong));
  int64_t* q = perm.data_ptr<int64_t>();
  at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      auto& next = offset[c];
      for (int64_t e = E * c / chunks; e < E * (c + 1) / chunks; ++e) q[next[index[e]]++] = e;
    }
  });
  return {ptr, perm};
}

// ------------------------------------------------------------------- kernels

// The kernels are compiled twice from one source: for baseline x86-64 (SSE2,
// what the wheel must run on) and for AVX2 (twice the lanes, and blendv for the
// branch-free min/max select). As torch does for its own CPU kernels, the glue
// picks the widest one the CPU supports at run time; only float and double
// instantiate the AVX2 copy. GRAPHEQUI_CPU_ISA=baseline forces the baseline
// copy (the tests compare the two).
namespace isa_base {
#include "reduce_kernels.h"
}  // namespace isa_base

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GRAPHEQUI_AVX2_KERNELS 1
#pragma GCC push_options
#pragma GCC target("avx2")
namespace isa_avx2 {
#include "reduce_kernels.h"
}  // namespace isa_avx2
#pragma GCC pop_options
#else
#define GRAPHEQUI_AVX2_KERNELS 0
#endif

bool valid_isa(const std::string& isa) { return isa == "auto" || isa == "avx2" || isa == "baseline"; }

// The instruction-set choice: GRAPHEQUI_CPU_ISA, read once (the hot path must
// not call getenv), until set_cpu_isa replaces it. An invalid environment
// value is kept and reported by every kernel call, so it cannot go unnoticed.
std::mutex isa_mutex;
std::string& isa_choice() {
  static std::string choice = [] {
    const char* env = std::getenv("GRAPHEQUI_CPU_ISA");
    return std::string(env == nullptr ? "auto" : env);
  }();
  return choice;
}
// 1: AVX2 kernels, 0: baseline, -1: invalid choice, -2: not read yet.
std::atomic<int> isa_state{-2};

int compute_isa_state(const std::string& isa) {
  if (!valid_isa(isa)) return -1;
#if GRAPHEQUI_AVX2_KERNELS
  static const bool supported = __builtin_cpu_supports("avx2");
  return supported && isa != "baseline" ? 1 : 0;
#else
  return 0;
#endif
}

bool use_avx2() {
  int state = isa_state.load(std::memory_order_relaxed);
  if (state == -2) {
    std::lock_guard<std::mutex> lock(isa_mutex);
    state = compute_isa_state(isa_choice());
    isa_state.store(state);
  }
  if (state == -1) {
    std::lock_guard<std::mutex> lock(isa_mutex);
    TORCH_CHECK_VALUE(false, "GRAPHEQUI_CPU_ISA must be 'auto', 'avx2' or 'baseline', got '", isa_choice(), "'");
  }
  return state == 1;
}

// Calls fn(Kernels{}) with the kernels of the instruction set to use for scalar_t.
template <typename scalar_t, typename Fn>
void with_isa(const Fn& fn) {
#if GRAPHEQUI_AVX2_KERNELS
  if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
    if (use_avx2()) return fn(isa_avx2::Kernels{});
  }
#endif
  fn(isa_base::Kernels{});
}

// Calls fn(std::integral_constant<Reduce, R>) for the runtime reduction r.
template <typename Fn>
void with_reduce(Reduce r, const Fn& fn) {
  switch (r) {
    case Reduce::Sum: fn(std::integral_constant<Reduce, Reduce::Sum>()); break;
    case Reduce::Mean: fn(std::integral_constant<Reduce, Reduce::Mean>()); break;
    case Reduce::Min: fn(std::integral_constant<Reduce, Reduce::Min>()); break;
    case Reduce::Max: fn(std::integral_constant<Reduce, Reduce::Max>()); break;
  }
}


// ---------------------------------------------------------------------- glue

#define GRAPHEQUI_DISPATCH_SRC(TYPE, NAME, ...) \
  AT_DISPATCH_ALL_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, TYPE, NAME, __VA_ARGS__)
// the ops that only make sense for floating point (mixes, pair features)
#define GRAPHEQUI_DISPATCH_FLOAT(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, TYPE, NAME, __VA_ARGS__)

at::Tensor segment_value_impl(const at::Tensor& src, const at::Tensor& ptr, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = empty_output({B, G, F}, src.options());
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "segment_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cpu_idx", [&] {
      with_reduce(r, [&](auto R) {
        with_isa<scalar_t>([&](auto k) {
          decltype(k)::template segment_value<decltype(R)::value, scalar_t, index_t>(
              src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), out.data_ptr<scalar_t>(), B, E, G, F);
        });
      });
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> segment_arg_impl(const at::Tensor& src, const at::Tensor& ptr,
                                                    const at::Tensor& perm, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = empty_output({B, G, F}, src.options());
  auto arg = empty_output({B, G, F}, src.options().dtype(at::kLong));
  const int64_t* perm_data = perm.defined() ? perm.data_ptr<int64_t>() : nullptr;
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "segment_arg_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_arg_cpu_idx", [&] {
      using lane_t = lane_of<at::opmath_type<scalar_t>>;
      // Relative row ids fit the narrow lane unless one segment is huge.
      const bool narrow = E < std::numeric_limits<lane_t>::max();
      with_isa<scalar_t>([&](auto k) {
        using K = decltype(k);
        auto fn = r == Reduce::Max
                      ? (narrow ? K::template segment_arg<scalar_t, index_t, true, lane_t>
                                : K::template segment_arg<scalar_t, index_t, true, int64_t>)
                      : (narrow ? K::template segment_arg<scalar_t, index_t, false, lane_t>
                                : K::template segment_arg<scalar_t, index_t, false, int64_t>);
        fn(src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), perm_data, out.data_ptr<scalar_t>(),
           arg.data_ptr<int64_t>(), B, E, G, F);
      });
    });
  });
  return {out, arg};
}

at::Tensor segment_cpu(const at::Tensor& src_in, const at::Tensor& ptr_in, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  check_mean_dtype(src_in, r);
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cpu_ptr", [&] { validate_ptr<index_t>(ptr, src.size(1)); });
  return segment_value_impl(src, ptr, r);
}

std::tuple<at::Tensor, at::Tensor> segment_arg_cpu(const at::Tensor& src_in, const at::Tensor& ptr_in,
                                                   c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_arg_cpu_ptr", [&] { validate_ptr<index_t>(ptr, src.size(1)); });
  return segment_arg_impl(src, ptr, at::Tensor(), r);
}

// Validates a COO index; returns its CSR offsets when it is sorted.
at::Tensor sorted_ptr_or_undefined(const at::Tensor& src, const at::Tensor& index, int64_t G) {
  check_index_matches(src, index);
  TORCH_CHECK_VALUE(G >= 0, "dim_size must be non-negative, got ", G);
  at::Tensor ptr;
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cpu_check", [&] {
    if (validate_index<index_t>(index, G)) ptr = ptr_from_sorted<index_t>(index, G);
  });
  return ptr;
}

at::Tensor scatter_cpu(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_src(src_in, "src");
  check_index_tensor(index_in, "index");
  check_mean_dtype(src_in, r);
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  auto ptr = sorted_ptr_or_undefined(src, index, G);
  if (ptr.defined()) return segment_value_impl(src, ptr, r);
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2);
  auto out = empty_output({B, G, F}, src.options());
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "scatter_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cpu_idx", [&] {
      with_reduce(r, [&](auto R) {
        with_isa<scalar_t>([&](auto k) {
          decltype(k)::template scatter_value<decltype(R)::value, scalar_t, index_t>(
              src.data_ptr<scalar_t>(), index.data_ptr<index_t>(), out.data_ptr<scalar_t>(), B, E, G, F);
        });
      });
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> scatter_arg_cpu(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G,
                                                   c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_src(src_in, "src");
  check_index_tensor(index_in, "index");
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  auto ptr = sorted_ptr_or_undefined(src, index, G);
  if (ptr.defined()) return segment_arg_impl(src, ptr, at::Tensor(), r);
  // Unsorted: group the rows with a stable counting sort, then run the CSR
  // kernel through the permutation (winning rows map back through it).
  std::pair<at::Tensor, at::Tensor> grouping;
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_arg_cpu_sort", [&] { grouping = counting_sort<index_t>(index, G); });
  return segment_arg_impl(src, grouping.first, grouping.second, r);
}

at::Tensor gather_csr_cpu(const at::Tensor& grad_in, const at::Tensor& ptr_in, const c10::optional<at::Tensor>& arg_in,
                          int64_t E, c10::string_view reduce) {
  const Reduce r = parse_any_reduce(std::string(reduce));
  check_src(grad_in, "grad");
  check_index_tensor(ptr_in, "ptr");
  check_arg(arg_in, grad_in, r);
  TORCH_CHECK_VALUE(ptr_in.numel() == grad_in.size(1) + 1, "ptr must have grad.size(1) + 1 = ", grad_in.size(1) + 1,
                    " entries, got ", ptr_in.numel());
  auto grad = grad_in.contiguous();
  auto ptr = ptr_in.contiguous();
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gather_csr_cpu_ptr", [&] { validate_ptr<index_t>(ptr, E); });
  at::Tensor arg = arg_in.has_value() ? arg_in->contiguous() : at::Tensor();
  const int64_t B = grad.size(0), G = grad.size(1), F = grad.size(2);
  auto out = empty_output({B, E, F}, grad.options());
  GRAPHEQUI_DISPATCH_SRC(grad.scalar_type(), "gather_csr_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gather_csr_cpu_idx", [&] {
      using lane_t = lane_of<scalar_t>;
      const bool narrow = E < std::numeric_limits<lane_t>::max();
      with_isa<scalar_t>([&](auto k) {
        using K = decltype(k);
        auto fn = narrow ? K::template gather_csr<scalar_t, index_t, lane_t>
                         : K::template gather_csr<scalar_t, index_t, int64_t>;
        fn(grad.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
           out.data_ptr<scalar_t>(), B, E, G, F, r);
      });
    });
  });
  return out;
}

at::Tensor gather_coo_cpu(const at::Tensor& grad_in, const at::Tensor& index_in, const c10::optional<at::Tensor>& arg_in,
                          c10::string_view reduce) {
  const Reduce r = parse_any_reduce(std::string(reduce));
  check_src(grad_in, "grad");
  check_index_tensor(index_in, "index");
  check_arg(arg_in, grad_in, r);
  auto grad = grad_in.contiguous();
  auto index = index_in.contiguous();
  const int64_t B = grad.size(0), G = grad.size(1), F = grad.size(2), E = index.numel();
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "gather_coo_cpu_check", [&] { validate_index<index_t>(index, G); });
  at::Tensor arg = arg_in.has_value() ? arg_in->contiguous() : at::Tensor();
  auto out = empty_output({B, E, F}, grad.options());
  GRAPHEQUI_DISPATCH_SRC(grad.scalar_type(), "gather_coo_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "gather_coo_cpu_idx", [&] {
      with_isa<scalar_t>([&](auto k) {
        decltype(k)::template gather_coo<scalar_t, index_t>(grad.data_ptr<scalar_t>(), index.data_ptr<index_t>(),
                                                            arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
                                                            out.data_ptr<scalar_t>(), B, E, G, F, r);
      });
    });
  });
  return out;
}


// ---------------------------------------------------------------------- spmm

// Value checks of a CSR that read its indices; skipped on the trusted path
// (validate = false).
void validate_csr(const at::Tensor& ptr, const at::Tensor& col, int64_t num_cols) {
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "spmm_cpu_check", [&] {
    validate_ptr<index_t>(ptr, col.numel(), "col.numel()");
    validate_index<index_t>(col, num_cols, "col", "x.size(0) =");
  });
}

struct SpmmInputs {
  at::Tensor ptr, col, x, value;
};

// Shape/dtype checks (always), contiguous copies, then the index checks
// unless the caller vouches for the CSR (validate = false); as on CUDA.
SpmmInputs prepare_spmm(const at::Tensor& ptr_in, const at::Tensor& col_in, const at::Tensor& x_in,
                        const c10::optional<at::Tensor>& value_in, bool validate) {
  check_spmm_inputs(ptr_in, col_in, x_in, value_in);
  SpmmInputs in{ptr_in.contiguous(), col_in.contiguous(), x_in.contiguous(),
                value_in.has_value() ? value_in->contiguous() : at::Tensor()};
  if (validate) validate_csr(in.ptr, in.col, in.x.size(0));
  return in;
}

at::Tensor spmm_cpu(const at::Tensor& ptr_in, const at::Tensor& col_in, const at::Tensor& x_in,
                    const c10::optional<at::Tensor>& value_in, const c10::optional<at::Tensor>& /*csc_ptr*/,
                    const c10::optional<at::Tensor>& /*csc_row*/, const c10::optional<at::Tensor>& /*csc_perm*/,
                    c10::string_view reduce, bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_mean_dtype(x_in, r, "x");
  auto in = prepare_spmm(ptr_in, col_in, x_in, value_in, validate);
  const at::Tensor &ptr = in.ptr, &col = in.col, &x = in.x, &value = in.value;
  const int64_t G = ptr.numel() - 1, E = col.numel(), F = x.size(1);
  auto out = empty_output({G, F}, x.options());
  GRAPHEQUI_DISPATCH_SRC(x.scalar_type(), "spmm_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "spmm_cpu_idx", [&] {
      const scalar_t* v = value.defined() ? value.data_ptr<scalar_t>() : nullptr;
      with_reduce(r, [&](auto R) {
        with_isa<scalar_t>([&](auto k) {
          using K = decltype(k);
          auto fn = v != nullptr ? K::template spmm_value<decltype(R)::value, true, scalar_t, index_t>
                                 : K::template spmm_value<decltype(R)::value, false, scalar_t, index_t>;
          fn(ptr.data_ptr<index_t>(), col.data_ptr<index_t>(), x.data_ptr<scalar_t>(), v, out.data_ptr<scalar_t>(),
             G, E, F);
        });
      });
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> spmm_arg_cpu(const at::Tensor& ptr_in, const at::Tensor& col_in,
                                                const at::Tensor& x_in, const c10::optional<at::Tensor>& value_in,
                                                c10::string_view reduce, bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  auto in = prepare_spmm(ptr_in, col_in, x_in, value_in, validate);
  const at::Tensor &ptr = in.ptr, &col = in.col, &x = in.x, &value = in.value;
  const int64_t G = ptr.numel() - 1, E = col.numel(), F = x.size(1);
  auto out = empty_output({G, F}, x.options());
  auto arg = empty_output({G, F}, x.options().dtype(at::kLong));
  GRAPHEQUI_DISPATCH_SRC(x.scalar_type(), "spmm_arg_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "spmm_arg_cpu_idx", [&] {
      using lane_t = lane_of<at::opmath_type<scalar_t>>;
      const scalar_t* v = value.defined() ? value.data_ptr<scalar_t>() : nullptr;
      // Relative edge ids fit the narrow lane unless one row is huge.
      const bool narrow = E < std::numeric_limits<lane_t>::max();
      with_isa<scalar_t>([&](auto k) {
        using K = decltype(k);
        auto pick = [&](auto is_max) {
          constexpr bool kMax = decltype(is_max)::value;
          if (v != nullptr) return narrow ? K::template spmm_arg<kMax, true, scalar_t, index_t, lane_t>
                                          : K::template spmm_arg<kMax, true, scalar_t, index_t, int64_t>;
          return narrow ? K::template spmm_arg<kMax, false, scalar_t, index_t, lane_t>
                        : K::template spmm_arg<kMax, false, scalar_t, index_t, int64_t>;
        };
        auto fn = r == Reduce::Max ? pick(std::true_type()) : pick(std::false_type());
        fn(ptr.data_ptr<index_t>(), col.data_ptr<index_t>(), x.data_ptr<scalar_t>(), v, out.data_ptr<scalar_t>(),
           arg.data_ptr<int64_t>(), G, E, F);
      });
    });
  });
  return {out, arg};
}

// The value gradients of spmm (one per edge, [E]) and of spmm_feature (one per
// edge and feature, [E, F]): the same inputs, checks and traversal.
at::Tensor value_grad_cpu(const at::Tensor& ptr_in, const at::Tensor& col_in, const at::Tensor& grad_in,
                          const at::Tensor& x_in, c10::string_view reduce, bool validate, bool per_feature) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  // x must be [N, F] before grad is checked against it; prepare_spmm repeats this metadata check
  check_spmm_inputs(ptr_in, col_in, x_in, c10::nullopt);
  check_spmm_value_grad_args(ptr_in, grad_in, x_in, r, std::string(reduce));
  auto in = prepare_spmm(ptr_in, col_in, x_in, c10::nullopt, validate);
  const at::Tensor &ptr = in.ptr, &col = in.col, &x = in.x;
  auto grad = grad_in.contiguous();
  const int64_t G = ptr.numel() - 1, E = col.numel(), F = x.size(1);
  auto out = per_feature ? at::empty({E, F}, x.options()) : at::empty({E}, x.options());
  GRAPHEQUI_DISPATCH_SRC(x.scalar_type(), "spmm_value_grad_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "spmm_value_grad_cpu_idx", [&] {
      with_isa<scalar_t>([&](auto k) {
        using K = decltype(k);
        auto fn = per_feature ? K::template spmm_feature_value_grad<scalar_t, index_t>
                              : K::template spmm_value_grad<scalar_t, index_t>;
        fn(ptr.data_ptr<index_t>(), col.data_ptr<index_t>(), grad.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
           out.data_ptr<scalar_t>(), G, E, F, r == Reduce::Mean);
      });
    });
  });
  return out;
}

at::Tensor spmm_value_grad_cpu(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& grad,
                               const at::Tensor& x, c10::string_view reduce, bool validate) {
  return value_grad_cpu(ptr, col, grad, x, reduce, validate, false);
}

at::Tensor spmm_feature_cpu(const at::Tensor& ptr_in, const at::Tensor& col_in, const at::Tensor& x_in,
                            const at::Tensor& value_in, const c10::optional<at::Tensor>& value_perm_in,
                            const c10::optional<at::Tensor>& /*csc_ptr*/,
                            const c10::optional<at::Tensor>& /*csc_row*/, const c10::optional<at::Tensor>& /*csc_perm*/,
                            c10::string_view reduce, bool validate) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  TORCH_CHECK_VALUE(r == Reduce::Sum || r == Reduce::Mean, "spmm_feature takes reduce 'sum' or 'mean', got '",
                    std::string(reduce), "'");
  check_mean_dtype(x_in, r, "x");
  check_spmm_feature_inputs(ptr_in, col_in, x_in, value_in, value_perm_in);
  auto in = prepare_spmm(ptr_in, col_in, x_in, c10::nullopt, validate);
  const at::Tensor &ptr = in.ptr, &col = in.col, &x = in.x;
  auto value = value_in.contiguous();
  at::Tensor value_perm = value_perm_in.has_value() ? value_perm_in->contiguous() : at::Tensor();
  if (validate && value_perm.defined()) validate_index<int64_t>(value_perm, value.size(0), "value_perm", "E =");
  const int64_t G = ptr.numel() - 1, E = col.numel(), F = x.size(1);
  auto out = empty_output({G, F}, x.options());
  GRAPHEQUI_DISPATCH_SRC(x.scalar_type(), "spmm_feature_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "spmm_feature_cpu_idx", [&] {
      with_isa<scalar_t>([&](auto k) {
        decltype(k)::template spmm_feature<scalar_t, index_t>(ptr.data_ptr<index_t>(), col.data_ptr<index_t>(),
                                                              x.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                                              value_perm.defined() ? value_perm.data_ptr<int64_t>()
                                                                                   : nullptr,
                                                              out.data_ptr<scalar_t>(), G, E, F, r == Reduce::Mean);
      });
    });
  });
  return out;
}

at::Tensor spmm_feature_value_grad_cpu(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& grad,
                                       const at::Tensor& x, c10::string_view reduce, bool validate) {
  return value_grad_cpu(ptr, col, grad, x, reduce, validate, true);
}

at::Tensor spmm_arg_grad_cpu(const at::Tensor& colptr_in, const at::Tensor& row_in, const at::Tensor& perm_in,
                             const at::Tensor& arg_in, const at::Tensor& grad_in,
                             const c10::optional<at::Tensor>& value_in) {
  check_index_tensor(colptr_in, "csc colptr");
  check_index_tensor(row_in, "csc row");
  TORCH_CHECK_TYPE(colptr_in.scalar_type() == row_in.scalar_type(), "csc colptr and row must share a dtype");
  TORCH_CHECK_TYPE(perm_in.scalar_type() == at::kLong && arg_in.scalar_type() == at::kLong,
                   "csc perm and arg must be int64");
  TORCH_CHECK_VALUE(colptr_in.dim() == 1 && colptr_in.numel() >= 1, "csc colptr must be 1-D and non-empty");
  TORCH_CHECK_VALUE(row_in.dim() == 1 && perm_in.dim() == 1 && row_in.numel() == perm_in.numel(),
                    "csc row and perm must be 1-D with one entry per edge");
  TORCH_CHECK_VALUE(grad_in.dim() == 2 && arg_in.sizes() == grad_in.sizes(), "arg and grad must be [G, F], got ",
                    arg_in.sizes(), " and ", grad_in.sizes());
  if (value_in.has_value()) {
    TORCH_CHECK_VALUE(value_in->dim() == 1 && value_in->numel() == row_in.numel(), "value must have one entry per edge");
    TORCH_CHECK_TYPE(value_in->scalar_type() == grad_in.scalar_type(), "value must have the dtype of grad");
  }
  auto colptr = colptr_in.contiguous();
  auto row = row_in.contiguous();
  auto perm = perm_in.contiguous();
  auto arg = arg_in.contiguous();
  auto grad = grad_in.contiguous();
  at::Tensor value = value_in.has_value() ? value_in->contiguous() : at::Tensor();
  const int64_t N = colptr.numel() - 1, E = row.numel(), G = grad.size(0), F = grad.size(1);
  // row and perm come from the transpose that graphequi built, but a caller may hand
  // its own: they index grad/arg and value, so their ranges are checked (no sync on CPU)
  AT_DISPATCH_INDEX_TYPES(colptr.scalar_type(), "spmm_arg_grad_cpu_check", [&] {
    validate_ptr<index_t>(colptr, E, "csc row.numel()");
    validate_index<index_t>(row, G, "csc row", "grad.size(0)");
  });
  validate_index<int64_t>(perm, E, "csc perm", "the edge count");
  auto out = at::empty({N, F}, grad.options());
  GRAPHEQUI_DISPATCH_SRC(grad.scalar_type(), "spmm_arg_grad_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(colptr.scalar_type(), "spmm_arg_grad_cpu_idx", [&] {
      const scalar_t* v = value.defined() ? value.data_ptr<scalar_t>() : nullptr;
      with_isa<scalar_t>([&](auto k) {
        using K = decltype(k);
        auto fn = v != nullptr ? K::template spmm_arg_grad<true, scalar_t, index_t>
                               : K::template spmm_arg_grad<false, scalar_t, index_t>;
        fn(colptr.data_ptr<index_t>(), row.data_ptr<index_t>(), perm.data_ptr<int64_t>(), arg.data_ptr<int64_t>(),
           grad.data_ptr<scalar_t>(), v, out.data_ptr<scalar_t>(), N, E, F);
      });
    });
  });
  return out;
}

// The transpose (CSC) of a CSR: colptr [num_cols + 1], row [E] and perm [E]
// with edge perm[p] of the CSR at position p of the CSC. A stable counting
// sort, so the edges of one column keep their CSR order.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose_cpu(const at::Tensor& ptr_in, const at::Tensor& col_in,
                                                                 int64_t num_cols, bool validate) {
  check_csr_transpose_args(ptr_in, col_in, num_cols);
  auto ptr = ptr_in.contiguous();
  auto col = col_in.contiguous();
  const int64_t G = ptr.numel() - 1, E = col.numel();
  // The counting sort writes through col and the row fill through ptr, so
  // both are checked even on the trusted path: on the CPU this costs no sync,
  // only a pass over the indices, small next to the sort.
  (void)validate;
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "csr_transpose_cpu_check", [&] {
    validate_ptr<index_t>(ptr, E, "col.numel()");
    validate_index<index_t>(col, num_cols, "col", "num_cols");
  });
  at::Tensor colptr, row, perm;
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "csr_transpose_cpu", [&] {
    auto sorted = counting_sort<index_t>(col, num_cols);
    colptr = sorted.first.to(col.scalar_type());
    perm = sorted.second;
    std::vector<index_t> row_of(E);
    const index_t* p = ptr.data_ptr<index_t>();
    at::parallel_for(0, G, 4096, [&](int64_t b, int64_t e) {
      for (int64_t g = b; g < e; ++g)
        for (int64_t k = p[g]; k < p[g + 1]; ++k) row_of[k] = static_cast<index_t>(g);
    });
    row = at::empty({E}, col.options());
    index_t* rw = row.data_ptr<index_t>();
    const int64_t* q = perm.data_ptr<int64_t>();
    at::parallel_for(0, E, 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) rw[i] = row_of[q[i]];
    });
  });
  return {colptr, row, perm};
}

// ------------------------------------------------------------- depthwise mix

at::Tensor depthwise_mix_cpu(const at::Tensor& weight_in, const at::Tensor& x_in) {
  check_depthwise_mix_args(weight_in, x_in);
  auto weight = weight_in.contiguous();
  auto x = x_in.contiguous();
  const int64_t N = x.size(0), L = x.size(1), C = x.size(2), O = weight.size(0);
  auto out = empty_output({N, O, C}, x.options());
  GRAPHEQUI_DISPATCH_FLOAT(x.scalar_type(), "depthwise_mix_cpu", [&] {
    with_isa<scalar_t>([&](auto k) {
      decltype(k)::template depthwise_mix<scalar_t>(weight.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                                    out.data_ptr<scalar_t>(), N, O, L, C);
    });
  });
  return out;
}

at::Tensor depthwise_mix_weight_grad_cpu(const at::Tensor& grad_in, const at::Tensor& x_in) {
  check_depthwise_mix_weight_grad_args(grad_in, x_in);
  auto grad = grad_in.contiguous();
  auto x = x_in.contiguous();
  const int64_t N = x.size(0), L = x.size(1), C = x.size(2), O = grad.size(1);
  auto out = at::empty({O, L, C}, x.options());
  GRAPHEQUI_DISPATCH_FLOAT(x.scalar_type(), "depthwise_mix_weight_grad_cpu", [&] {
    with_isa<scalar_t>([&](auto k) {
      decltype(k)::template depthwise_mix_weight_grad<scalar_t>(grad.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                                                out.data_ptr<scalar_t>(), N, O, L, C);
    });
  });
  return out;
}

// ------------------------------------------------------ symmetric pair features

at::Tensor symmetric_pair_features_cpu(const at::Tensor& pairs_in) {
  check_symmetric_pairs(pairs_in);
  auto pairs = pairs_in.contiguous();
  const int64_t P = pairs.size(0), D = pairs.size(2);
  auto out = empty_output({P, 3 * D}, pairs.options());
  GRAPHEQUI_DISPATCH_FLOAT(pairs.scalar_type(), "symmetric_pair_features_cpu", [&] {
    with_isa<scalar_t>([&](auto k) {
      decltype(k)::template symmetric_pair_features<scalar_t>(pairs.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), P,
                                                              D);
    });
  });
  return out;
}

at::Tensor symmetric_pair_features_backward_cpu(const at::Tensor& grad_in, const at::Tensor& pairs_in) {
  check_symmetric_pairs(pairs_in);
  TORCH_CHECK_VALUE(grad_in.dim() == 2 && grad_in.size(0) == pairs_in.size(0) && grad_in.size(1) == 3 * pairs_in.size(2),
                    "symmetric_pair_features_backward: grad must be [P, 3 D] for pairs [P, 2, D], got ",
                    grad_in.sizes(), " and ", pairs_in.sizes());
  TORCH_CHECK_TYPE(grad_in.scalar_type() == pairs_in.scalar_type(),
                   "symmetric_pair_features_backward: grad and pairs must share a dtype, got ", grad_in.scalar_type(),
                   " and ", pairs_in.scalar_type());
  auto grad = grad_in.contiguous();
  auto pairs = pairs_in.contiguous();
  const int64_t P = pairs.size(0), D = pairs.size(2);
  auto out = empty_output({P, 2, D}, pairs.options());
  GRAPHEQUI_DISPATCH_FLOAT(pairs.scalar_type(), "symmetric_pair_features_backward_cpu", [&] {
    with_isa<scalar_t>([&](auto k) {
      decltype(k)::template symmetric_pair_features_backward<scalar_t>(
          grad.data_ptr<scalar_t>(), pairs.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), P, D);
    });
  });
  return out;
}

}  // namespace

void set_cpu_isa(const std::string& isa) {
  TORCH_CHECK_VALUE(valid_isa(isa), "the CPU instruction set must be 'auto', 'avx2' or 'baseline', got '", isa, "'");
  std::lock_guard<std::mutex> lock(isa_mutex);
  isa_choice() = isa;
  isa_state.store(compute_isa_state(isa));
}

std::string cpu_isa() {
  std::lock_guard<std::mutex> lock(isa_mutex);
  return isa_choice();
}

bool cpu_isa_is_avx2() { return use_avx2(); }

TORCH_LIBRARY_IMPL(graphequi, CPU, m) {

  m.impl("segment", &segment_cpu);
  m.impl("segment_arg", &segment_arg_cpu);
  m.impl("scatter", &scatter_cpu);
  m.impl("scatter_arg", &scatter_arg_cpu);
  m.impl("gather_csr", &gather_csr_cpu);
  m.impl("gather_coo", &gather_coo_cpu);
  m.impl("spmm", &spmm_cpu);
  m.impl("spmm_arg", &spmm_arg_cpu);
  m.impl("spmm_value_grad", &spmm_value_grad_cpu);
  m.impl("spmm_arg_grad", &spmm_arg_grad_cpu);
  m.impl("spmm_feature", &spmm_feature_cpu);
  m.impl("spmm_feature_value_grad", &spmm_feature_value_grad_cpu);
  m.impl("csr_transpose", &csr_transpose_cpu);
  m.impl("depthwise_mix", &depthwise_mix_cpu);
  m.impl("depthwise_mix_weight_grad", &depthwise_mix_weight_grad_cpu);
  m.impl("symmetric_pair_features", &symmetric_pair_features_cpu);
  m.impl("symmetric_pair_features_backward", &symmetric_pair_features_backward_cpu);
}

}  // namespace graphequi

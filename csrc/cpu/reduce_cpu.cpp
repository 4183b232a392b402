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
#include <limits>
#include <vector>

#include "../checks.h"

namespace graphequi {
namespace {

// Branch-free "strictly better" update so the feature loop vectorises: ties
// keep the earlier (lower) row, and NaN wins (then sticks), as in torch.amax.
// `best` is kept in the op-math type and `row_id` in an integer lane of the
// same width (int32 next to float): mixed-width lanes defeat the vectoriser.
template <typename scalar_t, typename cmp_t, typename lane_t, bool kMax>
inline void update_row(const scalar_t* __restrict row, cmp_t* __restrict best, lane_t* __restrict row_id,
                       lane_t e, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    const cmp_t v = static_cast<cmp_t>(row[f]);
    const cmp_t b = best[f];
    bool take = kMax ? (v > b) : (v < b);
    if constexpr (!std::is_integral_v<cmp_t>) take = take | ((v != v) & (b == b));
    best[f] = take ? v : b;
    row_id[f] = take ? e : row_id[f];
  }
}

template <typename cmp_t>
using lane_of = std::conditional_t<sizeof(cmp_t) == 8, int64_t, int32_t>;

// Group ranges [g_begin, g_end) owned by row chunks of about equal size.
template <typename index_t>
inline std::pair<int64_t, int64_t> groups_of_rows(const index_t* ptr, int64_t G, int64_t row_begin,
                                                  int64_t row_end, int64_t E) {
  auto first_group_starting_at_or_after = [&](int64_t row) -> int64_t {
    if (row >= E) return G;
    // groups whose start ptr[g] < row belong to an earlier chunk
    return std::lower_bound(ptr, ptr + G, static_cast<index_t>(row)) - ptr;
  };
  int64_t gb = row_begin == 0 ? 0 : first_group_starting_at_or_after(row_begin);
  int64_t ge = first_group_starting_at_or_after(row_end);
  return {gb, ge};
}

// Runs fn(g_begin, g_end) over groups balanced by their row counts.
template <typename index_t, typename Fn>
void parallel_over_groups(const index_t* ptr, int64_t G, int64_t E, int64_t work_per_row, const Fn& fn) {
  if (G == 0) return;
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t min_rows = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_row));
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads * 4, E / min_rows));
  if (chunks == 1) {
    fn(0, G);
    return;
  }
  at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      auto range = groups_of_rows(ptr, G, E * c / chunks, E * (c + 1) / chunks, E);
      if (c == chunks - 1) range.second = G;  // trailing empty groups
      if (range.first < range.second) fn(range.first, range.second);
    }
  });
}

// ---------------------------------------------------------------- validation

template <typename index_t>
void validate_ptr(const at::Tensor& ptr_t, int64_t E) {
  const index_t* ptr = ptr_t.data_ptr<index_t>();
  const int64_t n = ptr_t.numel();
  TORCH_CHECK_VALUE(n >= 1, "ptr must have at least one entry");
  TORCH_CHECK_VALUE(ptr[0] == 0, "ptr must start at 0, got ", static_cast<int64_t>(ptr[0]));
  TORCH_CHECK_VALUE(static_cast<int64_t>(ptr[n - 1]) == E, "ptr[-1] must equal src.size(dim) = ", E,
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
bool validate_index(const at::Tensor& index_t_, int64_t G) {
  const int64_t E = index_t_.numel();
  if (E == 0) return true;
  auto s = index_stats(index_t_.data_ptr<index_t>(), E);
  TORCH_CHECK_INDEX(s.min >= 0, "index contains a negative entry (", s.min, ")");
  TORCH_CHECK_INDEX(s.max < G, "index contains ", s.max, ", out of range for dim_size ", G);
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

// ------------------------------------------------------------------- kernels

template <typename scalar_t, typename index_t>
void segment_sum_kernel(const scalar_t* src, const index_t* ptr, scalar_t* out, int64_t B, int64_t E,
                        int64_t G, int64_t F, bool mean) {
  using acc_t = at::opmath_type<scalar_t>;
  parallel_over_groups(ptr, G, E, B * F, [&](int64_t gb, int64_t ge) {
    std::vector<acc_t> acc(F);
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* base = src + b * E * F;
      for (int64_t g = gb; g < ge; ++g) {
        std::fill(acc.begin(), acc.end(), acc_t(0));
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        for (int64_t e = lo; e < hi; ++e) {
          const scalar_t* row = base + e * F;
          for (int64_t f = 0; f < F; ++f) acc[f] += static_cast<acc_t>(row[f]);
        }
        scalar_t* o = out + (b * G + g) * F;
        if (mean) {
          const acc_t scale = hi > lo ? acc_t(1) / static_cast<acc_t>(hi - lo) : acc_t(0);
          for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(acc[f] * scale);
        } else {
          for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(acc[f]);
        }
      }
    }
  });
}

template <typename scalar_t, typename index_t, bool kMax, typename lane_t>
void segment_arg_kernel(const scalar_t* src, const index_t* ptr, scalar_t* out, int64_t* arg, int64_t B,
                        int64_t E, int64_t G, int64_t F) {
  using cmp_t = at::opmath_type<scalar_t>;
  parallel_over_groups(ptr, G, E, B * F, [&](int64_t gb, int64_t ge) {
    std::vector<cmp_t> best(F);
    std::vector<lane_t> rel(F);  // winning row relative to the group start
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* base = src + b * E * F;
      for (int64_t g = gb; g < ge; ++g) {
        scalar_t* o = out + (b * G + g) * F;
        int64_t* a = arg + (b * G + g) * F;
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        if (hi == lo) {
          for (int64_t f = 0; f < F; ++f) { o[f] = scalar_t(0); a[f] = -1; }
          continue;
        }
        const scalar_t* first = base + lo * F;
        for (int64_t f = 0; f < F; ++f) best[f] = static_cast<cmp_t>(first[f]);
        std::fill(rel.begin(), rel.end(), lane_t(0));
        for (int64_t e = lo + 1; e < hi; ++e)
          update_row<scalar_t, cmp_t, lane_t, kMax>(base + e * F, best.data(), rel.data(), lane_t(e - lo), F);
        for (int64_t f = 0; f < F; ++f) { o[f] = static_cast<scalar_t>(best[f]); a[f] = lo + rel[f]; }
      }
    }
  });
}

// Owner-computes partition of the output groups over threads.
template <typename Fn>
void parallel_over_owned_groups(int64_t G, int64_t E, int64_t work_per_row, const Fn& fn) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t parts = (E * work_per_row < 65536) ? 1 : std::min<int64_t>(threads, std::max<int64_t>(G, 1));
  at::parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) fn(G * p / parts, G * (p + 1) / parts);
  });
}

template <typename scalar_t, typename index_t>
void scatter_sum_kernel(const scalar_t* src, const index_t* index, scalar_t* out, int64_t B, int64_t E,
                        int64_t G, int64_t F, bool mean) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kDirect = std::is_same_v<acc_t, scalar_t>;
  parallel_over_owned_groups(G, E, B * F, [&](int64_t g0, int64_t g1) {
    const int64_t owned = g1 - g0;
    if (owned <= 0) return;
    // Half-precision inputs accumulate in float in a private buffer.
    std::vector<acc_t> acc(kDirect ? 0 : B * owned * F, acc_t(0));
    std::vector<int64_t> count(mean ? owned : 0, 0);
    for (int64_t b = 0; b < B; ++b) std::fill(out + (b * G + g0) * F, out + (b * G + g1) * F, scalar_t(0));
    for (int64_t e = 0; e < E; ++e) {
      const int64_t g = index[e];
      if (g < g0 || g >= g1) continue;
      if (mean) ++count[g - g0];
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t* row = src + (b * E + e) * F;
        if constexpr (kDirect) {
          scalar_t* o = out + (b * G + g) * F;
          for (int64_t f = 0; f < F; ++f) o[f] += row[f];
        } else {
          acc_t* o = acc.data() + (b * owned + (g - g0)) * F;
          for (int64_t f = 0; f < F; ++f) o[f] += static_cast<acc_t>(row[f]);
        }
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t g = g0; g < g1; ++g) {
        scalar_t* o = out + (b * G + g) * F;
        const acc_t scale = !mean ? acc_t(1) : (count[g - g0] > 0 ? acc_t(1) / acc_t(count[g - g0]) : acc_t(0));
        if constexpr (kDirect) {
          if (mean) for (int64_t f = 0; f < F; ++f) o[f] = o[f] * scale;
        } else {
          const acc_t* a = acc.data() + (b * owned + (g - g0)) * F;
          for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(a[f] * scale);
        }
      }
    }
  });
}

template <typename scalar_t, typename index_t, bool kMax, typename lane_t>
void scatter_arg_kernel(const scalar_t* src, const index_t* index, scalar_t* out, int64_t* arg, int64_t B,
                        int64_t E, int64_t G, int64_t F) {
  using cmp_t = at::opmath_type<scalar_t>;
  parallel_over_owned_groups(G, E, B * F, [&](int64_t g0, int64_t g1) {
    const int64_t owned = std::max<int64_t>(g1 - g0, 0);
    // One slot per (b, g): F best values followed by F row ids, so the random
    // access of a row touches one contiguous region instead of two arrays.
    const int64_t slot_bytes = F * static_cast<int64_t>(sizeof(cmp_t) + sizeof(lane_t));
    std::vector<char> slots(static_cast<size_t>(B * owned * slot_bytes));
    std::vector<bool> seen(B * owned, false);
    auto best_of = [&](int64_t k) { return reinterpret_cast<cmp_t*>(slots.data() + k * slot_bytes); };
    auto rows_of = [&](int64_t k) { return reinterpret_cast<lane_t*>(slots.data() + k * slot_bytes + F * sizeof(cmp_t)); };
    for (int64_t e = 0; e < E; ++e) {
      const int64_t g = index[e];
      if (g < g0 || g >= g1) continue;
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t* row = src + (b * E + e) * F;
        const int64_t k = b * owned + (g - g0);
        cmp_t* best = best_of(k);
        lane_t* row_id = rows_of(k);
        if (!seen[k]) {  // first row of this group
          seen[k] = true;
          for (int64_t f = 0; f < F; ++f) { best[f] = static_cast<cmp_t>(row[f]); row_id[f] = lane_t(e); }
        } else {
          update_row<scalar_t, cmp_t, lane_t, kMax>(row, best, row_id, lane_t(e), F);
        }
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t k = b * owned + (g - g0);
        scalar_t* o = out + (b * G + g) * F;
        int64_t* a = arg + (b * G + g) * F;
        if (!seen[k]) {
          std::fill(o, o + F, scalar_t(0));
          std::fill(a, a + F, int64_t(-1));
          continue;
        }
        const cmp_t* best = best_of(k);
        const lane_t* row_id = rows_of(k);
        for (int64_t f = 0; f < F; ++f) { o[f] = static_cast<scalar_t>(best[f]); a[f] = row_id[f]; }
      }
    }
  });
}

// Adjoint of segment: every row of group g receives grad[g] (scaled for mean,
// masked to the winning row for min/max). Writes every output element once.
template <typename scalar_t, typename index_t>
void gather_csr_kernel(const scalar_t* grad, const index_t* ptr, const int64_t* arg, scalar_t* out, int64_t B,
                       int64_t E, int64_t G, int64_t F, Reduce r) {
  parallel_over_groups(ptr, G, E, B * F, [&](int64_t gb, int64_t ge) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t g = gb; g < ge; ++g) {
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        const scalar_t* gr = grad + (b * G + g) * F;
        if (r == Reduce::Min || r == Reduce::Max) {
          const int64_t* a = arg + (b * G + g) * F;
          for (int64_t e = lo; e < hi; ++e) {
            scalar_t* o = out + (b * E + e) * F;
            for (int64_t f = 0; f < F; ++f) o[f] = a[f] == e ? gr[f] : scalar_t(0);
          }
        } else {
          using acc_t = at::opmath_type<scalar_t>;
          const acc_t scale = (r == Reduce::Mean && hi > lo) ? acc_t(1) / acc_t(hi - lo) : acc_t(1);
          for (int64_t e = lo; e < hi; ++e) {
            scalar_t* o = out + (b * E + e) * F;
            if (r == Reduce::Mean) {
              for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(static_cast<acc_t>(gr[f]) * scale);
            } else {
              std::copy(gr, gr + F, o);
            }
          }
        }
      }
    }
  });
}

template <typename scalar_t, typename index_t>
void gather_coo_kernel(const scalar_t* grad, const index_t* index, const int64_t* arg, scalar_t* out, int64_t B,
                       int64_t E, int64_t G, int64_t F, Reduce r) {
  using acc_t = at::opmath_type<scalar_t>;
  std::vector<acc_t> inv_count;
  if (r == Reduce::Mean) {
    std::vector<int64_t> count(G, 0);
    for (int64_t e = 0; e < E; ++e) ++count[index[e]];
    inv_count.resize(G);
    for (int64_t g = 0; g < G; ++g) inv_count[g] = count[g] > 0 ? acc_t(1) / acc_t(count[g]) : acc_t(0);
  }
  at::parallel_for(0, E, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, B * F)), [&](int64_t eb, int64_t ee) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t e = eb; e < ee; ++e) {
        const int64_t g = index[e];
        const scalar_t* gr = grad + (b * G + g) * F;
        scalar_t* o = out + (b * E + e) * F;
        if (r == Reduce::Min || r == Reduce::Max) {
          const int64_t* a = arg + (b * G + g) * F;
          for (int64_t f = 0; f < F; ++f) o[f] = a[f] == e ? gr[f] : scalar_t(0);
        } else if (r == Reduce::Mean) {
          const acc_t s = inv_count[g];
          for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(static_cast<acc_t>(gr[f]) * s);
        } else {
          std::copy(gr, gr + F, o);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------- glue

#define GRAPHEQUI_DISPATCH_SRC(TYPE, NAME, ...) \
  AT_DISPATCH_ALL_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, TYPE, NAME, __VA_ARGS__)

at::Tensor segment_cpu(const at::Tensor& src_in, const at::Tensor& ptr_in, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  check_mean_dtype(src_in, r);
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cpu_ptr", [&] { validate_ptr<index_t>(ptr, E); });
  auto out = at::empty({B, G, F}, src.options());
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "segment_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cpu_idx", [&] {
      segment_sum_kernel<scalar_t, index_t>(src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(),
                                            out.data_ptr<scalar_t>(), B, E, G, F, r == Reduce::Mean);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> segment_arg_impl(const at::Tensor& src, const at::Tensor& ptr, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = at::empty({B, G, F}, src.options());
  auto arg = at::empty({B, G, F}, src.options().dtype(at::kLong));
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "segment_arg_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_arg_cpu_idx", [&] {
      using lane_t = lane_of<at::opmath_type<scalar_t>>;
      // Relative row ids fit the narrow lane unless one segment is huge.
      const bool narrow = E < std::numeric_limits<lane_t>::max();
      auto fn = r == Reduce::Max
                    ? (narrow ? segment_arg_kernel<scalar_t, index_t, true, lane_t>
                              : segment_arg_kernel<scalar_t, index_t, true, int64_t>)
                    : (narrow ? segment_arg_kernel<scalar_t, index_t, false, lane_t>
                              : segment_arg_kernel<scalar_t, index_t, false, int64_t>);
      fn(src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), out.data_ptr<scalar_t>(), arg.data_ptr<int64_t>(), B,
         E, G, F);
    });
  });
  return {out, arg};
}

std::tuple<at::Tensor, at::Tensor> segment_arg_cpu(const at::Tensor& src_in, const at::Tensor& ptr_in,
                                                   c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_src(src_in, "src");
  check_index_tensor(ptr_in, "ptr");
  auto src = src_in.contiguous();
  auto ptr = ptr_in.contiguous();
  AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_arg_cpu_ptr", [&] { validate_ptr<index_t>(ptr, src.size(1)); });
  return segment_arg_impl(src, ptr, r);
}

void check_index_matches(const at::Tensor& src, const at::Tensor& index) {
  TORCH_CHECK_VALUE(index.numel() == src.size(1), "index must have one entry per row of src (", src.size(1),
                    "), got ", index.numel());
}

at::Tensor scatter_cpu(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G, c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), false);
  check_src(src_in, "src");
  check_index_tensor(index_in, "index");
  check_mean_dtype(src_in, r);
  check_index_matches(src_in, index_in);
  TORCH_CHECK_VALUE(G >= 0, "dim_size must be non-negative, got ", G);
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  bool sorted = false;
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cpu_check", [&] { sorted = validate_index<index_t>(index, G); });
  if (sorted) {
    at::Tensor ptr;
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cpu_ptr", [&] { ptr = ptr_from_sorted<index_t>(index, G); });
    return segment_cpu(src, ptr, reduce);
  }
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2);
  auto out = at::empty({B, G, F}, src.options());
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "scatter_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_cpu_idx", [&] {
      scatter_sum_kernel<scalar_t, index_t>(src.data_ptr<scalar_t>(), index.data_ptr<index_t>(),
                                            out.data_ptr<scalar_t>(), B, E, G, F, r == Reduce::Mean);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> scatter_arg_cpu(const at::Tensor& src_in, const at::Tensor& index_in, int64_t G,
                                                   c10::string_view reduce) {
  const Reduce r = parse_reduce(std::string(reduce), true);
  check_src(src_in, "src");
  check_index_tensor(index_in, "index");
  check_index_matches(src_in, index_in);
  TORCH_CHECK_VALUE(G >= 0, "dim_size must be non-negative, got ", G);
  auto src = src_in.contiguous();
  auto index = index_in.contiguous();
  bool sorted = false;
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_arg_cpu_check", [&] { sorted = validate_index<index_t>(index, G); });
  if (sorted) {
    at::Tensor ptr;
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_arg_cpu_ptr", [&] { ptr = ptr_from_sorted<index_t>(index, G); });
    return segment_arg_impl(src, ptr, r);
  }
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2);
  auto out = at::empty({B, G, F}, src.options());
  auto arg = at::empty({B, G, F}, src.options().dtype(at::kLong));
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "scatter_arg_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "scatter_arg_cpu_idx", [&] {
      using lane_t = lane_of<at::opmath_type<scalar_t>>;
      const bool narrow = E < std::numeric_limits<lane_t>::max();
      auto fn = r == Reduce::Max
                    ? (narrow ? scatter_arg_kernel<scalar_t, index_t, true, lane_t>
                              : scatter_arg_kernel<scalar_t, index_t, true, int64_t>)
                    : (narrow ? scatter_arg_kernel<scalar_t, index_t, false, lane_t>
                              : scatter_arg_kernel<scalar_t, index_t, false, int64_t>);
      fn(src.data_ptr<scalar_t>(), index.data_ptr<index_t>(), out.data_ptr<scalar_t>(), arg.data_ptr<int64_t>(), B,
         E, G, F);
    });
  });
  return {out, arg};
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
  auto out = at::empty({B, E, F}, grad.options());
  GRAPHEQUI_DISPATCH_SRC(grad.scalar_type(), "gather_csr_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gather_csr_cpu_idx", [&] {
      gather_csr_kernel<scalar_t, index_t>(grad.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(),
                                           arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
                                           out.data_ptr<scalar_t>(), B, E, G, F, r);
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
  auto out = at::empty({B, E, F}, grad.options());
  GRAPHEQUI_DISPATCH_SRC(grad.scalar_type(), "gather_coo_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "gather_coo_cpu_idx", [&] {
      gather_coo_kernel<scalar_t, index_t>(grad.data_ptr<scalar_t>(), index.data_ptr<index_t>(),
                                           arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
                                           out.data_ptr<scalar_t>(), B, E, G, F, r);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(graphequi, CPU, m) {
  m.impl("segment", &segment_cpu);
  m.impl("segment_arg", &segment_arg_cpu);
  m.impl("scatter", &scatter_cpu);
  m.impl("scatter_arg", &scatter_arg_cpu);
  m.impl("gather_csr", &gather_csr_cpu);
  m.impl("gather_coo", &gather_coo_cpu);
}

}  // namespace graphequi

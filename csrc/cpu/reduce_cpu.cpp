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

#ifdef __linux__
#include <sys/mman.h>
#endif

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

// `perm` (optional) maps sorted position -> source row, for COO inputs that
// were grouped by a counting sort; rows are then fetched with prefetching.
template <typename scalar_t>
inline const scalar_t* row_at(const scalar_t* base, const int64_t* perm, int64_t e, int64_t E, int64_t F) {
  if (perm == nullptr) return base + e * F;
  constexpr int64_t kAhead = 8;
  if (e + kAhead < E) {
    const char* next = reinterpret_cast<const char*>(base + perm[e + kAhead] * F);
    for (int64_t byte = 0; byte < F * static_cast<int64_t>(sizeof(scalar_t)); byte += 64) __builtin_prefetch(next + byte);
  }
  return base + perm[e] * F;
}

// Folds one row into an accumulator row (op-math type). Min/max use the same
// branch-free NaN-sticky comparison as update_row, so the loop vectorises.
template <Reduce R, typename scalar_t, typename acc_t>
inline void combine_row(const scalar_t* __restrict row, acc_t* __restrict acc, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    const acc_t v = static_cast<acc_t>(row[f]);
    if constexpr (R == Reduce::Sum || R == Reduce::Mean) {
      acc[f] += v;
    } else {
      const acc_t b = acc[f];
      bool take = R == Reduce::Max ? (v > b) : (v < b);
      if constexpr (!std::is_integral_v<acc_t>) take = take | ((v != v) & (b == b));
      acc[f] = take ? v : b;
    }
  }
}

template <typename scalar_t, typename acc_t>
inline void load_row(const scalar_t* __restrict row, acc_t* __restrict acc, int64_t F) {
  for (int64_t f = 0; f < F; ++f) acc[f] = static_cast<acc_t>(row[f]);
}

template <typename scalar_t, typename acc_t>
// `acc` may alias `out` (in-place accumulation): element f is read before it is written.
inline void store_row(const acc_t* acc, scalar_t* out, int64_t F, int64_t count, bool mean) {
  if (count == 0) {
    std::fill(out, out + F, scalar_t(0));
  } else if (mean) {
    const acc_t scale = acc_t(1) / static_cast<acc_t>(count);
    for (int64_t f = 0; f < F; ++f) out[f] = static_cast<scalar_t>(acc[f] * scale);
  } else if (static_cast<const void*>(acc) != static_cast<const void*>(out)) {
    for (int64_t f = 0; f < F; ++f) out[f] = static_cast<scalar_t>(acc[f]);
  }
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

template <Reduce R, typename scalar_t, typename index_t>
void segment_value_kernel(const scalar_t* src, const index_t* ptr, scalar_t* out, int64_t B, int64_t E, int64_t G,
                          int64_t F) {
  using acc_t = at::opmath_type<scalar_t>;
  // float/double accumulate straight into the output row (one pass less).
  constexpr bool kInPlace = std::is_same_v<acc_t, scalar_t>;
  parallel_over_groups(ptr, G, E, B * F, [&](int64_t gb, int64_t ge) {
    std::vector<acc_t> buffer(kInPlace ? 0 : F);
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* base = src + b * E * F;
      for (int64_t g = gb; g < ge; ++g) {
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        scalar_t* o = out + (b * G + g) * F;
        acc_t* acc;
        if constexpr (kInPlace) acc = o;
        else acc = buffer.data();
        if (hi > lo) load_row(base + lo * F, acc, F);
        for (int64_t e = lo + 1; e < hi; ++e) combine_row<R>(base + e * F, acc, F);
        store_row(acc, o, F, hi - lo, R == Reduce::Mean);
      }
    }
  });
}

template <typename scalar_t, typename index_t, bool kMax, typename lane_t>
void segment_arg_kernel(const scalar_t* src, const index_t* ptr, const int64_t* perm, scalar_t* out, int64_t* arg,
                        int64_t B, int64_t E, int64_t G, int64_t F) {
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
        const scalar_t* first = row_at(base, perm, lo, E, F);
        for (int64_t f = 0; f < F; ++f) best[f] = static_cast<cmp_t>(first[f]);
        std::fill(rel.begin(), rel.end(), lane_t(0));
        for (int64_t e = lo + 1; e < hi; ++e)
          update_row<scalar_t, cmp_t, lane_t, kMax>(row_at(base, perm, e, E, F), best.data(), rel.data(),
                                                    lane_t(e - lo), F);
        for (int64_t f = 0; f < F; ++f) {
          o[f] = static_cast<scalar_t>(best[f]);
          a[f] = perm == nullptr ? lo + rel[f] : perm[lo + rel[f]];
        }
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

template <Reduce R, typename scalar_t, typename index_t>
void scatter_value_kernel(const scalar_t* src, const index_t* index, scalar_t* out, int64_t B, int64_t E, int64_t G,
                          int64_t F) {
  using acc_t = at::opmath_type<scalar_t>;
  // float/double accumulate in place in `out`; half types in a float buffer.
  constexpr bool kInPlace = std::is_same_v<acc_t, scalar_t>;
  parallel_over_owned_groups(G, E, B * F, [&](int64_t g0, int64_t g1) {
    const int64_t owned = g1 - g0;
    if (owned <= 0) return;
    std::vector<acc_t> buffer(kInPlace ? 0 : B * owned * F);
    auto acc_of = [&](int64_t b, int64_t g) -> acc_t* {
      if constexpr (kInPlace) return out + (b * G + g) * F;
      else return buffer.data() + (b * owned + (g - g0)) * F;
    };
    std::vector<int64_t> count(owned, 0);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t g = index[e];
      if (g < g0 || g >= g1) continue;
      const bool first = count[g - g0]++ == 0;
      for (int64_t b = 0; b < B; ++b) {
        const scalar_t* row = src + (b * E + e) * F;
        if (first) load_row(row, acc_of(b, g), F);
        else combine_row<R>(row, acc_of(b, g), F);
      }
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = g0; g < g1; ++g) store_row(acc_of(b, g), out + (b * G + g) * F, F, count[g - g0], R == Reduce::Mean);
  });
}

// Adjoint of segment: every row of group g receives grad[g] (scaled for mean,
// masked to the winning row for min/max). Writes every output element once.
template <typename scalar_t, typename index_t, typename lane_t>
void gather_csr_kernel(const scalar_t* grad, const index_t* ptr, const int64_t* arg, scalar_t* out, int64_t B,
                       int64_t E, int64_t G, int64_t F, Reduce r) {
  parallel_over_groups(ptr, G, E, B * F, [&](int64_t gb, int64_t ge) {
    std::vector<lane_t> rel(F);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t g = gb; g < ge; ++g) {
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        const scalar_t* gr = grad + (b * G + g) * F;
        if (r == Reduce::Min || r == Reduce::Max) {
          const int64_t* a = arg + (b * G + g) * F;
          // Winners relative to the group start, in a lane as wide as the
          // values: the masked copy below then vectorises.
          for (int64_t f = 0; f < F; ++f) rel[f] = static_cast<lane_t>(a[f] >= lo ? a[f] - lo : -1);
          for (int64_t e = lo; e < hi; ++e) {
            scalar_t* __restrict o = out + (b * E + e) * F;
            const lane_t here = static_cast<lane_t>(e - lo);
            for (int64_t f = 0; f < F; ++f) {
              const scalar_t v = gr[f];  // unconditional load: a conditional one blocks vectorisation
              o[f] = rel[f] == here ? v : scalar_t(0);
            }
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

at::Tensor segment_value_impl(const at::Tensor& src, const at::Tensor& ptr, Reduce r) {
  const int64_t B = src.size(0), E = src.size(1), F = src.size(2), G = ptr.numel() - 1;
  auto out = empty_output({B, G, F}, src.options());
  GRAPHEQUI_DISPATCH_SRC(src.scalar_type(), "segment_cpu", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "segment_cpu_idx", [&] {
      with_reduce(r, [&](auto R) {
        segment_value_kernel<decltype(R)::value, scalar_t, index_t>(src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(),
                                                                     out.data_ptr<scalar_t>(), B, E, G, F);
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
      auto fn = r == Reduce::Max
                    ? (narrow ? segment_arg_kernel<scalar_t, index_t, true, lane_t>
                              : segment_arg_kernel<scalar_t, index_t, true, int64_t>)
                    : (narrow ? segment_arg_kernel<scalar_t, index_t, false, lane_t>
                              : segment_arg_kernel<scalar_t, index_t, false, int64_t>);
      fn(src.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), perm_data, out.data_ptr<scalar_t>(),
         arg.data_ptr<int64_t>(), B, E, G, F);
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
        scatter_value_kernel<decltype(R)::value, scalar_t, index_t>(
            src.data_ptr<scalar_t>(), index.data_ptr<index_t>(), out.data_ptr<scalar_t>(), B, E, G, F);
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
      auto fn = narrow ? gather_csr_kernel<scalar_t, index_t, lane_t> : gather_csr_kernel<scalar_t, index_t, int64_t>;
      fn(grad.data_ptr<scalar_t>(), ptr.data_ptr<index_t>(), arg.defined() ? arg.data_ptr<int64_t>() : nullptr,
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
  auto out = empty_output({B, E, F}, grad.options());
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

// The compute kernels of reduce_cpu.cpp, on raw pointers: no ATen tensors, no
// checks (the glue validates everything first). This file has no include
// guard on purpose: reduce_cpu.cpp includes it twice, once per instruction-set
// namespace (baseline x86-64 and AVX2), so the same source is compiled for
// each and the glue picks one at run time. It relies on the headers that
// reduce_cpu.cpp includes before it.

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

// ------------------------------------------------------------------- kernels

// Asks for the cache lines of a row that a loop will touch a few iterations
// from now (rows reached through an index defeat the hardware prefetcher).
template <int kForWrite>
inline void prefetch_row(const void* row, int64_t bytes) {
  const char* line = static_cast<const char*>(row);
  for (int64_t byte = 0; byte < bytes; byte += 64) __builtin_prefetch(line + byte, kForWrite);
}

// `perm` (optional) maps sorted position -> source row, for COO inputs that
// were grouped by a counting sort; rows are then fetched with prefetching.
template <typename scalar_t>
inline const scalar_t* row_at(const scalar_t* base, const int64_t* perm, int64_t e, int64_t E, int64_t F) {
  if (perm == nullptr) return base + e * F;
  constexpr int64_t kAhead = 8;
  if (e + kAhead < E) prefetch_row<0>(base + perm[e + kAhead] * F, F * static_cast<int64_t>(sizeof(scalar_t)));
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
    // The accumulator rows are hit in random order and rarely cached: fetch
    // the one needed kAhead rows from now while this row is combined.
    constexpr int64_t kAhead = 16;
    const int64_t row_bytes = F * static_cast<int64_t>(sizeof(acc_t));
    for (int64_t e = 0; e < E; ++e) {
      if (e + kAhead < E) {
        const int64_t next = index[e + kAhead];
        if (next >= g0 && next < g1) {
          for (int64_t b = 0; b < B; ++b) prefetch_row<1>(acc_of(b, next), row_bytes);
        }
      }
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

// --------------------------------------------------------------------- spmm
// out[i] = reduce_{k in [ptr[i], ptr[i+1])} value[k] * x[col[k]]: the rows of x
// are gathered and reduced in one pass, so no [E, F] message tensor exists.
// kWeighted = false stands for value = 1 and skips the multiply, so unweighted
// results match segment over gathered rows exactly.

template <bool kWeighted, typename scalar_t, typename acc_t>
inline void load_scaled(const scalar_t* __restrict row, acc_t w, acc_t* __restrict acc, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    acc_t v = static_cast<acc_t>(row[f]);
    if constexpr (kWeighted) v = v * w;
    acc[f] = v;
  }
}

template <Reduce R, bool kWeighted, typename scalar_t, typename acc_t>
inline void combine_scaled(const scalar_t* __restrict row, acc_t w, acc_t* __restrict acc, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    acc_t v = static_cast<acc_t>(row[f]);
    if constexpr (kWeighted) v = v * w;
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

// As update_row, on value-scaled rows.
template <bool kMax, bool kWeighted, typename scalar_t, typename cmp_t, typename lane_t>
inline void update_scaled(const scalar_t* __restrict row, cmp_t w, cmp_t* __restrict best, lane_t* __restrict row_id,
                          lane_t e, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    cmp_t v = static_cast<cmp_t>(row[f]);
    if constexpr (kWeighted) v = v * w;
    const cmp_t b = best[f];
    bool take = kMax ? (v > b) : (v < b);
    if constexpr (!std::is_integral_v<cmp_t>) take = take | ((v != v) & (b == b));
    best[f] = take ? v : b;
    row_id[f] = take ? e : row_id[f];
  }
}

// x rows are reached through col, which defeats the hardware prefetcher.
template <typename scalar_t, typename index_t>
inline const scalar_t* x_row(const scalar_t* x, const index_t* col, int64_t e, int64_t E, int64_t F) {
  constexpr int64_t kAhead = 8;
  if (e + kAhead < E)
    prefetch_row<0>(x + static_cast<int64_t>(col[e + kAhead]) * F, F * static_cast<int64_t>(sizeof(scalar_t)));
  return x + static_cast<int64_t>(col[e]) * F;
}

template <Reduce R, bool kWeighted, typename scalar_t, typename index_t>
void spmm_value_kernel(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                       scalar_t* out, int64_t G, int64_t E, int64_t F) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kInPlace = std::is_same_v<acc_t, scalar_t>;
  parallel_over_groups(ptr, G, E, F, [&](int64_t gb, int64_t ge) {
    std::vector<acc_t> buffer(kInPlace ? 0 : F);
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t lo = ptr[g], hi = ptr[g + 1];
      scalar_t* o = out + g * F;
      acc_t* acc;
      if constexpr (kInPlace) acc = o;
      else acc = buffer.data();
      for (int64_t e = lo; e < hi; ++e) {
        const acc_t w = kWeighted ? static_cast<acc_t>(value[e]) : acc_t(1);
        const scalar_t* row = x_row(x, col, e, E, F);
        if (e == lo) load_scaled<kWeighted>(row, w, acc, F);
        else combine_scaled<R, kWeighted>(row, w, acc, F);
      }
      store_row(acc, o, F, hi - lo, R == Reduce::Mean);
    }
  });
}

template <bool kMax, bool kWeighted, typename scalar_t, typename index_t, typename lane_t>
void spmm_arg_kernel(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                     scalar_t* out, int64_t* arg, int64_t G, int64_t E, int64_t F) {
  using cmp_t = at::opmath_type<scalar_t>;
  parallel_over_groups(ptr, G, E, F, [&](int64_t gb, int64_t ge) {
    std::vector<cmp_t> best(F);
    std::vector<lane_t> rel(F);  // winning edge relative to the row start
    for (int64_t g = gb; g < ge; ++g) {
      scalar_t* o = out + g * F;
      int64_t* a = arg + g * F;
      const int64_t lo = ptr[g], hi = ptr[g + 1];
      if (hi == lo) {
        for (int64_t f = 0; f < F; ++f) { o[f] = scalar_t(0); a[f] = -1; }
        continue;
      }
      load_scaled<kWeighted>(x_row(x, col, lo, E, F), kWeighted ? static_cast<cmp_t>(value[lo]) : cmp_t(1),
                             best.data(), F);
      std::fill(rel.begin(), rel.end(), lane_t(0));
      for (int64_t e = lo + 1; e < hi; ++e)
        update_scaled<kMax, kWeighted>(x_row(x, col, e, E, F), kWeighted ? static_cast<cmp_t>(value[e]) : cmp_t(1),
                                       best.data(), rel.data(), lane_t(e - lo), F);
      for (int64_t f = 0; f < F; ++f) {
        o[f] = static_cast<scalar_t>(best[f]);
        a[f] = lo + rel[f];
      }
    }
  });
}

// <a, b> with kLanes independent partial sums (they vectorise without
// reassociating), added up in a fixed order: the same bits in every ISA copy.
template <typename scalar_t, typename acc_t>
inline acc_t dot_row(const scalar_t* __restrict a, const scalar_t* __restrict b, int64_t F) {
  constexpr int64_t kLanes = 8;
  acc_t part[kLanes] = {};
  int64_t f = 0;
  for (; f + kLanes <= F; f += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) part[l] += static_cast<acc_t>(a[f + l]) * static_cast<acc_t>(b[f + l]);
  for (int64_t l = 0; f < F; ++f, ++l) part[l] += static_cast<acc_t>(a[f]) * static_cast<acc_t>(b[f]);
  acc_t total = acc_t(0);
  for (int64_t l = 0; l < kLanes; ++l) total += part[l];
  return total;
}

// Gradient of spmm sum/mean w.r.t. value: out[k] = <grad[row(k)], x[col[k]]>
// (divided by the row's degree for mean). Writes every out[k] once.
template <typename scalar_t, typename index_t>
void spmm_value_grad_kernel(const index_t* ptr, const index_t* col, const scalar_t* grad, const scalar_t* x,
                            scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
  using acc_t = at::opmath_type<scalar_t>;
  parallel_over_groups(ptr, G, E, F, [&](int64_t gb, int64_t ge) {
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t lo = ptr[g], hi = ptr[g + 1];
      const scalar_t* gr = grad + g * F;
      const acc_t scale = (mean && hi > lo) ? acc_t(1) / acc_t(hi - lo) : acc_t(1);
      for (int64_t e = lo; e < hi; ++e) {
        const acc_t d = dot_row<scalar_t, acc_t>(gr, x_row(x, col, e, E, F), F);
        out[e] = static_cast<scalar_t>(mean ? d * scale : d);
      }
    }
  });
}

// spmm_feature: a value per edge *and feature*,
// out[i, f] = sum_{k in row i} value[k, f] * x[col[k], f] (mean: over the degree).
// The depthwise messages value[k] * x[col[k]] are reduced on the spot, so no
// [E, F] message tensor exists; value itself is [E, F] and read once.
// value_perm (may be null) maps edge k to its value row, as the transpose needs.
template <typename scalar_t, typename index_t>
void spmm_feature_kernel(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                         const int64_t* value_perm, scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kInPlace = std::is_same_v<acc_t, scalar_t>;
  parallel_over_groups(ptr, G, E, 2 * F, [&](int64_t gb, int64_t ge) {
    std::vector<acc_t> buffer(kInPlace ? 0 : F);
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t lo = ptr[g], hi = ptr[g + 1];
      scalar_t* o = out + g * F;
      acc_t* acc;
      if constexpr (kInPlace) acc = o;
      else acc = buffer.data();
      for (int64_t e = lo; e < hi; ++e) {
        const scalar_t* __restrict row = x_row(x, col, e, E, F);
        const scalar_t* __restrict w = value + (value_perm != nullptr ? value_perm[e] : e) * F;
        if (e == lo) {
          for (int64_t f = 0; f < F; ++f) acc[f] = static_cast<acc_t>(w[f]) * static_cast<acc_t>(row[f]);
        } else {
          for (int64_t f = 0; f < F; ++f) acc[f] += static_cast<acc_t>(w[f]) * static_cast<acc_t>(row[f]);
        }
      }
      store_row(acc, o, F, hi - lo, mean);
    }
  });
}

// Gradient of spmm_feature w.r.t. value: out[k, f] = grad[row(k), f] * x[col[k], f]
// (over the row's degree for mean); every out[k] is written once.
template <typename scalar_t, typename index_t>
void spmm_feature_value_grad_kernel(const index_t* ptr, const index_t* col, const scalar_t* grad, const scalar_t* x,
                                    scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
  using acc_t = at::opmath_type<scalar_t>;
  parallel_over_groups(ptr, G, E, 2 * F, [&](int64_t gb, int64_t ge) {
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t lo = ptr[g], hi = ptr[g + 1];
      const scalar_t* __restrict gr = grad + g * F;
      const acc_t scale = (mean && hi > lo) ? acc_t(1) / acc_t(hi - lo) : acc_t(1);
      for (int64_t e = lo; e < hi; ++e) {
        const scalar_t* __restrict row = x_row(x, col, e, E, F);
        scalar_t* __restrict o = out + e * F;
        if (mean) {
          for (int64_t f = 0; f < F; ++f)
            o[f] = static_cast<scalar_t>(static_cast<acc_t>(gr[f]) * static_cast<acc_t>(row[f]) * scale);
        } else {
          for (int64_t f = 0; f < F; ++f)
            o[f] = static_cast<scalar_t>(static_cast<acc_t>(gr[f]) * static_cast<acc_t>(row[f]));
        }
      }
    }
  });
}

// Gradient of spmm min/max w.r.t. x, by owner computes over the transpose:
// source row j sums value[k] * grad[i, f] over its CSC entries (edge k from
// target i) whose edge won output entry (i, f). Every out[j] is written by one
// thread, in CSC order: deterministic, no atomics, no [G, F] index tensor.
template <bool kWeighted, typename scalar_t, typename index_t>
void spmm_arg_grad_kernel(const index_t* colptr, const index_t* row, const int64_t* perm, const int64_t* arg,
                          const scalar_t* grad, const scalar_t* value, scalar_t* out, int64_t N, int64_t E,
                          int64_t F) {
  using acc_t = at::opmath_type<scalar_t>;
  parallel_over_groups(colptr, N, E, F, [&](int64_t jb, int64_t je) {
    std::vector<acc_t> acc(F);
    for (int64_t j = jb; j < je; ++j) {
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t p = colptr[j]; p < colptr[j + 1]; ++p) {
        const int64_t k = perm[p];
        const int64_t i = static_cast<int64_t>(row[p]);
        const int64_t* a = arg + i * F;
        const scalar_t* g = grad + i * F;
        const acc_t w = kWeighted ? static_cast<acc_t>(value[k]) : acc_t(1);
        acc_t* __restrict ac = acc.data();
        // branch-free, so that the compare-and-add vectorises
        for (int64_t f = 0; f < F; ++f) {
          const acc_t contrib = kWeighted ? w * static_cast<acc_t>(g[f]) : static_cast<acc_t>(g[f]);
          ac[f] += a[f] == k ? contrib : acc_t(0);
        }
      }
      scalar_t* o = out + j * F;
      for (int64_t f = 0; f < F; ++f) o[f] = static_cast<scalar_t>(acc[f]);
    }
  });
}

// Depthwise mix over a small axis: out[n, o, c] = sum_l w[o, l, c] * x[n, l, c]
// (x [N, L, C], w [O, L, C], out [N, O, C]). Channels go in blocks of kMixLanes
// whose accumulators stay in registers across the l loop (a runtime-length
// accumulator row would be stored and reloaded for every l); nodes are split
// across threads, and every output is summed in l order.
constexpr int64_t kMixLanes = 16;

template <int64_t W, typename scalar_t, typename acc_t>
inline void mix_block(const scalar_t* __restrict w, const scalar_t* __restrict x, scalar_t* __restrict out,
                      int64_t L, int64_t C) {
  acc_t acc[W] = {};
  for (int64_t l = 0; l < L; ++l) {
    const scalar_t* wl = w + l * C;
    const scalar_t* xl = x + l * C;
    for (int64_t j = 0; j < W; ++j) acc[j] += static_cast<acc_t>(wl[j]) * static_cast<acc_t>(xl[j]);
  }
  for (int64_t j = 0; j < W; ++j) out[j] = static_cast<scalar_t>(acc[j]);
}

template <typename scalar_t, typename acc_t>
inline void mix_tail(const scalar_t* __restrict w, const scalar_t* __restrict x, scalar_t* __restrict out,
                     int64_t L, int64_t C, int64_t width) {
  acc_t acc[kMixLanes] = {};
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<acc_t>(w[l * C + j]) * static_cast<acc_t>(x[l * C + j]);
  for (int64_t j = 0; j < width; ++j) out[j] = static_cast<scalar_t>(acc[j]);
}

template <typename scalar_t>
void depthwise_mix_kernel(const scalar_t* w, const scalar_t* x, scalar_t* out, int64_t N, int64_t O, int64_t L,
                          int64_t C) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, O * L * C));
  const int64_t full = C / kMixLanes * kMixLanes;
  at::parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t o = 0; o < O; ++o) {
        const scalar_t* wo = w + o * L * C;
        const scalar_t* xn = x + n * L * C;
        scalar_t* dst = out + (n * O + o) * C;
        for (int64_t c = 0; c < full; c += kMixLanes)
          mix_block<kMixLanes, scalar_t, acc_t>(wo + c, xn + c, dst + c, L, C);
        if (full < C) mix_tail<scalar_t, acc_t>(wo + full, xn + full, dst + full, L, C, C - full);
      }
    }
  });
}

// The weight gradient of depthwise_mix: out[o, l, c] = sum_n g[n, o, c] * x[n, l, c]
// (g [N, O, C], x [N, L, C], out [O, L, C]). Blocks of nodes (their size set by
// N alone) give partial sums that are added in block order, so the result does
// not depend on the number of threads. Within a block, a few nodes at a time are folded into the
// partial sums with register accumulators, so the partial row is loaded and
// stored once per few nodes while those nodes' rows stay in cache.
template <int64_t W, typename scalar_t, typename acc_t>
inline void mix_grad_block(const scalar_t* g, const scalar_t* x, acc_t* __restrict part, int64_t n0, int64_t n1,
                           int64_t O, int64_t L, int64_t C) {
  acc_t acc[W];
  for (int64_t j = 0; j < W; ++j) acc[j] = part[j];
  for (int64_t n = n0; n < n1; ++n) {
    const scalar_t* __restrict gn = g + n * O * C;
    const scalar_t* __restrict xn = x + n * L * C;
    for (int64_t j = 0; j < W; ++j) acc[j] += static_cast<acc_t>(gn[j]) * static_cast<acc_t>(xn[j]);
  }
  for (int64_t j = 0; j < W; ++j) part[j] = acc[j];
}

template <typename scalar_t, typename acc_t>
inline void mix_grad_tail(const scalar_t* g, const scalar_t* x, acc_t* part, int64_t n0, int64_t n1, int64_t O,
                          int64_t L, int64_t C, int64_t width) {
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t j = 0; j < width; ++j)
      part[j] += static_cast<acc_t>(g[n * O * C + j]) * static_cast<acc_t>(x[n * L * C + j]);
}

template <typename scalar_t>
void depthwise_mix_weight_grad_kernel(const scalar_t* g, const scalar_t* x, scalar_t* out, int64_t N, int64_t O,
                                      int64_t L, int64_t C) {
  using acc_t = at::opmath_type<scalar_t>;
  // at least 64 nodes a block and at most 256 blocks, so the partial sums
  // stay within 256 weight-sized buffers however many nodes there are
  constexpr int64_t kStep = 8, kMaxBlocks = 256;
  const int64_t kNodes = std::max<int64_t>(64, (N + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t blocks = (N + kNodes - 1) / kNodes, size = O * L * C;
  const int64_t full = C / kMixLanes * kMixLanes;
  std::vector<acc_t> partial(static_cast<size_t>(std::max<int64_t>(blocks, 1) * size), acc_t(0));
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b) {
      acc_t* part = partial.data() + b * size;
      for (int64_t n0 = b * kNodes; n0 < std::min(N, (b + 1) * kNodes); n0 += kStep) {
        const int64_t n1 = std::min({N, (b + 1) * kNodes, n0 + kStep});
        for (int64_t o = 0; o < O; ++o) {
          for (int64_t l = 0; l < L; ++l) {
            acc_t* row = part + (o * L + l) * C;
            const scalar_t* go = g + o * C;
            const scalar_t* xl = x + l * C;
            for (int64_t c = 0; c < full; c += kMixLanes)
              mix_grad_block<kMixLanes, scalar_t, acc_t>(go + c, xl + c, row + c, n0, n1, O, L, C);
            if (full < C) mix_grad_tail<scalar_t, acc_t>(go + full, xl + full, row + full, n0, n1, O, L, C, C - full);
          }
        }
      }
    }
  });
  at::parallel_for(0, size, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      acc_t total = 0;
      for (int64_t b = 0; b < blocks; ++b) total += partial[b * size + i];
      out[i] = static_cast<scalar_t>(total);
    }
  });
}

// The symmetric functions of LCM's cheap cell: pairs [P, 2, D] (rows a, b) ->
// out [P, 3D] = [a + b, a * b, |a - b|], each rounded as torch rounds the
// separate ops (so the values equal theirs bitwise), in one pass.
template <typename scalar_t>
void symmetric_pair_features_kernel(const scalar_t* pairs, scalar_t* out, int64_t P, int64_t D) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, P, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D)), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* __restrict a = pairs + p * 2 * D;
      const scalar_t* __restrict b = a + D;
      scalar_t* __restrict o = out + p * 3 * D;
      for (int64_t d = 0; d < D; ++d) {
        const acc_t x = static_cast<acc_t>(a[d]), y = static_cast<acc_t>(b[d]);
        o[d] = static_cast<scalar_t>(x + y);
        o[D + d] = static_cast<scalar_t>(x * y);
        o[2 * D + d] = static_cast<scalar_t>(std::abs(static_cast<acc_t>(static_cast<scalar_t>(x - y))));
      }
    }
  });
}

// Its adjoint: grad [P, 3D] = (g_s, g_p, g_d), pairs [P, 2, D] -> [P, 2, D] with
// g_a = g_s + g_p b + g_d sgn(a - b) and g_b = g_s + g_p a - g_d sgn(a - b).
template <typename scalar_t>
void symmetric_pair_features_backward_kernel(const scalar_t* grad, const scalar_t* pairs, scalar_t* out, int64_t P,
                                             int64_t D) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, P, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D)), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const scalar_t* __restrict a = pairs + p * 2 * D;
      const scalar_t* __restrict b = a + D;
      const scalar_t* __restrict g = grad + p * 3 * D;
      scalar_t* __restrict ga = out + p * 2 * D;
      scalar_t* __restrict gb = ga + D;
      for (int64_t d = 0; d < D; ++d) {
        const acc_t x = static_cast<acc_t>(a[d]), y = static_cast<acc_t>(b[d]);
        const acc_t diff = static_cast<acc_t>(static_cast<scalar_t>(x - y));
        const acc_t sign = static_cast<acc_t>((diff > 0) - (diff < 0));
        const acc_t gs = static_cast<acc_t>(g[d]), gp = static_cast<acc_t>(g[D + d]);
        const acc_t gd = static_cast<acc_t>(g[2 * D + d]) * sign;
        ga[d] = static_cast<scalar_t>(gs + gp * y + gd);
        gb[d] = static_cast<scalar_t>(gs + gp * x - gd);
      }
    }
  });
}

// The kernels of this instruction set, as one type the glue can pick at run time.
struct Kernels {
  template <Reduce R, typename scalar_t, typename index_t>
  static void segment_value(const scalar_t* src, const index_t* ptr, scalar_t* out, int64_t B, int64_t E,
                            int64_t G, int64_t F) {
    segment_value_kernel<R, scalar_t, index_t>(src, ptr, out, B, E, G, F);
  }
  template <typename scalar_t, typename index_t, bool kMax, typename lane_t>
  static void segment_arg(const scalar_t* src, const index_t* ptr, const int64_t* perm, scalar_t* out,
                          int64_t* arg, int64_t B, int64_t E, int64_t G, int64_t F) {
    segment_arg_kernel<scalar_t, index_t, kMax, lane_t>(src, ptr, perm, out, arg, B, E, G, F);
  }
  template <Reduce R, typename scalar_t, typename index_t>
  static void scatter_value(const scalar_t* src, const index_t* index, scalar_t* out, int64_t B, int64_t E,
                            int64_t G, int64_t F) {
    scatter_value_kernel<R, scalar_t, index_t>(src, index, out, B, E, G, F);
  }
  template <typename scalar_t, typename index_t, typename lane_t>
  static void gather_csr(const scalar_t* grad, const index_t* ptr, const int64_t* arg, scalar_t* out, int64_t B,
                         int64_t E, int64_t G, int64_t F, Reduce r) {
    gather_csr_kernel<scalar_t, index_t, lane_t>(grad, ptr, arg, out, B, E, G, F, r);
  }
  template <typename scalar_t, typename index_t>
  static void gather_coo(const scalar_t* grad, const index_t* index, const int64_t* arg, scalar_t* out, int64_t B,
                         int64_t E, int64_t G, int64_t F, Reduce r) {
    gather_coo_kernel<scalar_t, index_t>(grad, index, arg, out, B, E, G, F, r);
  }
  template <Reduce R, bool kWeighted, typename scalar_t, typename index_t>
  static void spmm_value(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                         scalar_t* out, int64_t G, int64_t E, int64_t F) {
    spmm_value_kernel<R, kWeighted, scalar_t, index_t>(ptr, col, x, value, out, G, E, F);
  }
  template <bool kMax, bool kWeighted, typename scalar_t, typename index_t, typename lane_t>
  static void spmm_arg(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                       scalar_t* out, int64_t* arg, int64_t G, int64_t E, int64_t F) {
    spmm_arg_kernel<kMax, kWeighted, scalar_t, index_t, lane_t>(ptr, col, x, value, out, arg, G, E, F);
  }
  template <typename scalar_t, typename index_t>
  static void spmm_value_grad(const index_t* ptr, const index_t* col, const scalar_t* grad, const scalar_t* x,
                              scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
    spmm_value_grad_kernel<scalar_t, index_t>(ptr, col, grad, x, out, G, E, F, mean);
  }
  template <typename scalar_t, typename index_t>
  static void spmm_feature(const index_t* ptr, const index_t* col, const scalar_t* x, const scalar_t* value,
                           const int64_t* value_perm, scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
    spmm_feature_kernel<scalar_t, index_t>(ptr, col, x, value, value_perm, out, G, E, F, mean);
  }
  template <typename scalar_t, typename index_t>
  static void spmm_feature_value_grad(const index_t* ptr, const index_t* col, const scalar_t* grad,
                                      const scalar_t* x, scalar_t* out, int64_t G, int64_t E, int64_t F, bool mean) {
    spmm_feature_value_grad_kernel<scalar_t, index_t>(ptr, col, grad, x, out, G, E, F, mean);
  }
  template <bool kWeighted, typename scalar_t, typename index_t>
  static void spmm_arg_grad(const index_t* colptr, const index_t* row, const int64_t* perm, const int64_t* arg,
                            const scalar_t* grad, const scalar_t* value, scalar_t* out, int64_t N, int64_t E,
                            int64_t F) {
    spmm_arg_grad_kernel<kWeighted, scalar_t, index_t>(colptr, row, perm, arg, grad, value, out, N, E, F);
  }
  template <typename scalar_t>
  static void depthwise_mix(const scalar_t* w, const scalar_t* x, scalar_t* out, int64_t N, int64_t O, int64_t L,
                            int64_t C) {
    depthwise_mix_kernel<scalar_t>(w, x, out, N, O, L, C);
  }
  template <typename scalar_t>
  static void depthwise_mix_weight_grad(const scalar_t* g, const scalar_t* x, scalar_t* out, int64_t N, int64_t O,
                                        int64_t L, int64_t C) {
    depthwise_mix_weight_grad_kernel<scalar_t>(g, x, out, N, O, L, C);
  }
  template <typename scalar_t>
  static void symmetric_pair_features(const scalar_t* pairs, scalar_t* out, int64_t P, int64_t D) {
    symmetric_pair_features_kernel<scalar_t>(pairs, out, P, D);
  }
  template <typename scalar_t>
  static void symmetric_pair_features_backward(const scalar_t* grad, const scalar_t* pairs, scalar_t* out, int64_t P,
                                               int64_t D) {
    symmetric_pair_features_backward_kernel<scalar_t>(grad, pairs, out, P, D);
  }
};

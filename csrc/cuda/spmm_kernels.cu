// CSR gather-reduce (spmm) kernels: out[i] = reduce_k value[k] * x[col[k]],
// deterministic (each output element is owned by one thread), no [E, F]
// intermediate. Needs only the CUDA toolkit.
#include "common.cuh"
#include "kernels.h"

namespace graphequi {
namespace cuda {
namespace {

constexpr int kWarp = 32;

// Threads for for_each_row_feature to give every (row, feature tile) one warp.
inline int64_t row_feature_threads(int64_t G, int64_t F) { return G * ((F + kWarp - 1) / kWarp) * kWarp; }

// Calls fn(g, f) for every (row g, feature f) of a [G, F] output: one warp
// per (row, 32-feature tile), lane l on feature tile * 32 + l, so the rows
// gathered per edge are read in coalesced pieces.
template <typename Fn>
__device__ __forceinline__ void for_each_row_feature(int64_t G, int64_t F, const Fn& fn) {
  const int lane = threadIdx.x % kWarp;
  const int64_t tiles = (F + kWarp - 1) / kWarp;
  const int64_t first_warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int64_t warp_stride = static_cast<int64_t>(blockDim.x) * gridDim.x / kWarp;
  for (int64_t w = first_warp; w < G * tiles; w += warp_stride) {
    const int64_t f = (w % tiles) * kWarp + lane;
    if (f < F) fn(w / tiles, f);
  }
}

// Sum/mean/min/max in the op-math type, over for_each_row_feature's layout;
// arg (optional) receives the winning edge for min/max (lowest edge on ties,
// NaN wins and sticks).
template <typename T, typename I>
__global__ void spmm_kernel(const I* __restrict__ ptr, const I* __restrict__ col, const T* __restrict__ x,
                            const T* __restrict__ value, T* __restrict__ out, int64_t* __restrict__ arg, int64_t G,
                            int64_t F, int reduce) {
  using A = typename OpMath<T>::type;
  const bool is_arg = reduce == static_cast<int>(ReduceKind::Min) || reduce == static_cast<int>(ReduceKind::Max);
  const bool is_max = reduce == static_cast<int>(ReduceKind::Max);
  for_each_row_feature(G, F, [&](int64_t g, int64_t f) {
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    const int64_t o = g * F + f;
    if (hi == lo) {
      out[o] = from_acc<T>(A(0));
      if (arg != nullptr) arg[o] = -1;
      return;
    }
    A acc = A(0);
    int64_t best_edge = lo;
    for (int64_t e = lo; e < hi; ++e) {
      A v = to_acc(x[static_cast<int64_t>(col[e]) * F + f]);
      if (value != nullptr) v = v * to_acc(value[e]);
      if (!is_arg) {
        acc += v;
      } else if (e == lo || better(v, acc, is_max)) {
        acc = v;
        best_edge = e;
      }
    }
    if (reduce == static_cast<int>(ReduceKind::Mean)) acc = acc / static_cast<A>(hi - lo);
    out[o] = from_acc<T>(acc);
    if (arg != nullptr) arg[o] = best_edge;
  });
}

// out[k] = <grad[row(k)], x[col[k]]> (over the row's degree for mean): one
// warp per row, lanes split the features and combine with shuffles.
template <typename T, typename I>
__global__ void spmm_value_grad_kernel(const I* __restrict__ ptr, const I* __restrict__ col,
                                       const T* __restrict__ grad, const T* __restrict__ x, T* __restrict__ out,
                                       int64_t G, int64_t F, bool mean) {
  using A = typename OpMath<T>::type;
  const int lane = threadIdx.x % kWarp;
  const int64_t first_warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int64_t warp_stride = static_cast<int64_t>(blockDim.x) * gridDim.x / kWarp;
  for (int64_t g = first_warp; g < G; g += warp_stride) {
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    const T* gr = grad + g * F;
    for (int64_t e = lo; e < hi; ++e) {
      const T* xr = x + static_cast<int64_t>(col[e]) * F;
      A partial = A(0);
      for (int64_t f = lane; f < F; f += kWarp) partial += to_acc(gr[f]) * to_acc(xr[f]);
      for (int offset = kWarp / 2; offset > 0; offset /= 2) partial += __shfl_down_sync(0xffffffffu, partial, offset);
      if (lane == 0) out[e] = from_acc<T>(mean ? partial / static_cast<A>(hi - lo) : partial);
    }
  }
}

// A value per edge and feature: out[g, f] = sum_e value[vrow(e), f] * x[col[e], f]
// with vrow(e) = value_perm[e] when given (the transpose reads value through
// the CSC permutation), over the degree for mean. Layout as spmm_kernel.
template <typename T, typename I>
__global__ void spmm_feature_kernel(const I* __restrict__ ptr, const I* __restrict__ col, const T* __restrict__ x,
                                    const T* __restrict__ value, const int64_t* __restrict__ value_perm,
                                    T* __restrict__ out, int64_t G, int64_t F, bool mean) {
  using A = typename OpMath<T>::type;
  for_each_row_feature(G, F, [&](int64_t g, int64_t f) {
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    A acc = A(0);
    for (int64_t e = lo; e < hi; ++e) {
      const int64_t vrow = value_perm != nullptr ? value_perm[e] : e;
      acc += to_acc(value[vrow * F + f]) * to_acc(x[static_cast<int64_t>(col[e]) * F + f]);
    }
    if (mean && hi > lo) acc = acc / static_cast<A>(hi - lo);
    out[g * F + f] = from_acc<T>(acc);
  });
}

// Gradient of spmm_feature w.r.t. value: out[e, f] = grad[row(e), f] * x[col[e], f]
// (over the degree for mean); one warp per (row, feature tile), every entry written once.
template <typename T, typename I>
__global__ void spmm_feature_value_grad_kernel(const I* __restrict__ ptr, const I* __restrict__ col,
                                               const T* __restrict__ grad, const T* __restrict__ x,
                                               T* __restrict__ out, int64_t G, int64_t F, bool mean) {
  using A = typename OpMath<T>::type;
  for_each_row_feature(G, F, [&](int64_t g, int64_t f) {
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    A gf = to_acc(grad[g * F + f]);
    if (mean && hi > lo) gf = gf / static_cast<A>(hi - lo);
    for (int64_t e = lo; e < hi; ++e)
      out[e * F + f] = from_acc<T>(gf * to_acc(x[static_cast<int64_t>(col[e]) * F + f]));
  });
}

}  // namespace

template <typename T, typename I>
cudaError_t spmm_feature(const I* ptr, const I* col, const T* x, const T* value, const int64_t* value_perm, T* out,
                         int64_t G, int64_t F, bool mean, cudaStream_t stream) {
  if (G * F == 0) return cudaSuccess;
  spmm_feature_kernel<T, I><<<blocks_for(row_feature_threads(G, F)), kThreads, 0, stream>>>(ptr, col, x, value, value_perm, out, G,
                                                                          F, mean);
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t spmm_feature_value_grad(const I* ptr, const I* col, const T* grad, const T* x, T* out, int64_t G,
                                    int64_t F, bool mean, cudaStream_t stream) {
  if (G * F == 0) return cudaSuccess;
  spmm_feature_value_grad_kernel<T, I><<<blocks_for(row_feature_threads(G, F)), kThreads, 0, stream>>>(ptr, col, grad, x, out, G, F,
                                                                                     mean);
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t spmm(const I* ptr, const I* col, const T* x, const T* value, T* out, int64_t* arg, int64_t G, int64_t F,
                 ReduceKind reduce, cudaStream_t stream) {
  if (G * F == 0) return cudaSuccess;
  spmm_kernel<T, I><<<blocks_for(row_feature_threads(G, F)), kThreads, 0, stream>>>(ptr, col, x, value, out, arg, G, F,
                                                                  static_cast<int>(reduce));
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t spmm_value_grad(const I* ptr, const I* col, const T* grad, const T* x, T* out, int64_t G, int64_t F,
                            bool mean, cudaStream_t stream) {
  if (G == 0) return cudaSuccess;
  spmm_value_grad_kernel<T, I><<<blocks_for(G * kWarp), kThreads, 0, stream>>>(ptr, col, grad, x, out, G, F, mean);
  return cudaGetLastError();
}

#define GRAPHEQUI_INSTANTIATE_SPMM(T, I)                                                                    \
  template cudaError_t spmm<T, I>(const I*, const I*, const T*, const T*, T*, int64_t*, int64_t, int64_t, \
                                  ReduceKind, cudaStream_t);                                              \
  template cudaError_t spmm_value_grad<T, I>(const I*, const I*, const T*, const T*, T*, int64_t, int64_t, \
                                             bool, cudaStream_t);                                         \
  template cudaError_t spmm_feature<T, I>(const I*, const I*, const T*, const T*, const int64_t*, T*,      \
                                          int64_t, int64_t, bool, cudaStream_t);                           \
  template cudaError_t spmm_feature_value_grad<T, I>(const I*, const I*, const T*, const T*, T*, int64_t,  \
                                                     int64_t, bool, cudaStream_t);

#define GRAPHEQUI_INSTANTIATE_SPMM_ALL(T) \
  GRAPHEQUI_INSTANTIATE_SPMM(T, int32_t)  \
  GRAPHEQUI_INSTANTIATE_SPMM(T, int64_t)

GRAPHEQUI_INSTANTIATE_SPMM_ALL(float)
GRAPHEQUI_INSTANTIATE_SPMM_ALL(double)
GRAPHEQUI_INSTANTIATE_SPMM_ALL(__half)
GRAPHEQUI_INSTANTIATE_SPMM_ALL(__nv_bfloat16)
GRAPHEQUI_INSTANTIATE_SPMM_ALL(int32_t)
GRAPHEQUI_INSTANTIATE_SPMM_ALL(int64_t)

}  // namespace cuda
}  // namespace graphequi

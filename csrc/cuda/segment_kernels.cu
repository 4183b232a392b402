// CSR (sorted) kernels: deterministic, no atomics. Needs only the CUDA toolkit.
#include "common.cuh"
#include "kernels.h"

namespace graphequi {
namespace cuda {
namespace {

constexpr int kWarp = 32;

// Warp-cooperative segment sum/mean.
// Narrow features (F < 32): one warp per (b, g); its lanes stride over the
// segment's rows and combine with shuffles, so long segments use all lanes.
// Wide features: one warp per (b, g, 32-feature tile); lane l owns feature
// tile*32 + l and walks the rows, so every row read is a coalesced 128-byte load.
template <typename T, typename I, bool kWide>
__global__ void segment_reduce_kernel(const T* __restrict__ src, const I* __restrict__ ptr, T* __restrict__ out,
                                      int64_t B, int64_t E, int64_t G, int64_t F, bool mean) {
  using A = typename OpMath<T>::type;
  const int lane = threadIdx.x % kWarp;
  const int64_t tiles = kWide ? (F + kWarp - 1) / kWarp : 1;
  const int64_t warps = B * G * tiles;
  const int64_t first_warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int64_t warp_stride = static_cast<int64_t>(blockDim.x) * gridDim.x / kWarp;
  for (int64_t w = first_warp; w < warps; w += warp_stride) {
    const int64_t tile = w % tiles;
    const int64_t bg = w / tiles;
    const int64_t b = bg / G, g = bg % G;
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    const T* base = src + b * E * F;
    T* o = out + bg * F;
    const A scale = (mean && hi > lo) ? A(1) / static_cast<A>(hi - lo) : A(1);
    if (kWide) {
      const int64_t f = tile * kWarp + lane;
      if (f < F) {
        A acc = A(0);
        for (int64_t e = lo; e < hi; ++e) acc += to_acc(base[e * F + f]);
        o[f] = from_acc<T>(mean ? acc * scale : acc);
      }
    } else {
      for (int64_t f = 0; f < F; ++f) {
        A acc = A(0);
        for (int64_t e = lo + lane; e < hi; e += kWarp) acc += to_acc(base[e * F + f]);
        for (int offset = kWarp / 2; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
        if (lane == 0) o[f] = from_acc<T>(mean ? acc * scale : acc);
      }
    }
  }
}

// One thread per (b, g, f), rows in order: ties keep the lowest row.
template <typename T, typename I>
__global__ void segment_arg_kernel(const T* __restrict__ src, const I* __restrict__ ptr, T* __restrict__ out,
                                   int64_t* __restrict__ arg, int64_t B, int64_t E, int64_t G, int64_t F,
                                   bool is_max) {
  using A = typename OpMath<T>::type;
  GRAPHEQUI_GRID_STRIDE(i, B * G * F) {
    const int64_t f = i % F;
    const int64_t bg = i / F;
    const int64_t b = bg / G, g = bg % G;
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    if (hi == lo) {
      out[i] = from_acc<T>(A(0));
      arg[i] = -1;
      continue;
    }
    const T* column = src + b * E * F + f;
    A best = to_acc(column[lo * F]);
    int64_t best_row = lo;
    for (int64_t e = lo + 1; e < hi; ++e) {
      const A v = to_acc(column[e * F]);
      if (better(v, best, is_max)) { best = v; best_row = e; }
    }
    out[i] = from_acc<T>(best);
    arg[i] = best_row;
  }
}

// Adjoint of the segment reductions; each output element written once.
template <typename T, typename I>
__global__ void gather_csr_kernel(const T* __restrict__ grad, const I* __restrict__ ptr,
                                  const int64_t* __restrict__ arg, T* __restrict__ out, int64_t B, int64_t E,
                                  int64_t G, int64_t F, int reduce) {
  using A = typename OpMath<T>::type;
  GRAPHEQUI_GRID_STRIDE(i, B * G * F) {
    const int64_t f = i % F;
    const int64_t bg = i / F;
    const int64_t b = bg / G, g = bg % G;
    const int64_t lo = ptr[g], hi = ptr[g + 1];
    T* column = out + b * E * F + f;
    if (reduce == static_cast<int>(ReduceKind::Min) || reduce == static_cast<int>(ReduceKind::Max)) {
      const int64_t winner = arg[i];
      for (int64_t e = lo; e < hi; ++e) column[e * F] = e == winner ? grad[i] : from_acc<T>(A(0));
    } else {
      A v = to_acc(grad[i]);
      if (reduce == static_cast<int>(ReduceKind::Mean) && hi > lo) v = v / static_cast<A>(hi - lo);
      const T value = from_acc<T>(v);
      for (int64_t e = lo; e < hi; ++e) column[e * F] = value;
    }
  }
}

}  // namespace

template <typename T, typename I>
cudaError_t segment_reduce(const T* src, const I* ptr, T* out, int64_t B, int64_t E, int64_t G, int64_t F,
                           ReduceKind reduce, cudaStream_t stream) {
  if (B * G * F == 0) return cudaSuccess;
  const bool mean = reduce == ReduceKind::Mean;
  if (F >= kWarp) {
    const int64_t threads = B * G * ((F + kWarp - 1) / kWarp) * kWarp;
    segment_reduce_kernel<T, I, true><<<blocks_for(threads), kThreads, 0, stream>>>(src, ptr, out, B, E, G, F, mean);
  } else {
    const int64_t threads = B * G * kWarp;
    segment_reduce_kernel<T, I, false><<<blocks_for(threads), kThreads, 0, stream>>>(src, ptr, out, B, E, G, F, mean);
  }
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t segment_arg(const T* src, const I* ptr, T* out, int64_t* arg, int64_t B, int64_t E, int64_t G,
                        int64_t F, bool is_max, cudaStream_t stream) {
  if (B * G * F == 0) return cudaSuccess;
  segment_arg_kernel<T, I><<<blocks_for(B * G * F), kThreads, 0, stream>>>(src, ptr, out, arg, B, E, G, F, is_max);
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t gather_csr(const T* grad, const I* ptr, const int64_t* arg, T* out, int64_t B, int64_t E, int64_t G,
                       int64_t F, ReduceKind reduce, cudaStream_t stream) {
  if (B * G * F == 0) return cudaSuccess;
  gather_csr_kernel<T, I><<<blocks_for(B * G * F), kThreads, 0, stream>>>(grad, ptr, arg, out, B, E, G, F,
                                                                          static_cast<int>(reduce));
  return cudaGetLastError();
}

#define GRAPHEQUI_INSTANTIATE_CSR(T, I)                                                                        \
  template cudaError_t segment_reduce<T, I>(const T*, const I*, T*, int64_t, int64_t, int64_t, int64_t,         \
                                            ReduceKind, cudaStream_t);                                         \
  template cudaError_t segment_arg<T, I>(const T*, const I*, T*, int64_t*, int64_t, int64_t, int64_t, int64_t,  \
                                         bool, cudaStream_t);                                                  \
  template cudaError_t gather_csr<T, I>(const T*, const I*, const int64_t*, T*, int64_t, int64_t, int64_t,      \
                                        int64_t, ReduceKind, cudaStream_t);

#define GRAPHEQUI_INSTANTIATE_CSR_ALL(T) \
  GRAPHEQUI_INSTANTIATE_CSR(T, int32_t)  \
  GRAPHEQUI_INSTANTIATE_CSR(T, int64_t)

GRAPHEQUI_INSTANTIATE_CSR_ALL(float)
GRAPHEQUI_INSTANTIATE_CSR_ALL(double)
GRAPHEQUI_INSTANTIATE_CSR_ALL(__half)
GRAPHEQUI_INSTANTIATE_CSR_ALL(__nv_bfloat16)
GRAPHEQUI_INSTANTIATE_CSR_ALL(int32_t)
GRAPHEQUI_INSTANTIATE_CSR_ALL(int64_t)

}  // namespace cuda
}  // namespace graphequi

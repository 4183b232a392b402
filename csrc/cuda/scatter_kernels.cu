// COO (unsorted index) kernels: atomics for sum/mean, plain gathers for the
// adjoints. Min/max on unsorted indices are not done with atomics: the glue
// stable-sorts the index and uses the CSR arg kernel, which keeps the
// lowest-row tie rule deterministic. Needs only the CUDA toolkit.
#include "common.cuh"
#include "kernels.h"

namespace graphequi {
namespace cuda {
namespace {

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int32_t* p, int32_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  // two's complement: unsigned wrap-around is signed addition
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

template <typename T, typename I>
__global__ void scatter_sum_kernel(const T* __restrict__ src, const I* __restrict__ index, T* __restrict__ out,
                                   int64_t B, int64_t E, int64_t G, int64_t F) {
  GRAPHEQUI_GRID_STRIDE(i, B * E * F) {
    const int64_t f = i % F;
    const int64_t be = i / F;
    const int64_t b = be / E, e = be % E;
    atomic_add(out + (b * G + static_cast<int64_t>(index[e])) * F + f, src[i]);
  }
}

template <typename I>
__global__ void count_kernel(const I* __restrict__ index, int64_t* __restrict__ count, int64_t E) {
  GRAPHEQUI_GRID_STRIDE(e, E) { atomic_add(count + static_cast<int64_t>(index[e]), int64_t(1)); }
}

template <typename T>
__global__ void divide_by_count_kernel(T* __restrict__ out, const int64_t* __restrict__ count, int64_t B, int64_t G,
                                       int64_t F) {
  GRAPHEQUI_GRID_STRIDE(i, B * G * F) {
    const int64_t c = count[(i / F) % G];
    if (c > 1) out[i] = out[i] / static_cast<T>(c);
  }
}

template <typename T, typename I>
__global__ void gather_coo_kernel(const T* __restrict__ grad, const I* __restrict__ index,
                                  const int64_t* __restrict__ arg, const int64_t* __restrict__ count,
                                  T* __restrict__ out, int64_t B, int64_t E, int64_t G, int64_t F, int reduce) {
  using A = typename OpMath<T>::type;
  GRAPHEQUI_GRID_STRIDE(i, B * E * F) {
    const int64_t f = i % F;
    const int64_t be = i / F;
    const int64_t b = be / E, e = be % E;
    const int64_t source = (b * G + static_cast<int64_t>(index[e])) * F + f;
    if (reduce == static_cast<int>(ReduceKind::Min) || reduce == static_cast<int>(ReduceKind::Max)) {
      out[i] = arg[source] == e ? grad[source] : from_acc<T>(A(0));
    } else if (reduce == static_cast<int>(ReduceKind::Mean)) {
      const int64_t c = count[index[e]];
      out[i] = from_acc<T>(to_acc(grad[source]) / static_cast<A>(c > 0 ? c : 1));
    } else {
      out[i] = grad[source];
    }
  }
}

}  // namespace

template <typename I>
cudaError_t count_index(const I* index, int64_t* count, int64_t E, cudaStream_t stream) {
  if (E == 0) return cudaSuccess;
  count_kernel<I><<<blocks_for(E), kThreads, 0, stream>>>(index, count, E);
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t scatter_sum(const T* src, const I* index, T* out, int64_t* count, int64_t B, int64_t E, int64_t G,
                        int64_t F, bool mean, cudaStream_t stream) {
  if (B * E * F > 0) {
    scatter_sum_kernel<T, I><<<blocks_for(B * E * F), kThreads, 0, stream>>>(src, index, out, B, E, G, F);
  }
  if (mean && B * G * F > 0) {
    cudaError_t err = count_index<I>(index, count, E, stream);
    if (err != cudaSuccess) return err;
    divide_by_count_kernel<T><<<blocks_for(B * G * F), kThreads, 0, stream>>>(out, count, B, G, F);
  }
  return cudaGetLastError();
}

template <typename T, typename I>
cudaError_t gather_coo(const T* grad, const I* index, const int64_t* arg, const int64_t* count, T* out, int64_t B,
                       int64_t E, int64_t G, int64_t F, ReduceKind reduce, cudaStream_t stream) {
  if (B * E * F == 0) return cudaSuccess;
  gather_coo_kernel<T, I><<<blocks_for(B * E * F), kThreads, 0, stream>>>(grad, index, arg, count, out, B, E, G, F,
                                                                         static_cast<int>(reduce));
  return cudaGetLastError();
}

template cudaError_t count_index<int32_t>(const int32_t*, int64_t*, int64_t, cudaStream_t);
template cudaError_t count_index<int64_t>(const int64_t*, int64_t*, int64_t, cudaStream_t);

#define GRAPHEQUI_INSTANTIATE_SCATTER(T, I)                                                                      \
  template cudaError_t scatter_sum<T, I>(const T*, const I*, T*, int64_t*, int64_t, int64_t, int64_t, int64_t, \
                                         bool, cudaStream_t);
#define GRAPHEQUI_INSTANTIATE_GATHER(T, I)                                                                     \
  template cudaError_t gather_coo<T, I>(const T*, const I*, const int64_t*, const int64_t*, T*, int64_t,     \
                                        int64_t, int64_t, int64_t, ReduceKind, cudaStream_t);

#define GRAPHEQUI_INSTANTIATE_COO_ALL(MACRO, T) \
  MACRO(T, int32_t)                             \
  MACRO(T, int64_t)

GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_SCATTER, float)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_SCATTER, double)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_SCATTER, int32_t)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_SCATTER, int64_t)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, float)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, double)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, __half)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, __nv_bfloat16)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, int32_t)
GRAPHEQUI_INSTANTIATE_COO_ALL(GRAPHEQUI_INSTANTIATE_GATHER, int64_t)

}  // namespace cuda
}  // namespace graphequi

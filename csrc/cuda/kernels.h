// Launchers of graphequi's CUDA kernels. Only raw pointers, sizes and a
// stream cross this boundary, so the .cu files need nothing but the CUDA
// toolkit (tests compile them with plain `nvcc -c` on machines without a GPU
// or a CUDA build of torch); the ATen glue lives in reduce_cuda.cpp.
//
// Layout (see csrc/graphequi.cpp): src/grad [B, E, F] contiguous, index [E],
// ptr [G + 1], arg [B, G, F] int64 (winning row or -1). All offsets are
// int64, so tensors with more than 2^31 elements are safe.
#pragma once
#include <cuda_runtime_api.h>
#include <cstdint>

namespace graphequi {
namespace cuda {

enum class ReduceKind : int { Sum = 0, Mean = 1, Min = 2, Max = 3 };

// CSR segment sum/mean, warp-cooperative (no atomics, deterministic).
// T in {float, double, __half, __nv_bfloat16, int32_t, int64_t}; I in {int32_t, int64_t}.
template <typename T, typename I>
cudaError_t segment_reduce(const T* src, const I* ptr, T* out, int64_t B, int64_t E, int64_t G, int64_t F,
                           ReduceKind reduce, cudaStream_t stream);

// CSR segment min/max with the winning row; ties go to the lowest row, NaN wins.
template <typename T, typename I>
cudaError_t segment_arg(const T* src, const I* ptr, T* out, int64_t* arg, int64_t B, int64_t E, int64_t G,
                        int64_t F, bool is_max, cudaStream_t stream);

// COO sum/mean with atomics into a caller-zeroed `out` (and `count` [G] int64,
// zeroed, for mean). T in {float, double, int32_t, int64_t}: half types are
// accumulated in float by the caller.
template <typename T, typename I>
cudaError_t scatter_sum(const T* src, const I* index, T* out, int64_t* count, int64_t B, int64_t E, int64_t G,
                        int64_t F, bool mean, cudaStream_t stream);

// Adjoint of segment_reduce / segment_arg: out [B, E, F] from grad [B, G, F].
template <typename T, typename I>
cudaError_t gather_csr(const T* grad, const I* ptr, const int64_t* arg, T* out, int64_t B, int64_t E, int64_t G,
                       int64_t F, ReduceKind reduce, cudaStream_t stream);

// Adjoint of the COO reductions; `count` [G] is needed for mean only.
template <typename T, typename I>
cudaError_t gather_coo(const T* grad, const I* index, const int64_t* arg, const int64_t* count, T* out, int64_t B,
                       int64_t E, int64_t G, int64_t F, ReduceKind reduce, cudaStream_t stream);

// CSR gather-reduce: out [G, F] = reduce over k in [ptr[g], ptr[g+1]) of
// value[k] * x[col[k]] (value may be null: 1). For min/max, arg [G, F] (may
// be null) receives the winning edge (lowest on ties, NaN wins) or -1.
template <typename T, typename I>
cudaError_t spmm(const I* ptr, const I* col, const T* x, const T* value, T* out, int64_t* arg, int64_t G, int64_t F,
                 ReduceKind reduce, cudaStream_t stream);

// Gradient of spmm sum/mean w.r.t. value: out [E], out[k] = <grad[row(k)], x[col[k]]>.
template <typename T, typename I>
cudaError_t spmm_value_grad(const I* ptr, const I* col, const T* grad, const T* x, T* out, int64_t G, int64_t F,
                            bool mean, cudaStream_t stream);

// A value per edge and feature (sum/mean): out [G, F] = sum over k of
// value[vrow(k)] * x[col[k]] elementwise, vrow(k) = value_perm[k] (may be null: k).
template <typename T, typename I>
cudaError_t spmm_feature(const I* ptr, const I* col, const T* x, const T* value, const int64_t* value_perm, T* out,
                         int64_t G, int64_t F, bool mean, cudaStream_t stream);

// Gradient of spmm_feature w.r.t. value: out [E, F], out[k] = grad[row(k)] * x[col[k]].
template <typename T, typename I>
cudaError_t spmm_feature_value_grad(const I* ptr, const I* col, const T* grad, const T* x, T* out, int64_t G,
                                    int64_t F, bool mean, cudaStream_t stream);

// Group sizes of an index: count[index[e]] += 1 (count zeroed by the caller).
template <typename I>
cudaError_t count_index(const I* index, int64_t* count, int64_t E, cudaStream_t stream);

}  // namespace cuda
}  // namespace graphequi

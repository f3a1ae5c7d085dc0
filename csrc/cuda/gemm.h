// The CUDA GEMM as host C++ sees it (no CUDA types, so g++-compiled bindings and the conv
// kernels' host code include it). Kernels in gemm.cu.
//
// C[b] := alpha * op(A[b]) @ op(B[b]) + beta * C[b], then C[b][i, j] += bias[j] and
// C = max(C, 0) if relu, for b < batch. op(X) is X or X^T as trans_x says.
//   op(A) (M, K): A stored (M, K), or (K, M) when trans_a, rows lda elements apart
//   op(B) (K, N): B stored (K, N), or (N, K) when trans_b, rows ldb elements apart
//   C     (M, N): rows ldc elements apart
// Every matrix has unit stride along its rows. stride_x is the element distance between
// batch items (0 = the same matrix for every b); C's batch items must not overlap each
// other, A or B. beta == 0 writes C without reading it (it may hold NaN or garbage);
// K == 0 gives beta * C (+ bias, relu). The sum over K runs in one fixed order, so a call
// gives the same bits every run.
#pragma once
#include <cstdint>

#include "cuda/dtype.h"

namespace dlcore::cuda {

struct GemmDesc {
  DType dtype;  // f32 or f64, for A, B, C and bias alike
  bool trans_a, trans_b;
  int64_t M, N, K;
  double alpha, beta;  // cast to the element type, as the CPU gemm does
  const void* A; int64_t lda; int64_t stride_a;  // stride_a: elements between batch items (0 = broadcast)
  const void* B; int64_t ldb; int64_t stride_b;
  void* C;       int64_t ldc; int64_t stride_c;
  int64_t batch;     // >= 1 (0 does nothing)
  const void* bias;  // (N,) or nullptr, added per column after alpha/beta
  bool relu;
};

// Launches on current_stream() of the current device; validates d and throws
// std::invalid_argument naming "gemm" and the values on bad arguments. Returns once the
// kernel is queued (nothing to do for M, N or batch == 0).
void gemm(const GemmDesc& d);

// The block tile edges gemm can use: 128 (float32 only) and 64 (both dtypes). gemm picks
// one by size; this runs `tile` (0 = gemm's own choice) so tests reach every kernel.
void gemm_with_tile(const GemmDesc& d, int tile);

}  // namespace dlcore::cuda

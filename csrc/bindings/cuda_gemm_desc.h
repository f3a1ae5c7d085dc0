// The GemmDesc of a GEMM binding's raw arguments (device pointers as Python ints, sizes and
// strides in elements): one place for _C.cuda.gemm and _C.cuda.gemm_tc. CUDA builds only.
#pragma once
#include <cstdint>

#include "cuda/gemm.h"

namespace dlcore::bind {

inline cuda::GemmDesc gemm_desc(cuda::DType dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                double alpha, double beta, uintptr_t A, int64_t lda, int64_t stride_a, uintptr_t B,
                                int64_t ldb, int64_t stride_b, uintptr_t C, int64_t ldc, int64_t stride_c,
                                int64_t batch, uintptr_t bias, bool relu) {
  cuda::GemmDesc d;
  d.dtype = dtype;
  d.trans_a = trans_a;
  d.trans_b = trans_b;
  d.M = M;
  d.N = N;
  d.K = K;
  d.alpha = alpha;
  d.beta = beta;
  d.A = reinterpret_cast<const void*>(A);  // (batch | 1, M, K) or (.., K, M) when trans_a
  d.lda = lda;
  d.stride_a = stride_a;
  d.B = reinterpret_cast<const void*>(B);  // (batch | 1, K, N) or (.., N, K) when trans_b
  d.ldb = ldb;
  d.stride_b = stride_b;
  d.C = reinterpret_cast<void*>(C);  // (batch, M, N), row stride ldc
  d.ldc = ldc;
  d.stride_c = stride_c;
  d.batch = batch;
  d.bias = reinterpret_cast<const void*>(bias);  // (N,) or nullptr
  d.relu = relu;
  return d;
}

}  // namespace dlcore::bind

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
// K == 0 gives beta * C (+ bias, relu). The sum over K runs in one fixed order for a given
// kernel, split count and device (split-K: each K range in order, then the ranges' sums in
// range order; no atomics), so a call gives the same bits every run.
#pragma once
#include <cstdint>
#include <vector>

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
// kernels are queued (nothing to do for M, N or batch == 0). Split-K takes its partial sums'
// scratch from allocate() (runtime.h), so it may throw OutOfMemory.
void gemm(const GemmDesc& d);

// Throws std::invalid_argument "<op>: ..." unless d's sizes, leading dimensions, batch strides
// and pointers (non-null where read, aligned to the dtype) are consistent. The dtype itself is
// each caller's to check. Shared by gemm and gemm_tc.
void check_gemm_desc(const GemmDesc& d, const char* op);

// The kernels gemm can run, each forceable by its code (the `tile` argument below). One list
// drives dispatch, the binding (_C.cuda.gemm_variants), the tests and bench/bench_cuda_gemm.py.
//   tile  name                 dtypes  algorithm (gemm.cu has the details)
//   64    staged_64x64x16      f32 f64 loads staged through registers, 4 x 4 outputs a thread
//   128   staged_128x128x8     f32     loads staged through registers, 8 x 8 outputs a thread
//   1     cp_async_128x128x16  f32     double-buffered cp.async pipeline, 8 x 8 outputs a thread
//   2     cp_async_128x256x8   f32     double-buffered cp.async pipeline, 8 x 16 outputs a thread
//   3     cp_async_64x64x16    f32     double-buffered cp.async pipeline, 4 x 4 outputs a thread
// The cp.async kernels also split K (`splits` ranges summed by a second kernel in a fixed order).
struct GemmVariant {
  int tile;          // the code gemm_with_tile takes
  const char* name;  // as in the table above
  bool float64;      // whether it runs float64 (all run float32)
  bool split_k;      // whether it takes splits > 1
};
const std::vector<GemmVariant>& gemm_variants();

// gemm with the kernel forced: `tile` one of the codes above (0 = gemm's own choice, the
// rule at the dispatch in gemm.cu) and `splits` the number of K ranges for a cp.async kernel
// (0 = the rule's count for that kernel, 1 = no split-K; at most 64; ranges left empty by a
// small K are dropped). So tests and benchmarks reach every kernel; everything else calls gemm.
void gemm_with_tile(const GemmDesc& d, int tile, int splits = 0);

// What gemm runs for a problem of this dtype and shape on the current device (the rule):
// the kernel's tile code and its K ranges (1 = no split-K). For benchmarks and tests.
struct GemmChoice {
  int tile;
  int64_t splits;
};
GemmChoice gemm_choice(DType dtype, int64_t M, int64_t N, int64_t K, int64_t batch);

}  // namespace dlcore::cuda

// The Hopper tensor-core GEMM (wgmma + TMA, sm_90a) as host C++ sees it (no CUDA types, so
// g++-compiled code can include it). Kernels in gemm_wgmma.cu; gemm_tc.cu is the only caller:
// it converts the user's operands into the layout below and picks this kernel by its rule.
//
// C[b] := alpha * A[b] @ B[b]^T + beta * C[b], then C += bias (per column) and C = max(C, 0),
// where A[b] is (M, K) and B[b] is (N, K), both K-contiguous ("TN") with rows and batch items
// 16-byte aligned (the TMA's rule), their elements BF16 or FP32 (TF32 mode: the tensor cores
// read the top 19 bits of each FP32, i.e. truncate it to TF32), and the sums in FP32. C is
// row-major FP32 (ldc, stride_c).
#pragma once

#include <cstdint>

namespace dlcore::cuda {

// One operand as the TMA reads it: item i, row r, depth k at ptr[i * stride + r * ld + k].
struct WgmmaOperand {
  const void* ptr;  // 16-byte aligned
  int64_t ld;       // elements between rows; ld * element bytes a multiple of 16
  int64_t stride;   // elements between batch items, likewise (ignored when items == 1)
  int64_t items;    // 1 (one matrix for every batch item) or the batch
  int64_t depth;    // K, or more when the rows are zero-padded (the TMA reads zeros past it)
};

struct WgmmaGemm {
  bool bf16;                 // element: BF16 (true) or FP32 read as TF32 (false)
  bool a_f32;                // BF16 only: A in FP32, rounded to BF16 by the kernel (no pass over A)
  int64_t M, N, K;
  WgmmaOperand A, B;         // A (M rows), B (N rows)
  float* C;                  // (batch, M, ldc) with stride_c between items
  int64_t ldc, stride_c, batch;
  float alpha, beta;         // beta == 0 never reads C
  const float* bias;         // (N,) or nullptr
  bool relu;
};

// Whether `device` is compute capability 9.0 (H100, H200), the only one the sm_90a code runs
// on. Defined only where this file's kernels are built (DLCORE_WITH_WGMMA: the arch list names
// 90); gemm_tc checks both (wgmma_here). Other GPUs keep gemm_tc's mma.sync kernels.
bool gemm_wgmma_available(int device);

// Block tile 128 x kWgmmaBN over (M, N); gemm_tc's rule compares tile counts against the SMs.
constexpr int kWgmmaBM = 128, kWgmmaBN = 256;

// Whether an FP32 or BF16 operand (element bytes es) meets the TMA's alignment in place.
bool wgmma_operand_aligned(const void* ptr, int64_t ld, int64_t stride, int es);

// Queues the GEMM on current_stream(). Throws std::invalid_argument naming "gemm_tc" when the
// operands break the layout above or exceed the TMA's limits (dimensions >= 2^31), and
// std::runtime_error when the device cannot run it. M, N, K and batch > 0.
void gemm_wgmma(const WgmmaGemm& g);

}  // namespace dlcore::cuda

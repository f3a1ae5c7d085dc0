// The GEMM micro-kernel table: which register tile the driver (csrc/cpu/gemm/gemm.cpp) uses in
// this ISA copy, one row per (ISA, element type). The contract every micro-kernel meets is in
// csrc/cpu/gemm/README.md; adding one is a new file *_<isa>.cpp plus its row here.
//
// A row names the kernel function and its tile MR x NR; the driver packs A into (kc, MR)
// panels and B into (kc, NR) panels for it and sizes its cache blocks from NR (GemmBlocks).
// The generic (SSE2) copy uses the portable C++ tile below, which GCC vectorises.
#pragma once
#include <cstdint>

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

// C[:m, :n] := alpha * a * b + beta * C[:m, :n]; a (kc, MR) and b (kc, NR) packed, zero-padded.
// Then, before the store: C[i, j] += bias[j] when bias (the tile's first column) is not null,
// then C = C <= 0 ? 0 : C when relu (the GEMM's fused epilogue, on the last depth block only).
template <class T>
using GemmUkernel = void(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t m, int64_t n,
                         T alpha, T beta, const T* bias, bool relu);

// The portable tile: a fixed-size accumulator array that GCC keeps in vector registers.
// MR = 6 rows x NR = two 16-byte vectors (8 floats, 4 doubles): 12 accumulators + 2 B vectors
// + 1 broadcast fit the 16 SSE registers.
template <class T, int MR, int NR>
void gemm_ukernel_portable(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                           int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* __restrict bias,
                           bool relu) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
    // Without these two hints GCC vectorises the double tile across p with shuffles
    // (measured 6x slower); with them the p-loop body is MR broadcasts and MR * NR / lanes FMAs.
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict row = c + i * ldc;  // (n)
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j];
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
    }
    if (bias)
      for (int64_t j = 0; j < n; ++j) row[j] += bias[j];
    if (relu)
      for (int64_t j = 0; j < n; ++j) row[j] = row[j] <= T(0) ? T(0) : row[j];  // NaN stays NaN
  }
}

template <class T>
struct GemmTile;

// The intrinsic micro-kernels, each defined in its own file (csrc/cpu/gemm/<name>.cpp).
GemmUkernel<float> sgemm_ukernel_6x64_avx512, sgemm_ukernel_6x16_avx2;
GemmUkernel<double> dgemm_ukernel_6x32_avx512, dgemm_ukernel_6x8_avx2;

#define DLCORE_GEMM_UKERNEL(T, mr, nr, ...)                \
  template <>                                              \
  struct GemmTile<T> {                                     \
    static constexpr int MR = mr, NR = nr;                 \
    static constexpr GemmUkernel<T>* kernel = &__VA_ARGS__;    \
  };

#if defined(__AVX512F__)
DLCORE_GEMM_UKERNEL(float, 6, 64, sgemm_ukernel_6x64_avx512)
DLCORE_GEMM_UKERNEL(double, 6, 32, dgemm_ukernel_6x32_avx512)
#elif defined(__AVX2__)
DLCORE_GEMM_UKERNEL(float, 6, 16, sgemm_ukernel_6x16_avx2)
DLCORE_GEMM_UKERNEL(double, 6, 8, dgemm_ukernel_6x8_avx2)
#else
DLCORE_GEMM_UKERNEL(float, 6, 8, gemm_ukernel_portable<float, 6, 8>)
DLCORE_GEMM_UKERNEL(double, 6, 4, gemm_ukernel_portable<double, 6, 4>)
#endif

#undef DLCORE_GEMM_UKERNEL

}  // namespace dlcore::cpu::DLCORE_ISA

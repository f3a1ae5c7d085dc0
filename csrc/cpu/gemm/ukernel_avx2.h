// The AVX2+FMA register tile shared by the sgemm/dgemm AVX2 micro-kernels: one template over
// the element type, the rows MR and the vectors per row NV (NR = NV * lanes). Included only
// from *_avx2.cpp files (compiled with the AVX2 flags, see cmake/isa.cmake).
//
// Contract (csrc/cpu/gemm/README.md): C[:m, :n] := alpha * a * b + beta * C[:m, :n], where a is
// a packed A panel (kc, MR) and b a packed B panel (kc, NR), both zero-padded to the full
// tile and b 32-byte aligned; m <= MR, n <= NR. beta == 0 never reads C. Then the epilogue in
// registers, before the one store: + bias[j] when bias is not null, then ReLU when relu.
// Edges: only the first m rows and ceil(n / lanes) vectors are computed (an instantiation of the
// tile for that size); columns past n are masked off the loads and stores (vmaskmov), so no byte
// outside C[:m, :n] is touched.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/gemm/ymm_ops.h"

namespace dlcore::cpu::DLCORE_ISA {

template <class T>
struct Ymm;

template <>
struct Ymm<float> : YmmOps<float> {
  // x <= 0 ? 0 : x, so NaN stays NaN and -0 becomes +0 (the scalar epilogue's rule)
  static V relu(V x) { return _mm256_blendv_ps(x, zero(), _mm256_cmp_ps(x, zero(), _CMP_LE_OQ)); }
  // Lane l is active when l < left (a lane's mask is its sign bit).
  static __m256i mask(int64_t left) {
    const int64_t k = left < 0 ? 0 : left > kLanes ? kLanes : left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V maskload(const float* p, __m256i k) { return _mm256_maskload_ps(p, k); }
  static void maskstore(float* p, __m256i k, V v) { _mm256_maskstore_ps(p, k, v); }
};

template <>
struct Ymm<double> : YmmOps<double> {
  static V relu(V x) { return _mm256_blendv_pd(x, zero(), _mm256_cmp_pd(x, zero(), _CMP_LE_OQ)); }
  static __m256i mask(int64_t left) {
    const int64_t k = left < 0 ? 0 : left > kLanes ? kLanes : left;
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V maskload(const double* p, __m256i k) { return _mm256_maskload_pd(p, k); }
  static void maskstore(double* p, __m256i k, V v) { _mm256_maskstore_pd(p, k, v); }
};

// ROWS (<= MR) rows and VECS (<= NV) vectors of the MR x (NV * lanes) tile, over A packed or in
// place (AOperand: PackedA / StridedA, ukernels.h) and B packed NV vectors wide or read in place
// (BOperand: PackedB / StridedB);
// MR * NV accumulators + NV B vectors + 1 broadcast <= 16 ymm.
template <class T, int MR, int NV, int ROWS, int VECS, class AOperand, class BOperand>
inline void gemm_ukernel_avx2_part(int64_t kc, AOperand a, BOperand bo,
                              T* __restrict c, int64_t ldc, int64_t n, T alpha, T beta,
                              const T* __restrict bias, bool relu) {
  using Y = Ymm<T>;
  using V = typename Y::V;
  constexpr int L = Y::kLanes, NR = NV * L;
  static_assert(MR * NV + NV + 1 <= 16, "the tile must fit the 16 ymm registers");
  V acc[ROWS][VECS];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < VECS; ++v) acc[i][v] = Y::zero();
  // The tile's lines of C, fetched before the FMAs (see ukernel_avx512.h). AVX2 copy on this
  // Zen 4, 1 thread, GFLOP/s: 1024^3 73-85 -> 94, 1600x1024x128 NT 70-79 -> 86-87.
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < VECS; v += 64 / (L * static_cast<int>(sizeof(T))))
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * L), _MM_HINT_T0);
  const auto rows = a.template rows<ROWS, MR>();  // where row i's depth 0 is
  const T* __restrict b = bo.b;  // row p of the tile's B at b + p * b_step
  const int64_t b_step = bo.template step<NR>();
  for (int64_t p = 0, off = 0; p < kc; ++p, off += rows.step, b += b_step) {
    V bv[VECS];  // row p of the B panel
#pragma GCC unroll 4
    for (int v = 0; v < VECS; ++v) bv[v] = BOperand::kAligned ? Y::load(b + v * L) : Y::loadu(b + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const V ai = Y::set1(rows.row[i][off]);
#pragma GCC unroll 4
      for (int v = 0; v < VECS; ++v) acc[i][v] = Y::fmadd(ai, bv[v], acc[i][v]);
    }
  }
  __m256i mask[VECS];  // the columns of each vector that lie inside n
#pragma GCC unroll 4
  for (int v = 0; v < VECS; ++v) mask[v] = Y::mask(n - v * L);
  const V va = Y::set1(alpha), vb = Y::set1(beta);
  V bias_v[VECS];  // the tile's columns of the bias, or zeros
#pragma GCC unroll 4
  for (int v = 0; v < VECS; ++v) bias_v[v] = bias ? Y::maskload(bias + v * L, mask[v]) : Y::zero();
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    T* row = c + i * ldc;  // (n)
#pragma GCC unroll 4
    for (int v = 0; v < VECS; ++v) {
      V r = Y::mul(va, acc[i][v]);
      if (beta != T(0)) r = Y::fmadd(vb, Y::maskload(row + v * L, mask[v]), r);
      if (bias) r = Y::add(r, bias_v[v]);
      if (relu) r = Y::relu(r);
      Y::maskstore(row + v * L, mask[v], r);
    }
  }
}

// The tile on the first m rows and n columns (1 <= m <= MR, 1 <= n <= NR) of the panels: an
// edge tile runs the instantiation for its m rows and its ceil(n / lanes) vectors (the panel
// strides stay MR and NR), so it costs what it covers: C of 20 rows is 6 + 6 + 6 + 2 rows of
// FMAs, not 4 x 6 (an RNN step of batch 20), and a 10-column edge one vector, not all NV.
template <class T, int MR, int NV, int ROWS = MR, int VECS = NV, class AOperand, class BOperand>
inline void gemm_ukernel_avx2(int64_t kc, AOperand a, BOperand b, T* __restrict c,
                              int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias, bool relu) {
  if constexpr (ROWS > 1) {
    if (m < ROWS)
      return gemm_ukernel_avx2<T, MR, NV, ROWS - 1, VECS>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  }
  if constexpr (VECS > 1) {
    constexpr int64_t kLanes = Ymm<T>::kLanes;
    if (n <= (VECS - 1) * kLanes)
      return gemm_ukernel_avx2<T, MR, NV, ROWS, VECS - 1>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  }
  gemm_ukernel_avx2_part<T, MR, NV, ROWS, VECS>(kc, a, b, c, ldc, n, alpha, beta, bias, relu);
}

}  // namespace dlcore::cpu::DLCORE_ISA

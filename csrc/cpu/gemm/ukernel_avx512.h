// The AVX-512 register tile shared by the sgemm/dgemm AVX-512 micro-kernels: one template
// over the element type, the rows MR and the vectors per row NV (NR = NV * lanes). Included
// only from *_avx512.cpp files (compiled with the AVX-512 flags, see cmake/isa.cmake); each
// of those files instantiates one tile under its own name.
//
// Contract (csrc/cpu/gemm/README.md): C[:m, :n] := alpha * a * b + beta * C[:m, :n], where a is
// a packed A panel (kc, MR) and b a packed B panel (kc, NR), both zero-padded to the full
// tile and b 64-byte aligned (or, for the in-place twins, A or B read where they lie: StridedA,
// StridedB in ukernels.h); m <= MR, n <= NR. beta == 0 never reads C. Then the epilogue in
// registers, before the one store: + bias[j] when bias is not null, then ReLU when relu.
// Edges: only the first m rows and ceil(n / lanes) vectors are computed (an instantiation of the
// tile for that size), the last one as a half vector (ymm) when the columns end in its first
// half; columns past n inside the last vector are masked off the loads and stores, so no byte
// outside C[:m, :n] is touched.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/gemm/ymm_ops.h"

namespace dlcore::cpu::DLCORE_ISA {

template <class T>
struct Zmm;

template <>
struct Zmm<float> {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  // x <= 0 ? 0 : x, so NaN stays NaN and -0 becomes +0 (the scalar epilogue's rule)
  static V relu(V x) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero(), _CMP_LE_OQ), x, zero()); }
  static V maskz_loadu(Mask k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void mask_storeu(float* p, Mask k, V v) { _mm512_mask_storeu_ps(p, k, v); }
};

template <>
struct Zmm<double> {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_load_pd(p); }
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V relu(V x) { return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, zero(), _CMP_LE_OQ), x, zero()); }
  static V maskz_loadu(Mask k, const double* p) { return _mm512_maskz_loadu_pd(k, p); }
  static void mask_storeu(double* p, Mask k, V v) { _mm512_mask_storeu_pd(p, k, v); }
};

// The half vector (ymm) of the same element type: the last vector of an edge tile whose
// columns fill at most half of it. Zen 4 runs a zmm FMA as two 256-bit halves, so a ymm FMA
// costs half of one, and N = 120 (LeNet's fc, 7.5 vectors) computes 120 lanes, not 128.
template <class T>
struct Ymm;

template <>
struct Ymm<float> : YmmOps<float> {
  using Mask = __mmask8;
  static V low(__m512 x) { return _mm512_castps512_ps256(x); }
  static V relu(V x) { return _mm256_mask_blend_ps(_mm256_cmp_ps_mask(x, zero(), _CMP_LE_OQ), x, zero()); }
  static V maskz_loadu(Mask k, const float* p) { return _mm256_maskz_loadu_ps(k, p); }
  static void mask_storeu(float* p, Mask k, V v) { _mm256_mask_storeu_ps(p, k, v); }
};

// GCC 12 implements _mm512_castpd512_pd256 with an _mm256_undefined_pd() merge source, which
// -W(maybe-)uninitialized reports once inlined into the tile: a false positive (as in
// cpu/transpose16.h).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
template <>
struct Ymm<double> : YmmOps<double> {
  using Mask = __mmask8;
  static V low(__m512d x) { return _mm512_castpd512_pd256(x); }
  static V relu(V x) { return _mm256_mask_blend_pd(_mm256_cmp_pd_mask(x, zero(), _CMP_LE_OQ), x, zero()); }
  static V maskz_loadu(Mask k, const double* p) { return _mm256_maskz_loadu_pd(k, p); }
  static void mask_storeu(double* p, Mask k, V v) { _mm256_mask_storeu_pd(p, k, v); }
};

// ROWS (<= MR) rows and VECS (<= NV) vectors of the MR x (NV * lanes) tile, over A either
// packed (a (kc, MR) panel) or read in place (StridedA: element (i, p) at a[i * a.row + p *
// a.depth]) and B either packed (a (kc, NR) panel, aligned loads) or read in place (StridedB:
// row p at b + p * ldb, unaligned loads). The accumulators are a fixed array indexed
// only by compile-time-unrolled loops, so GCC keeps all of them in zmm registers
// (MR * NV + NV + 1 <= 32). With HALF, the last of the VECS vectors is a ymm (Ymm<T>): the
// tile's columns end in its first half.
template <class T, int MR, int NV, int ROWS, int VECS, bool HALF, class AOperand, class BOperand>
inline void gemm_ukernel_avx512_part(int64_t kc, AOperand a, BOperand bo,
                                T* __restrict c, int64_t ldc, int64_t n, T alpha, T beta,
                                const T* __restrict bias, bool relu) {
  using Z = Zmm<T>;
  using Y = Ymm<T>;
  using V = typename Z::V;
  using H = typename Y::V;
  constexpr int L = Z::kLanes, NR = NV * L;
  constexpr int FULL = HALF ? VECS - 1 : VECS;  // zmm vectors; then the ymm one with HALF
  static_assert(MR * NV + NV + 1 <= 32, "the tile must fit the 32 zmm registers");
  V acc[ROWS][FULL > 0 ? FULL : 1];
  H acch[ROWS];
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < FULL; ++v) acc[i][v] = Z::zero();
    if constexpr (HALF) acch[i] = Y::zero();
  }
  // The tile's lines of C are fetched at the start, so their misses hide behind the FMAs: a
  // depth block after the first reads C back at the end (C of a large GEMM lives in L3: 1
  // thread, 2048^3 96-103 -> 106-109 GFLOP/s, 1024^3 97-105 -> 106-108), and the first one
  // writes it, which misses the same way when K is small (3200x2048x64 NT 77-96 -> 87-103,
  // 1600x1024x128 NT 96-103 -> 101-109; three interleaved runs).
  {
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < VECS; ++v) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + v * L), _MM_HINT_T0);
  }
  const auto rows = a.template rows<ROWS, MR>();  // where row i's depth 0 is
  const T* __restrict b = bo.b;  // row p of the tile's B at b + p * b_step
  const int64_t b_step = bo.template step<NR>();
  for (int64_t p = 0, off = 0; p < kc; ++p, off += rows.step, b += b_step) {
    V bv[FULL > 0 ? FULL : 1];  // row p of the B panel
#pragma GCC unroll 8
    for (int v = 0; v < FULL; ++v) bv[v] = BOperand::kAligned ? Z::load(b + v * L) : Z::loadu(b + v * L);
    H bh = HALF ? (BOperand::kAligned ? Y::load(b + FULL * L) : Y::loadu(b + FULL * L)) : Y::zero();
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const V ai = Z::set1(rows.row[i][off]);
#pragma GCC unroll 8
      for (int v = 0; v < FULL; ++v) acc[i][v] = Z::fmadd(ai, bv[v], acc[i][v]);
      if constexpr (HALF) acch[i] = Y::fmadd(Y::low(ai), bh, acch[i]);
    }
  }
  typename Z::Mask mask[FULL > 0 ? FULL : 1];  // the columns of each vector that lie inside n
#pragma GCC unroll 8
  for (int v = 0; v < FULL; ++v) {
    const int64_t left = n - v * L;
    mask[v] = left >= L ? typename Z::Mask(~0u) : left > 0 ? typename Z::Mask((1u << left) - 1) : typename Z::Mask(0);
  }
  const int64_t left_h = n - FULL * L;  // columns in the half vector (HALF: 1 .. L / 2)
  const typename Y::Mask mask_h = HALF ? typename Y::Mask((1u << left_h) - 1) : typename Y::Mask(0);
  const V va = Z::set1(alpha), vb = Z::set1(beta);
  V bias_v[FULL > 0 ? FULL : 1];  // the tile's columns of the bias, or zeros
#pragma GCC unroll 8
  for (int v = 0; v < FULL; ++v) bias_v[v] = bias ? Z::maskz_loadu(mask[v], bias + v * L) : Z::zero();
  const H bias_h = HALF && bias ? Y::maskz_loadu(mask_h, bias + FULL * L) : Y::zero();
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i) {
    T* row = c + i * ldc;  // (n)
#pragma GCC unroll 8
    for (int v = 0; v < FULL; ++v) {
      V r = Z::mul(va, acc[i][v]);
      if (beta != T(0)) r = Z::fmadd(vb, Z::maskz_loadu(mask[v], row + v * L), r);
      if (bias) r = Z::add(r, bias_v[v]);
      if (relu) r = Z::relu(r);
      Z::mask_storeu(row + v * L, mask[v], r);
    }
    if constexpr (HALF) {
      H r = Y::mul(Y::low(va), acch[i]);
      if (beta != T(0)) r = Y::fmadd(Y::low(vb), Y::maskz_loadu(mask_h, row + FULL * L), r);
      if (bias) r = Y::add(r, bias_h);
      if (relu) r = Y::relu(r);
      Y::mask_storeu(row + FULL * L, mask_h, r);
    }
  }
}

// The tile on the first m rows and n columns (1 <= m <= MR, 1 <= n <= NR) of the panels: an
// edge tile runs the instantiation for its m rows and its ceil(n / lanes) vectors (the panel
// strides stay MR and NR), so it costs what it covers: C of 20 rows is 6 + 6 + 6 + 2 rows of
// FMAs, not 4 x 6 (an RNN step of batch 20), and a 10-column edge one vector, not all NV.
// AOperand is PackedA<T> or StridedA<T>, BOperand PackedB<T> or StridedB<T> (ukernels.h).
template <class T, int MR, int NV, int ROWS = MR, int VECS = NV, class AOperand, class BOperand>
inline void gemm_ukernel_avx512(int64_t kc, AOperand a, BOperand b, T* __restrict c,
                                int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias, bool relu) {
  if constexpr (ROWS > 1) {
    if (m < ROWS)
      return gemm_ukernel_avx512<T, MR, NV, ROWS - 1, VECS>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  }
  constexpr int64_t kLanes = Zmm<T>::kLanes;
  if constexpr (VECS > 1) {
    if (n <= (VECS - 1) * kLanes)
      return gemm_ukernel_avx512<T, MR, NV, ROWS, VECS - 1>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  }
  // Columns ending in the first half of the last vector: that vector runs as a ymm. Only
  // beside full vectors: a one-vector tile is bound by its A broadcasts, not its FMAs, and
  // measured 2-5 % slower so (3200x65x512: the 1-column edge tile).
  if constexpr (VECS > 1) {
    if (n <= (VECS - 1) * kLanes + kLanes / 2)
      return gemm_ukernel_avx512_part<T, MR, NV, ROWS, VECS, true>(kc, a, b, c, ldc, n, alpha, beta, bias, relu);
  }
  gemm_ukernel_avx512_part<T, MR, NV, ROWS, VECS, false>(kc, a, b, c, ldc, n, alpha, beta, bias, relu);
}

// The tile on the first m rows of all NR columns (n == NR): the in-place-B twins read whole
// rows of B, so only the row count varies (no edge-column instantiations to compile).
template <class T, int MR, int NV, int ROWS = MR, class AOperand, class BOperand>
inline void gemm_ukernel_avx512_whole(int64_t kc, AOperand a, BOperand b, T* __restrict c, int64_t ldc, int64_t m,
                                      int64_t n, T alpha, T beta, const T* bias, bool relu) {
  if constexpr (ROWS > 1) {
    if (m < ROWS)
      return gemm_ukernel_avx512_whole<T, MR, NV, ROWS - 1>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  }
  gemm_ukernel_avx512_part<T, MR, NV, ROWS, NV, false>(kc, a, b, c, ldc, n, alpha, beta, bias, relu);
}

#pragma GCC diagnostic pop

}  // namespace dlcore::cpu::DLCORE_ISA

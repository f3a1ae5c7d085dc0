// Sixteen dot products at a time, for matrix-vector products read in place (AVX-512, float):
// out lane j := sum_{k < K} w[j * ld + k] x[k], j < 16. Used where a matrix with rows contiguous
// in depth meets a single row: the LSTM forward's batch of one (lstm_fused_avx512.cpp, W_hh's
// gate rows against h_prev) and the GEMM's one-row product with B transposed (gemm.cpp, a Linear
// layer at batch one), where packing would transpose the whole matrix for one use.
//
// Loop: x in registers 128 depths (8 zmm) at a time while the 16 rows stream past, one FMA per
// weight vector into one accumulator per row; the depths past the last 128 in masked steps of
// 16. Row 4a + b is addressed as rows4[a] + b * ld: four base pointers and the stride as index
// registers (a pointer per row spilled them to the stack: a 100-step LSTM forward at H = 256,
// 1.26 vs 1.15 ms). Then a transpose-add tree folds the 16 accumulators into one vector.
// Tested through both callers: tests/kernels/test_rnn_kernels.py (batch-1 cases) and
// tests/kernels/test_gemm_kernels.py (M = 1, B transposed).
#pragma once
// GCC 12 starts several AVX-512 intrinsics from _mm*_undefined_*() and warns at each use (bug
// 105593, see pool_avx512.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

#if defined(__AVX512F__)

// The last two levels of the transpose-add tree: c[k] holds, in each 128-bit lane, partial sums
// of rows 4k .. 4k+3 (one each); lane 4k + j of the result := row 4k + j's four partials summed.
[[gnu::always_inline]] static inline __m512 fold_lane_groups(const __m512 (&c)[4]) {
  // 128-bit lanes (L0 + L2, L1 + L3) of c[0], then of c[1]; the same for c[2], c[3]
  const __m512 e01 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x44), _mm512_shuffle_f32x4(c[0], c[1], 0xEE));
  const __m512 e23 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x44), _mm512_shuffle_f32x4(c[2], c[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_f32x4(e01, e23, 0x88), _mm512_shuffle_f32x4(e01, e23, 0xDD));
}

// Per 128-bit lane: rows 4k .. 4k+3's partial sums, one each, from their accumulators a0 .. a3.
[[gnu::always_inline]] static inline __m512 fold_rows4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 lo = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));  // two each
  const __m512 hi = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  return _mm512_add_ps(_mm512_shuffle_ps(lo, hi, 0x44), _mm512_shuffle_ps(lo, hi, 0xEE));
}

// Lane r := the sum of a[r]'s lanes, for r < 16: a transpose-add tree (30 shuffles, 15 adds).
[[gnu::always_inline]] static inline __m512 lane_sums16(__m512 (&a)[16]) {
  const __m512 c[4] = {fold_rows4(a[0], a[1], a[2], a[3]), fold_rows4(a[4], a[5], a[6], a[7]),
                       fold_rows4(a[8], a[9], a[10], a[11]), fold_rows4(a[12], a[13], a[14], a[15])};
  return fold_lane_groups(c);
}

// dot_rows16 for a row stride of a multiple of 4 KiB, where the 16 rows' lines at one depth all
// fall in one L1 set (8 ways): four rows at a time over the whole depth, their four
// accumulators folded to one vector of per-128-bit-lane partial sums, the four folded at the
// end. 1 thread, GEMM 1xNxK NT, us, 16 rows at a time -> this: 1x512x1024 73 -> 30, 1x512x2048
// 134 -> 56 (NumPy 31 and 57). Off 4 KiB strides the 16 rows measure faster: 1x512x1000 24 us.
[[gnu::always_inline]] static inline __m512 dot_rows16_by4(const float* __restrict w, int64_t ld, int64_t rows,
                                                           int64_t K, const float* __restrict x) {
  __m512 c[4];  // c[a], 128-bit lane l: rows 4a .. 4a+3's sums over lane l's depths
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
    const float* row = w + 4 * a * ld;  // (4, K), row stride ld
    __m512 acc[4];
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) acc[b] = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
      const __mmask16 m = static_cast<__mmask16>(K - k0 >= 16 ? 0xFFFF : (1u << (K - k0)) - 1);
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + k0);
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b)
        if (4 * a + b < rows) acc[b] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row + b * ld + k0), xv, acc[b]);
    }
    c[a] = fold_rows4(acc[0], acc[1], acc[2], acc[3]);
  }
  return fold_lane_groups(c);
}

// Lane j := sum_{k < K} w[j * ld + k] x[k] for j < rows (1 <= rows <= 16), lanes past rows 0.
[[gnu::always_inline]] static inline __m512 dot_rows16(const float* __restrict w, int64_t ld, int64_t rows,
                                                       int64_t K, const float* __restrict x) {
  if (ld % 1024 == 0) return dot_rows16_by4(w, ld, rows, K, x);
  __m512 acc[16];
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
  const int64_t full = rows == 16 ? K / 128 * 128 : 0;  // depths done 128 at a time
  const float* rows4[4] = {w, w + 4 * ld, w + 8 * ld, w + 12 * ld};
  for (int64_t k0 = 0; k0 < full; k0 += 128) {
    __m512 xv[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) xv[v] = _mm512_loadu_ps(x + k0 + 16 * v);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v)
#pragma GCC unroll 4
      for (int a = 0; a < 4; ++a)
#pragma GCC unroll 4
        for (int b = 0; b < 4; ++b)
          acc[4 * a + b] = _mm512_fmadd_ps(_mm512_loadu_ps(rows4[a] + b * ld + k0 + 16 * v), xv[v], acc[4 * a + b]);
  }
  // The rest: 16 depths at a time, masked past K; rows past `rows` skipped.
  for (int64_t k0 = full; k0 < K; k0 += 16) {
    const __mmask16 m = static_cast<__mmask16>(K - k0 >= 16 ? 0xFFFF : (1u << (K - k0)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + k0);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r)
      if (r < rows) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + r * ld + k0), xv, acc[r]);
  }
  return lane_sums16(acc);
}

#endif  // __AVX512F__

}  // namespace dlcore::cpu::DLCORE_ISA

#pragma GCC diagnostic pop

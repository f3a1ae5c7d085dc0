// Block transposes between rows (m, P) and position-major (P, ld): for the direct conv2d
// kernels that keep channels or images in the vector lanes (csrc/cpu/conv/direct_cv.cpp,
// direct_bv.cpp, pointwise.cpp) and the fused LSTM's W_hh pack (csrc/cpu/rnn/
// lstm_fused_avx512.cpp). Included per ISA copy: the AVX-512 float versions use 16 x 16
// register transposes (ld >= 16), the rest are plain loops. Tested through those kernels
// (tests/kernels/test_conv_kernels.py, test_rnn_kernels.py).
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/transpose16.h"

namespace dlcore::cpu::DLCORE_ISA {

// y[l*rs + p] := yb[p*ld + l] (+ bias[l]) for l < m, p < P, then v <= 0 ? 0 : v when relu (NaN
// stays NaN), rs = row_stride (default P): a block of channels (or, for direct_bv.cpp, of
// images, rows C*P apart) from position-major (P, ld) to rows (m, P). Scalar in
// general; AVX-512 float (ld >= 16) transposes 16 x 16 blocks in registers (a scalar scatter
// had cost 15 % of LeNet conv2's forward), and a last block of <= 4 positions as 4 x 4 blocks.
template <class T>
void store_transposed(const T* __restrict yb, int64_t P, int64_t m, const T* bias, bool relu,
                      T* __restrict y, int64_t ld, int64_t row_stride = -1) {
  const int64_t rs = row_stride < 0 ? P : row_stride;
  for (int64_t l = 0; l < m; ++l) {
    const T b = bias ? bias[l] : T(0);
    for (int64_t p = 0; p < P; ++p) {
      const T v = yb[p * ld + l] + b;
      y[l * rs + p] = relu && v <= T(0) ? T(0) : v;
    }
  }
}
// yb[p*ld + l] := g[l*rs + p] for l < m <= 16, p < P, rs = row_stride (default P) (columns
// m .. 15 left as they are, or zeroed by the AVX-512 float version, which writes 16 columns):
// rows (m, P) to position-major, the inverse of store_transposed.
template <class T>
void load_transposed(const T* __restrict g, int64_t P, int64_t m, T* __restrict yb, int64_t ld,
                     int64_t row_stride = -1) {
  const int64_t rs = row_stride < 0 ? P : row_stride;
  for (int64_t l = 0; l < m; ++l)
    for (int64_t p = 0; p < P; ++p) yb[p * ld + l] = g[l * rs + p];
}

#if defined(__AVX512F__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // see cpu/transpose16.h
// The last n <= 4 positions of store_transposed<float>: bias and ReLU on the rows, then 4 x 4
// transposes within each 128-bit lane (8 shuffles instead of a 16 x 16 transpose's 64 on 12
// zero rows): lane group c of o[d] is the n positions of channel 4c + d. LeNet conv2's 100
// positions end in 4: its forward's transposes 9.3 -> 8.4 us a call (64 images, 1 thread).
inline void store_transposed_tail4(const float* __restrict yb, int64_t n, int64_t m, const float* bias, bool relu,
                                   float* __restrict y, int64_t ld, int64_t rs) {
  const __m512 zero = _mm512_setzero_ps();
  const __mmask16 lanes = static_cast<__mmask16>((1u << m) - 1);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(lanes, bias) : zero;
  __m512 r[4];
  for (int i = 0; i < 4; ++i) {
    __m512 v = i < n ? _mm512_add_ps(_mm512_loadu_ps(yb + i * ld), b) : zero;
    if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
    r[i] = v;
  }
  const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
  const __m512 o[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                       _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
  const __mmask8 k = static_cast<__mmask8>((1u << n) - 1);
  for (int64_t d = 0; d < 4 && d < m; ++d) {
    _mm_mask_storeu_ps(y + d * rs, k, _mm512_castps512_ps128(o[d]));
    if (4 + d < m) _mm_mask_storeu_ps(y + (4 + d) * rs, k, _mm512_extractf32x4_ps(o[d], 1));
    if (8 + d < m) _mm_mask_storeu_ps(y + (8 + d) * rs, k, _mm512_extractf32x4_ps(o[d], 2));
    if (12 + d < m) _mm_mask_storeu_ps(y + (12 + d) * rs, k, _mm512_extractf32x4_ps(o[d], 3));
  }
}

template <>
inline void store_transposed<float>(const float* __restrict yb, int64_t P, int64_t m,
                                    const float* bias, bool relu, float* __restrict y,
                                    int64_t ld, int64_t row_stride) {
  const int64_t rs = row_stride < 0 ? P : row_stride;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p0 = 0; p0 < P; p0 += 16) {
    const int64_t n = std::min<int64_t>(16, P - p0);
    if (n <= 4) {
      store_transposed_tail4(yb + p0 * ld, n, m, bias, relu, y + p0, ld, rs);
      break;
    }
    const __mmask16 k = static_cast<__mmask16>((1u << n) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < n ? _mm512_loadu_ps(yb + (p0 + i) * ld) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t l = 0; l < m; ++l) {
      __m512 v = _mm512_add_ps(r[l], _mm512_set1_ps(bias ? bias[l] : 0.0f));
      if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
      _mm512_mask_storeu_ps(y + l * rs + p0, k, v);
    }
  }
}

template <>
inline void load_transposed<float>(const float* __restrict g, int64_t P, int64_t m,
                                   float* __restrict yb, int64_t ld, int64_t row_stride) {
  const int64_t rs = row_stride < 0 ? P : row_stride;
  for (int64_t p0 = 0; p0 < P; p0 += 16) {
    const int64_t n = std::min<int64_t>(16, P - p0);
    const __mmask16 k = static_cast<__mmask16>((1u << n) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < m ? _mm512_maskz_loadu_ps(k, g + i * rs + p0) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t i = 0; i < n; ++i) _mm512_storeu_ps(yb + (p0 + i) * ld, r[i]);
  }
}
#pragma GCC diagnostic pop
#endif

}  // namespace dlcore::cpu::DLCORE_ISA

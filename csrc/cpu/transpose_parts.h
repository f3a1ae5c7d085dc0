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
// had cost 15 % of LeNet conv2's forward).
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
template <>
inline void store_transposed<float>(const float* __restrict yb, int64_t P, int64_t m,
                                    const float* bias, bool relu, float* __restrict y,
                                    int64_t ld, int64_t row_stride) {
  const int64_t rs = row_stride < 0 ? P : row_stride;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p0 = 0; p0 < P; p0 += 16) {
    const int64_t n = std::min<int64_t>(16, P - p0);
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

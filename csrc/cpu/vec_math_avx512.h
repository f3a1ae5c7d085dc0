// exp, sigmoid and tanh on 16 floats at a time (__m512), for kernels whose register tiles feed
// a nonlinearity directly (the fused LSTM step, csrc/cpu/rnn/lstm_fused_avx512.cpp). Included
// only from *_avx512.cpp files. The scalar, auto-vectorised versions for every ISA are in
// vec_math.h; these follow the same math so the two paths agree to a few ulps:
//   exp(x)     n = round(x log2 e), r = x - n ln2 (Cody-Waite split), exp(r) = 1 + r + r^2 P5(r)
//              (Cephes coefficients), times 2^n by vscalefps, which rounds subnormal results
//              once and overflows to +inf. x is clamped to [-104, 89] first (results 0 / +inf
//              beyond), so r stays small; NaN passes the clamp and stays NaN.
//   sigmoid(x) 1 / (1 + exp(-x)): +inf -> 1, -inf -> 0 (exp(-x) = +inf), full relative
//              precision in both tails.
//   tanh(x)    a = |x| < 0.625: a + a^3 P4(a^2); else (1 - e) / (1 + e), e = exp(-2a); then
//              x's sign bit. Both are computed and one is blended in.
// Accuracy: measured by tests/kernels/test_rnn_kernels.py through the LSTM against float64.
#pragma once
#include <immintrin.h>

#include "cpu/vec_math.h"  // the constants and coefficients (vec::kExpP, ...)

namespace dlcore::cpu::DLCORE_ISA::zmm {

#define DLCORE_ZMM_INLINE [[gnu::always_inline]] static inline

DLCORE_ZMM_INLINE __m512 exp(__m512 x) {
  // min / max return their second operand when either is NaN, so NaN survives the clamp.
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(vec::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(vec::kLn2Hi), x);  // n * ln2_hi is exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(vec::kLn2Lo), r);
  __m512 p = _mm512_set1_ps(vec::kExpP[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(vec::kExpP[i]));
  const __m512 er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(er, n);
}

DLCORE_ZMM_INLINE __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

DLCORE_ZMM_INLINE __m512 tanh(__m512 x) {
  const __m512i sign_bit = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(sign_bit, _mm512_castps_si512(x)));
  const __m512 z = _mm512_mul_ps(a, a);
  __m512 p = _mm512_set1_ps(vec::kTanhP[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 5; ++i) p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(vec::kTanhP[i]));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), a, a);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = exp(_mm512_mul_ps(_mm512_set1_ps(-2.0f), a));
  const __m512 big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  const __mmask16 is_small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
  const __m512 r = _mm512_mask_blend_ps(is_small, big, small);
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r),
                                             _mm512_and_si512(sign_bit, _mm512_castps_si512(x))));
}

#undef DLCORE_ZMM_INLINE

}  // namespace dlcore::cpu::DLCORE_ISA::zmm

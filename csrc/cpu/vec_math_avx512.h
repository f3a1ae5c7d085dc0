// sigmoid on 16 floats at a time (__m512), for kernels whose register tiles feed it directly:
// the fused LSTM step (csrc/cpu/rnn/lstm_fused_avx512.cpp), where it is most of the cells'
// cost. Included only from *_avx512.cpp files. The scalar, auto-vectorised functions for every
// ISA are in vec_math.h; this one takes fewer instructions for about the same accuracy:
//   sigmoid(x) = 1 / (1 + e), e = exp(-x) = 2^n exp(r), where
//     x is clamped to [-89, 104] (e = +inf below: result 0; e rounds to 0 above: result 1);
//       NaN passes the clamp and stays NaN;
//     n = round(-x log2 e), by adding the 1.5 * 2^23 shifter inside one FMA;
//     r = -x - n ln2 (Cody-Waite, ln2 = vec::kLn2Hi + vec::kLn2Lo, n * kLn2Hi exact), |r| <= ln2/2;
//     exp(r) = 1 + r + c2 r^2 + ... + c6 r^6 in Horner form (6 FMAs), kExpHorner below;
//     2^n applied by vscalefps, which overflows to +inf and underflows to 0.
//   It replaced 1 / (1 + exp(-x)) through vec_math.h's exp formula (a negation, vrndscaleps,
//   a degree-7 polynomial with a separate r^2 and + 1): 4 instructions fewer. Forward
//   recurrence alone (_C.lstm_sequence_forward, 1 thread, min of 5, two alternating runs):
//   50x32x256 8.35-8.88 -> 8.14-8.18 ms, 35x20x650 23.05-23.29 -> 22.36-22.44, 100x64x512
//   128.0-129.8 -> 127.8-127.9; 100x32x512 within noise (64.1-64.5 vs 64.1-64.6).
//   Dividing by vrcp14ps and a Newton step instead of vdivps measured no faster.
// Accuracy, against float64 at every float32 step of 3e-5: worst 2.42 ulp on [-20, 20] (the old
// form: 2.47), 1.48 ulp on [-87, -20]. Checked in use by tests/kernels/test_rnn_kernels.py
// through the LSTM against its float64 oracle.
#pragma once
#include <immintrin.h>

#include "cpu/vec_math.h"  // the Cody-Waite constants and log2 e

namespace dlcore::cpu::DLCORE_ISA::zmm {

#define DLCORE_ZMM_INLINE [[gnu::always_inline]] static inline

// exp(r) ~ 1 + r + c2 r^2 + ... + c6 r^6 on |r| <= ln2/2, highest degree first (Horner): a
// minimax fit of (exp(r) - 1 - r) / r^2 by degree 4 for relative error (3.2e-9 in exact
// arithmetic; the float32 evaluation, not the fit, sets the error above).
constexpr float kExpHorner[7] = {1.3813750120e-3f, 8.3691142499e-3f, 4.1668426245e-2f, 1.6666516662e-1f,
                                 4.9999994040e-1f, 1.0f, 1.0f};
constexpr float kRoundShifter = 12582912.0f;  // 1.5 * 2^23: t + shifter - shifter = round(t), |t| < 2^22

DLCORE_ZMM_INLINE __m512 sigmoid(__m512 x) {
  // min / max return their second operand when either is NaN, so NaN survives the clamp.
  x = _mm512_min_ps(_mm512_set1_ps(104.0f), _mm512_max_ps(_mm512_set1_ps(-89.0f), x));
  const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(-vec::kLog2e), _mm512_set1_ps(kRoundShifter));
  const __m512 n = _mm512_sub_ps(shifted, _mm512_set1_ps(kRoundShifter));  // round(-x log2 e)
  __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(vec::kLn2Hi), x);          // -x - n ln2_hi, exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(vec::kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpHorner[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpHorner[i]));
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, _mm512_scalef_ps(p, n)));
}

#undef DLCORE_ZMM_INLINE

}  // namespace dlcore::cpu::DLCORE_ISA::zmm

// Vectorisable float32 exp, log, tanh and sigmoid for the CPU kernels.
//
// Why: std::exp / std::log / std::tanh on float are libm calls that GCC does not vectorise
// without -ffast-math, so every loop calling one runs one element at a time (exp on 4M floats
// 9.3 ms, tanh 64 ms, vs NumPy's SIMD 2.0 / 1.5 ms). These functions are plain C++ written
// branch-free (range reduction + polynomial, selects instead of branches, bit casts through
// std::memcpy), so a loop that calls them is vectorised as a whole (check with -fopt-info-vec).
// Keep them so: under GCC's default -ftrapping-math, a select with an FP expression on one arm
// only can be sunk into a branch that if-conversion refuses to undo, and the loop stays scalar
// (log's special cases are therefore added at the end, not selected).
//
// Math (float, Cephes-style coefficients):
//   exp(x)  n = round(x log2 e), r = x - n ln2 (Cody-Waite: ln2 = kLn2Hi + kLn2Lo, n * kLn2Hi
//           exact), exp(r) = 1 + r + r^2 P5(r) on |r| <= ln2/2, times 2^n as two factors
//           2^(n/2) 2^(n - n/2), so subnormal results round once and overflow gives +inf.
//   log(x)  x = 2^e m with m in [sqrt(1/2), sqrt(2)) (subnormals pre-scaled by 2^23),
//           f = m - 1, log(x) = f - f^2/2 + f^3 P8(f) + e ln2 (ln2 split as above).
//   tanh(x) a = |x| < 0.625: a + a^3 P4(a^2) (no cancellation near 0: tanh(x) ~ x keeps full
//           relative precision down to subnormals); a >= 0.625: (1 - e) / (1 + e) with
//           e = exp(-2a) <= 1 (never overflows); then x's sign bit is copied onto the result.
//   sigmoid e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0 (full relative
//           precision in both tails, never overflows).
// Both tanh branches are computed and one selected, so the code stays straight-line.
//
// Special values: exp(NaN) = NaN, exp(+inf) = +inf, exp(-inf) = 0, exp(x > 88.72) = +inf,
// exp(x < -103.97) = 0; log(NaN) = NaN, log(+inf) = +inf, log(+-0) = -inf, log(x < 0) = NaN;
// tanh / sigmoid: NaN -> NaN, +-inf -> +-1 / 1, 0. Signed zero: tanh(-0) = -0.
//
// Accuracy (error in float32 ulps of the float64 result), worst over every 5th float of the
// range on each ISA: exp 1.01 ulp on [-104, 89] (subnormal results included), log 0.82 ulp on
// all positive floats (subnormals included), tanh 1.51 ulp and sigmoid 2.40 ulp on [-50, 50]
// (sigmoid down to -110) and tiny |x|. tests/kernels/test_vec_math.py asserts exp <= 1.25,
// log <= 1, tanh <= 2, sigmoid <= 2.75 through _C.unary_forward on ~2M points each. Results
// differ by up to 2 ulp between generic and avx2 / avx512 (those contract a * b + c into FMA).
//
// Speed (4M floats, avx512, 1 thread, through unary_forward): exp 1.5 ms, log 2.1, tanh 2.8,
// sigmoid 2.1; NumPy 2.0 / 1.6 / 1.5 / 4.4 ms.
//
// double overloads call std:: (float64 is the gradient-check path: accuracy over speed).
//
// Every function is `static inline` with always_inline inside the ISA namespace, so each ISA's
// copy is inlined into its own loops and none is ever emitted as a shared (weak) symbol
// (see cmake/check_isa_symbols.py).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dlcore::cpu::DLCORE_ISA {
namespace vec {

#define DLCORE_VEC_INLINE [[gnu::always_inline]] static inline

DLCORE_VEC_INLINE std::int32_t float_bits(float x) {
  std::int32_t i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}

DLCORE_VEC_INLINE float bits_float(std::int32_t i) {
  float x;
  std::memcpy(&x, &i, sizeof x);
  return x;
}

// 2^k for k in [-126, 127] (the biased exponent field); unsigned shift, so a garbage k
// (from a NaN input, whose result is NaN anyway) is still defined behaviour.
DLCORE_VEC_INLINE float pow2(std::int32_t k) {
  return bits_float(static_cast<std::int32_t>(static_cast<std::uint32_t>(k + 127) << 23));
}

// ln2 split for Cody-Waite reduction: kLn2Hi has 9 significant bits, so n * kLn2Hi is exact
// for |n| < 2^15 and x - n * kLn2Hi is exact near the reduction point.
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kLog2e = 1.44269504088896341f;
// Polynomial coefficients, highest degree first (Horner). Cephes expf: exp(r) - 1 - r = r^2 P5(r) on |r| <= ln2 / 2. Cephes tanhf:
// tanh(a) = a + a^3 P4(a^2) on [0, 0.625].
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
constexpr float kTanhP[5] = {-5.70498872745e-3f, 2.06390887954e-2f, -5.37397155531e-2f,
                             1.33314422036e-1f, -3.33332819422e-1f};

DLCORE_VEC_INLINE float exp(float x) {
  // Clamp to [-110, 90]: beyond, the result is already 0 / +inf, and n stays in [-159, 130]
  // where both scale factors below are normal floats. NaN fails both tests and stays NaN.
  float xc = x > 90.0f ? 90.0f : x;
  xc = xc < -110.0f ? -110.0f : xc;
  // n = round-to-nearest(x log2 e) without a float -> int conversion: adding 1.5 * 2^23
  // leaves n in the low mantissa bits of t (defined for NaN too, unlike a cast).
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  const float t = xc * kLog2e + kRound;
  const std::int32_t n = float_bits(t) - float_bits(kRound);
  const float nf = t - kRound;
  float r = xc - nf * kLn2Hi;
  r = r - nf * kLn2Lo;  // |r| <= ln2 / 2 (+ rounding)
  // exp(r) - 1 - r = r^2 P5(r): Cephes expf minimax polynomial, ~1e-7 relative on the range.
  float p = kExpP[0];
#pragma GCC unroll 8
  for (int i = 1; i < 6; ++i) p = p * r + kExpP[i];
  const float er = p * (r * r) + r + 1.0f;
  // 2^n = 2^n1 * 2^n2, each a normal float (n1, n2 in [-80, 65]).
  const std::int32_t n1 = n >> 1;
  const std::int32_t n2 = n - n1;
  return er * pow2(n1) * pow2(n2);
}

DLCORE_VEC_INLINE float log(float x) {
  // Selects here pick constants, never FP results: under GCC's default -ftrapping-math an FP
  // operation used on one side only is sunk into a branch that if-conversion will not undo,
  // and the loop stays scalar. So the subnormal and range adjustments multiply by a selected
  // factor, and the special cases are added at the end.
  // Subnormal x: scale by 2^23 into the normal range and take 23 off the exponent.
  const bool sub = x < 1.17549435e-38f;  // FLT_MIN
  const float xs = x * (sub ? 8388608.0f : 1.0f);
  const std::int32_t ix = float_bits(xs);
  // x = 2^e m, m in [1, 2): then move m into [sqrt(1/2), sqrt(2)) so f = m - 1 is small.
  std::int32_t e = ((ix >> 23) & 0xff) - 127 - (sub ? 23 : 0);
  float m = bits_float((ix & 0x007fffff) | 0x3f800000);
  const bool big = m > 1.41421356f;
  m = m * (big ? 0.5f : 1.0f);
  e = e + (big ? 1 : 0);
  const float f = m - 1.0f;  // exact (Sterbenz)
  const float ef = static_cast<float>(e);
  // log(1 + f) = f - f^2/2 + f^3 P8(f): Cephes logf minimax polynomial.
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  const float z = f * f;
  float y = p * f * z;
  y = y + ef * kLn2Lo;
  y = y - 0.5f * z;
  float r = f + y;
  r = r + ef * kLn2Hi;
  // Special values (r is finite for every input): + 0 for finite x > 0, + inf for +inf,
  // - inf for +-0, NaN for x < 0 and NaN.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const float special = x == 0.0f ? -kInf : (x >= 0.0f ? (x == kInf ? kInf : 0.0f) : kNaN);
  return r + special;
}

DLCORE_VEC_INLINE float tanh(float x) {
  // tanh is odd: work on a = |x| and copy x's sign bit at the end (keeps tanh(-0) = -0).
  const float a = std::fabs(x);
  // Small a: tanh(a) = a + a^3 P4(a^2), Cephes tanhf minimax polynomial on [0, 0.625].
  const float z = a * a;
  float p = kTanhP[0];
#pragma GCC unroll 8
  for (int i = 1; i < 5; ++i) p = p * z + kTanhP[i];
  const float small = p * z * a + a;
  // Large a: (1 - e) / (1 + e), e = exp(-2a) in [0, 0.29].
  const float e = exp(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float r = a < 0.625f ? small : big;
  return bits_float(float_bits(r) | (float_bits(x) & INT32_MIN));
}

DLCORE_VEC_INLINE float sigmoid(float x) {
  const float e = exp(-std::fabs(x));
  return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

DLCORE_VEC_INLINE double exp(double x) { return std::exp(x); }
DLCORE_VEC_INLINE double log(double x) { return std::log(x); }
DLCORE_VEC_INLINE double tanh(double x) { return std::tanh(x); }

DLCORE_VEC_INLINE double sigmoid(double x) {
  const double e = std::exp(-std::fabs(x));
  const double d = 1.0 + e;
  return x >= 0.0 ? 1.0 / d : e / d;
}

#undef DLCORE_VEC_INLINE

}  // namespace vec
}  // namespace dlcore::cpu::DLCORE_ISA

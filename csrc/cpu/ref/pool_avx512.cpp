// The AVX-512 float 2x2 stride-2 pooling kernels (contract: csrc/cpu/ref/pool_2x2.h).
//
// One block = 16 windows of one output row: two masked loads of 32 floats from each of the two
// input rows, then _mm512_permutex2var_ps with even / odd lane indices splits each row into the
// kw = 0 and kw = 1 taps of the 16 windows. max applies the rule tap by tap in row-major order
// (two compares: v > best ordered, v unordered); avg adds the two rows first, then even + odd,
// times 0.25. Backward builds the two 32-float grad_x rows of the block by interleaving
// (permutex2var) the per-tap values: max, g masked by "index == this tap"; avg, g * 0.25 twice.
// Tails (cols % 16) use the same code with masked loads and stores.
// Tested: tests/kernels/test_pool_kernels.py (isa avx512; widths 1..40 reach every tail).
// Measured: (32, 64, 56, 56) float, 1 thread, kernel only, min of 15 (AVX-512):
//           max forward 0.93 ms without index, 1.05 with the window index, 1.6 with the
//           int64 plane index; max backward 0.92 (window index); avg forward 0.82, backward 0.93
//           (26-31 GB/s; the portable loops take 2.6-8 ms, csrc/cpu/ref/pool.cpp).
// GCC 12's AVX-512 headers start several intrinsics from _mm*_undefined_*(), which
// -Wmaybe-uninitialized reports at every use (GCC bug 105593); the warning is off for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "cpu/ref/pool_2x2.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// The lanes of a block of n <= 16 windows: outputs, and the two 16-float halves of the 32 input
// (or grad_x) floats under them.
struct BlockMasks {
  __mmask16 out, in_lo, in_hi;
};
inline BlockMasks block_masks(int64_t n) {
  const auto ones = [](int64_t k) {
    return static_cast<__mmask16>(k >= 16 ? 0xFFFF : k <= 0 ? 0 : (1u << k) - 1);
  };
  return {ones(n), ones(2 * n), ones(2 * n - 16)};
}

// One input row's 32 floats at p as its kw = 0 (even) and kw = 1 (odd) taps.
struct Taps {
  __m512 even, odd;
};
inline Taps split_row(const float* p, const BlockMasks& m, __m512i even, __m512i odd) {
  const __m512 lo = _mm512_maskz_loadu_ps(m.in_lo, p), hi = _mm512_maskz_loadu_ps(m.in_hi, p + 16);
  return {_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi)};
}

// The max rule for one tap: take v where v > best or v is NaN.
inline __mmask16 takes(__m512 v, __m512 best) {
  return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

// Stores the 32 grad_x floats [a0, b0, a1, b1, ...] at p.
inline void store_interleaved(float* p, __m512 a, __m512 b, const BlockMasks& m, __m512i il_lo, __m512i il_hi) {
  _mm512_mask_storeu_ps(p, m.in_lo, _mm512_permutex2var_ps(a, il_lo, b));
  _mm512_mask_storeu_ps(p + 16, m.in_hi, _mm512_permutex2var_ps(a, il_hi, b));
}

}  // namespace

void max_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y, int64_t* plane_index,
                                     uint8_t* window_index) {
  // Lane constants built here, not as globals: a global would run AVX-512 code at load time.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i row_step = _mm512_set1_epi32(static_cast<int32_t>(r.W));
  for (int64_t i = 0; i < r.rows; ++i) {
    const float* x0 = x + 2 * i * r.W;  // (2, W): the block's two input rows
    for (int64_t j = 0; j < r.cols; j += 16) {
      const BlockMasks m = block_masks(r.cols - j);
      const Taps t0 = split_row(x0 + 2 * j, m, even, odd), t1 = split_row(x0 + r.W + 2 * j, m, even, odd);
      __m512 best = t0.even;
      __m512i k = _mm512_setzero_si512();  // window position kh*2 + kw of the max
      const __mmask16 m1 = takes(t0.odd, best);
      best = _mm512_mask_mov_ps(best, m1, t0.odd);
      k = _mm512_mask_mov_epi32(k, m1, _mm512_set1_epi32(1));
      const __mmask16 m2 = takes(t1.even, best);
      best = _mm512_mask_mov_ps(best, m2, t1.even);
      k = _mm512_mask_mov_epi32(k, m2, _mm512_set1_epi32(2));
      const __mmask16 m3 = takes(t1.odd, best);
      best = _mm512_mask_mov_ps(best, m3, t1.odd);
      k = _mm512_mask_mov_epi32(k, m3, _mm512_set1_epi32(3));
      const int64_t o = i * r.ld + j;
      _mm512_mask_storeu_ps(y + o, m.out, best);
      if (window_index) _mm512_mask_cvtepi32_storeu_epi8(window_index + o, m.out, k);
      if (plane_index) {
        // h*W + w = base + 2*lane + (kw = k & 1) + (kh = k >> 1) * W, in int32 (H*W < 2^31).
        __m512i p = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(r.plane_base + 2 * i * r.W + 2 * j)),
                                     even);
        p = _mm512_add_epi32(p, _mm512_and_si512(k, _mm512_set1_epi32(1)));
        p = _mm512_mask_add_epi32(p, _mm512_cmpge_epi32_mask(k, _mm512_set1_epi32(2)), p, row_step);
        _mm512_mask_storeu_epi64(plane_index + o, static_cast<__mmask8>(m.out),
                                 _mm512_cvtepi32_epi64(_mm512_castsi512_si256(p)));
        _mm512_mask_storeu_epi64(plane_index + o + 8, static_cast<__mmask8>(m.out >> 8),
                                 _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(p, 1)));
      }
    }
  }
}

void max_pool2d_backward_2x2s2(const Pool2x2Rect& r, const int64_t* plane_index,
                                      const uint8_t* window_index, const float* grad_y, float* grad_x) {
  const __m512i il_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i il_hi = _mm512_add_epi32(il_lo, _mm512_set1_epi32(8));
  const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
  const __m512i two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
  const __m512i W32 = _mm512_set1_epi32(static_cast<int32_t>(r.W));
  const __m512i W32p1 = _mm512_set1_epi32(static_cast<int32_t>(r.W + 1));
  for (int64_t i = 0; i < r.rows; ++i) {
    float* g0 = grad_x + 2 * i * r.W;  // (2, W): the block's two grad_x rows
    for (int64_t j = 0; j < r.cols; j += 16) {
      const BlockMasks m = block_masks(r.cols - j);
      const int64_t o = i * r.ld + j;
      const __m512 g = _mm512_maskz_loadu_ps(m.out, grad_y + o);
      __mmask16 m0, m1, m2, m3;  // lanes whose max sits at tap 0, 1, 2, 3
      if (window_index) {
        const __m512i k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m.out, window_index + o));
        m0 = _mm512_cmpeq_epi32_mask(k, zero), m1 = _mm512_cmpeq_epi32_mask(k, one);
        m2 = _mm512_cmpeq_epi32_mask(k, two), m3 = _mm512_cmpeq_epi32_mask(k, three);
      } else {
        // d = index - (h*W + w of tap 0): 0, 1, W, W + 1 for taps 0..3. Exact in int32: the
        // binding checked every index lies in [-1, H*W) and H*W < 2^31.
        const __m512i base = _mm512_add_epi64(_mm512_set1_epi64(r.plane_base + 2 * i * r.W + 2 * j), lane2);
        const __m512i lo = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(m.out), plane_index + o);
        const __m512i hi = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(m.out >> 8), plane_index + o + 8);
        const __m256i dlo = _mm512_cvtepi64_epi32(_mm512_sub_epi64(lo, base));
        const __m256i dhi = _mm512_cvtepi64_epi32(_mm512_sub_epi64(hi, _mm512_add_epi64(base, _mm512_set1_epi64(16))));
        const __m512i d = _mm512_inserti64x4(_mm512_castsi256_si512(dlo), dhi, 1);
        m0 = _mm512_cmpeq_epi32_mask(d, zero), m1 = _mm512_cmpeq_epi32_mask(d, one);
        m2 = _mm512_cmpeq_epi32_mask(d, W32), m3 = _mm512_cmpeq_epi32_mask(d, W32p1);
      }
      store_interleaved(g0 + 2 * j, _mm512_maskz_mov_ps(m0, g), _mm512_maskz_mov_ps(m1, g), m, il_lo, il_hi);
      store_interleaved(g0 + r.W + 2 * j, _mm512_maskz_mov_ps(m2, g), _mm512_maskz_mov_ps(m3, g), m, il_lo, il_hi);
    }
  }
}

void avg_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 quarter = _mm512_set1_ps(0.25f);
  for (int64_t i = 0; i < r.rows; ++i) {
    const float* x0 = x + 2 * i * r.W;  // (2, W)
    for (int64_t j = 0; j < r.cols; j += 16) {
      const BlockMasks m = block_masks(r.cols - j);
      const float* p0 = x0 + 2 * j;
      const float* p1 = p0 + r.W;
      const __m512 lo = _mm512_add_ps(_mm512_maskz_loadu_ps(m.in_lo, p0), _mm512_maskz_loadu_ps(m.in_lo, p1));
      const __m512 hi =
          _mm512_add_ps(_mm512_maskz_loadu_ps(m.in_hi, p0 + 16), _mm512_maskz_loadu_ps(m.in_hi, p1 + 16));
      const __m512 sum = _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
      _mm512_mask_storeu_ps(y + i * r.ld + j, m.out, _mm512_mul_ps(sum, quarter));
    }
  }
}

void avg_pool2d_backward_2x2s2(const Pool2x2Rect& r, const float* grad_y, float* grad_x) {
  const __m512i il_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i il_hi = _mm512_add_epi32(il_lo, _mm512_set1_epi32(8));
  const __m512 quarter = _mm512_set1_ps(0.25f);
  for (int64_t i = 0; i < r.rows; ++i) {
    float* g0 = grad_x + 2 * i * r.W;  // (2, W)
    for (int64_t j = 0; j < r.cols; j += 16) {
      const BlockMasks m = block_masks(r.cols - j);
      const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m.out, grad_y + i * r.ld + j), quarter);
      store_interleaved(g0 + 2 * j, g, g, m, il_lo, il_hi);
      store_interleaved(g0 + r.W + 2 * j, g, g, m, il_lo, il_hi);
    }
  }
}

}  // namespace dlcore::cpu::DLCORE_ISA

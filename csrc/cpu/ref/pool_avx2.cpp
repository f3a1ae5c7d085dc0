// The AVX2 float 2x2 stride-2 pooling kernels (contract: csrc/cpu/ref/pool_2x2.h).
//
// One block = 8 windows of one output row: two loads of 16 floats from each input row;
// _mm256_shuffle_ps + _mm256_permute4x64_pd split them into the kw = 0 (even) and kw = 1 (odd)
// taps. max applies the rule tap by tap in row-major order (compare v > best ordered, or v
// unordered; blend); avg adds the two rows, then even + odd, times 0.25. Backward interleaves
// the per-tap values back into two 16-float grad_x rows (unpacklo/hi + permute2f128).
// Tails: a row with cols >= 8 ends with one block moved left to end at cols (it recomputes
// and rewrites a few windows with the same values); a row with cols < 8 goes window by window
// through scalar code with the same rules (max_window and the short loops in each kernel).
// Tested: tests/kernels/test_pool_kernels.py (isa avx2; widths 1..40 reach every tail).
// Measured: (32, 64, 56, 56) float, 1 thread, kernel only, min of 15 (AVX2):
//           max forward 0.99 ms without index, 1.08 with the window index, 1.65 with the
//           int64 plane index; max backward 1.01 (window index); avg forward 0.86, backward 1.00
//           (26-31 GB/s; the portable loops take 2.6-8 ms, csrc/cpu/ref/pool.cpp).
#include <immintrin.h>

#include <cstdint>

#include "core/kernel_args.h"
#include "cpu/ref/pool_2x2.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

constexpr int64_t kLanes = 8;

// The start of each block of a row of cols >= kLanes windows: 0, 8, ..., and cols - 8 last.
template <class F>
void for_blocks(int64_t cols, F&& f) {
  for (int64_t j = 0; j + kLanes <= cols; j += kLanes) f(j);
  if (cols % kLanes) f(cols - kLanes);
}

// The 16 floats at p as their even and odd elements (8 each, in order).
inline __m256 evens(__m256 lo, __m256 hi) {
  const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // lane-wise: lo0 lo2 hi0 hi2
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline __m256 odds(__m256 lo, __m256 hi) {
  const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// The max rule for one tap, as a lane mask: v > best or v is NaN.
inline __m256 takes(__m256 v, __m256 best) {
  return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// Stores the 16 floats [a0, b0, a1, b1, ...] at p.
inline void store_interleaved(float* p, __m256 a, __m256 b) {
  const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);  // lane-wise pairs
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

// ---- scalar windows, for rows of fewer than 8 windows ----
// x0: the window's top-left tap, rows W apart. Same rule and tap order as the vector code.
inline void max_window(const float* x0, int64_t W, int64_t base, float* y, int64_t* plane_index,
                       uint8_t* window_index) {
  const float v[4] = {x0[0], x0[1], x0[W], x0[W + 1]};
  float best = v[0];
  int k = 0;
  for (int t = 1; t < 4; ++t)
    if (v[t] > best || v[t] != v[t]) best = v[t], k = t;
  *y = best;
  if (plane_index) *plane_index = base + (k >> 1) * W + (k & 1);
  if (window_index) *window_index = static_cast<uint8_t>(k);
}

}  // namespace

void max_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y, int64_t* plane_index,
                                   uint8_t* window_index) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i row_step = _mm256_set1_epi32(static_cast<int32_t>(r.W));
  for (int64_t i = 0; i < r.rows; ++i) {
    const float* x0 = x + 2 * i * r.W;  // (2, W): the block's two input rows
    const int64_t row_base = r.plane_base + 2 * i * r.W;
    if (r.cols < kLanes) {
      for (int64_t j = 0; j < r.cols; ++j) {
        const int64_t o = i * r.ld + j;
        max_window(x0 + 2 * j, r.W, row_base + 2 * j, y + o, plane_index ? plane_index + o : nullptr,
                   window_index ? window_index + o : nullptr);
      }
      continue;
    }
    for_blocks(r.cols, [&](int64_t j) {
      const float* p0 = x0 + 2 * j;
      const float* p1 = p0 + r.W;
      const __m256 a0 = _mm256_loadu_ps(p0), a1 = _mm256_loadu_ps(p0 + 8);
      const __m256 b0 = _mm256_loadu_ps(p1), b1 = _mm256_loadu_ps(p1 + 8);
      __m256 best = evens(a0, a1);
      __m256i k = _mm256_setzero_si256();  // window position kh*2 + kw of the max
      const __m256 taps[3] = {odds(a0, a1), evens(b0, b1), odds(b0, b1)};
      for (int t = 0; t < 3; ++t) {
        const __m256 take = takes(taps[t], best);
        best = _mm256_blendv_ps(best, taps[t], take);
        k = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k),
                                                 _mm256_castsi256_ps(_mm256_set1_epi32(t + 1)), take));
      }
      const int64_t o = i * r.ld + j;
      _mm256_storeu_ps(y + o, best);
      if (window_index) {
        const __m128i k16 = _mm_packus_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(window_index + o), _mm_packus_epi16(k16, k16));
      }
      if (plane_index) {
        // h*W + w = base + 2*lane + (kw = k & 1) + (kh = k >> 1) * W, in int32 (H*W < 2^31).
        __m256i p = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(row_base + 2 * j)), lane2);
        p = _mm256_add_epi32(p, _mm256_and_si256(k, one));
        p = _mm256_add_epi32(p, _mm256_and_si256(_mm256_cmpgt_epi32(k, one), row_step));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(plane_index + o),
                            _mm256_cvtepi32_epi64(_mm256_castsi256_si128(p)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(plane_index + o + 4),
                            _mm256_cvtepi32_epi64(_mm256_extracti128_si256(p, 1)));
      }
    });
  }
}

void max_pool2d_backward_2x2s2(const Pool2x2Rect& r, const int64_t* plane_index,
                                    const uint8_t* window_index, const float* grad_y, float* grad_x) {
  const __m256i lane2 = _mm256_setr_epi64x(0, 2, 4, 6);
  const __m256i low32 = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);  // the low halves of 4 int64 first
  const __m256i t0 = _mm256_setzero_si256(), t1 = _mm256_set1_epi32(1);
  const __m256i t2 = _mm256_set1_epi32(2), t3 = _mm256_set1_epi32(3);
  const __m256i W32 = _mm256_set1_epi32(static_cast<int32_t>(r.W));
  const __m256i W32p1 = _mm256_set1_epi32(static_cast<int32_t>(r.W + 1));
  for (int64_t i = 0; i < r.rows; ++i) {
    float* g0 = grad_x + 2 * i * r.W;  // (2, W): the block's two grad_x rows
    const int64_t row_base = r.plane_base + 2 * i * r.W;
    if (r.cols < kLanes) {
      for (int64_t j = 0; j < r.cols; ++j) {
        const int64_t o = i * r.ld + j;
        int64_t k = kNoWindowTap;
        if (window_index) {
          k = window_index[o];
        } else {
          const int64_t d = plane_index[o] - (row_base + 2 * j);
          k = d == 0 ? 0 : d == 1 ? 1 : d == r.W ? 2 : d == r.W + 1 ? 3 : kNoWindowTap;
        }
        float* p = g0 + 2 * j;
        p[0] = k == 0 ? grad_y[o] : 0.0f;
        p[1] = k == 1 ? grad_y[o] : 0.0f;
        p[r.W] = k == 2 ? grad_y[o] : 0.0f;
        p[r.W + 1] = k == 3 ? grad_y[o] : 0.0f;
      }
      continue;
    }
    for_blocks(r.cols, [&](int64_t j) {
      const int64_t o = i * r.ld + j;
      const __m256 g = _mm256_loadu_ps(grad_y + o);
      __m256i m0, m1, m2, m3;  // lanes whose max sits at tap 0, 1, 2, 3 (all ones)
      if (window_index) {
        const __m256i k = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(window_index + o)));
        m0 = _mm256_cmpeq_epi32(k, t0), m1 = _mm256_cmpeq_epi32(k, t1);
        m2 = _mm256_cmpeq_epi32(k, t2), m3 = _mm256_cmpeq_epi32(k, t3);
      } else {
        // d = index - (h*W + w of tap 0): 0, 1, W, W + 1 for taps 0..3. Exact in int32: the
        // binding checked every index lies in [-1, H*W) and H*W < 2^31.
        const __m256i base = _mm256_add_epi64(_mm256_set1_epi64x(row_base + 2 * j), lane2);
        const __m256i lo = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(plane_index + o)), base);
        const __m256i hi = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(plane_index + o + 4)),
                                            _mm256_add_epi64(base, _mm256_set1_epi64x(8)));
        const __m256i d = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(lo, low32),
                                                    _mm256_permutevar8x32_epi32(hi, low32), 0x20);
        m0 = _mm256_cmpeq_epi32(d, t0), m1 = _mm256_cmpeq_epi32(d, t1);
        m2 = _mm256_cmpeq_epi32(d, W32), m3 = _mm256_cmpeq_epi32(d, W32p1);
      }
      store_interleaved(g0 + 2 * j, _mm256_and_ps(g, _mm256_castsi256_ps(m0)), _mm256_and_ps(g, _mm256_castsi256_ps(m1)));
      store_interleaved(g0 + r.W + 2 * j, _mm256_and_ps(g, _mm256_castsi256_ps(m2)),
                        _mm256_and_ps(g, _mm256_castsi256_ps(m3)));
    });
  }
}

void avg_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y) {
  const __m256 quarter = _mm256_set1_ps(0.25f);
  for (int64_t i = 0; i < r.rows; ++i) {
    const float* x0 = x + 2 * i * r.W;  // (2, W)
    if (r.cols < kLanes) {
      for (int64_t j = 0; j < r.cols; ++j) {
        const float* p = x0 + 2 * j;
        y[i * r.ld + j] = ((p[0] + p[r.W]) + (p[1] + p[r.W + 1])) * 0.25f;
      }
      continue;
    }
    for_blocks(r.cols, [&](int64_t j) {
      const float* p0 = x0 + 2 * j;
      const float* p1 = p0 + r.W;
      const __m256 lo = _mm256_add_ps(_mm256_loadu_ps(p0), _mm256_loadu_ps(p1));
      const __m256 hi = _mm256_add_ps(_mm256_loadu_ps(p0 + 8), _mm256_loadu_ps(p1 + 8));
      _mm256_storeu_ps(y + i * r.ld + j, _mm256_mul_ps(_mm256_add_ps(evens(lo, hi), odds(lo, hi)), quarter));
    });
  }
}

void avg_pool2d_backward_2x2s2(const Pool2x2Rect& r, const float* grad_y, float* grad_x) {
  const __m256 quarter = _mm256_set1_ps(0.25f);
  for (int64_t i = 0; i < r.rows; ++i) {
    float* g0 = grad_x + 2 * i * r.W;  // (2, W)
    if (r.cols < kLanes) {
      for (int64_t j = 0; j < r.cols; ++j) {
        const float g = grad_y[i * r.ld + j] * 0.25f;
        float* p = g0 + 2 * j;
        p[0] = p[1] = p[r.W] = p[r.W + 1] = g;
      }
      continue;
    }
    for_blocks(r.cols, [&](int64_t j) {
      const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad_y + i * r.ld + j), quarter);
      store_interleaved(g0 + 2 * j, g, g);
      store_interleaved(g0 + r.W + 2 * j, g, g);
    });
  }
}

}  // namespace dlcore::cpu::DLCORE_ISA

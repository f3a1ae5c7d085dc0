// conv2d's direct path, channels-in-vector variant (stride 1, dilation 1): forward (and so
// backward_input, a forward conv of grad_y) and backward_weight without junk positions.
//
// The wide variant (csrc/cpu/ref/conv2d.cpp) puts output positions in the vector: over the
// padded row width Wp, so OW of every Wp columns are useful (LeNet conv2: 10 of 14, and 140
// wide positions round up to 160), and MR = 6 channels per tile (16 channels run as 18).
// Here the V = (vector bytes / sizeof(T)) lanes hold V output channels of one group instead
// (16 floats: LeNet conv2's C_out exactly), and each output position or tap is a broadcast:
//
// forward   acc[r, j][lane] = sum_{t = (c, kh, kw)} w[co0 + lane, t] * xp[c, oh0+r+kh, ow0+j+kw]
//           for a tile of RH output rows x RW output columns (RH*RW accumulators, <= 25 on
//           AVX-512: 20 for OW = 10), one weight vector load and RH*RW broadcast-FMAs per tap.
//           Tiles fill one channel block's outputs position-major (P, V); that block is then
//           transposed into y (C_out, OH, OW), + bias (16 x 16 register transposes on AVX-512).
// backward_weight  acc[i, j][lane] += sum_{oh, ow} gy[n, co0 + lane, oh, ow] * xp[c, oh+kh0+i,
//           ow+kw0+j] for a tile of TH x TW taps of one input channel (<= 25 accumulators: a
//           whole 5x5 kernel), one grad_y vector load (grad_y transposed per image to
//           (P, V) per channel block, as above) and TH*TW broadcast-FMAs per output position.
//
// Layout: x (N, C, H, W) is read in place when there is no padding, else copied per image into
// xp (C, Hp, Wp) with zero borders. Weights packed per call (G, nblk, Kc, V), nblk =
// ceil(Cog / V), lanes past Cog zero; partial sums (G, nblk, Kc, V). Tap offsets: tap
// (c, kh, kw) reads xp at c*Hp*Wp + kh*Wp + kw from the tile's first position, so every read
// stays inside the padded image (no slack). Summation order: forward, taps in order per
// output; backward_weight, per thread over its images in order and positions in order, then
// the threads' partial sums in thread order (deterministic for a given thread count).
//
// Threads: whole images per thread (omp for, static), per-thread scratch allocated once before
// the parallel region (a failed allocation raises instead of terminating).
// Portable C++: the lane loop is `omp simd`, the tile loops unroll fully, so each ISA copy keeps
// the accumulators in registers (AVX-512: 20-25 zmm; AVX2 and SSE2 tiles are capped at 12).
//
// Tested: tests/kernels/test_conv_kernels.py (cases "cv_*": partial channel blocks, groups,
// padding, edge tiles in both directions, every ISA, float32/float64, integer-exact at 1 and 4
// threads). Timed as in csrc/cpu/ref/conv2d.cpp's header: LeNet conv2 (64, 6->16, 14x14, k5),
// 1 thread, float32, AVX-512: forward 0.277-0.283 ms (109-111 GFLOP/s, 93-95 % of the FMA peak;
// the wide variant 0.55), backward_weight 0.32 ms (95 GFLOP/s; the gemm path 1.03).
// Bound: 2*N*C_out*Kc*P flops, times V*nblk/Cog for the unused lanes of the last block.
#include "cpu/conv/direct_cv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <utility>

#include "cpu/conv/conv_dims.h"
#include "cpu/conv/padded_frame.h"
#include "cpu/transpose_parts.h"
#include "cpu/kernels.h"
#include "cpu/vector_width.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// The accumulators a tile may hold: 32 zmm leave room for 25 accumulators + the weight
// (grad_y) vector; 16 ymm / xmm for 12.
constexpr int kMaxAcc = kVectorBytes == 64 ? 25 : 12;

// Largest tiles instantiated: forward RH x RW output positions, backward_weight TH x TW taps.
// Wider rows / kernels are split into balanced chunks of at most kMaxRW / kMaxTW.
constexpr int kMaxRH = 4, kMaxRW = 12;
constexpr int kMaxTH = 5, kMaxTW = 8;

// Sizes shared by both directions: the conv's (G, Cg, Cog, Kc, P, HW, ...) and the frame's.
struct CvPlan : ConvDims {
  int64_t Hp, Wp, plane;  // padded image (Hp, Wp)
  int64_t nblk;           // ceil(Cog / V): channel blocks per group
  bool pad;               // x must be copied into a padded frame
};

template <class T>
CvPlan plan_of(const Conv2dShape& s) {
  CvPlan p;
  static_cast<ConvDims&>(p) = dims_of(s);
  p.Hp = s.H + 2 * s.pad_h;
  p.Wp = s.W + 2 * s.pad_w;
  p.plane = p.Hp * p.Wp;
  p.nblk = (p.Cog + kLanes<T> - 1) / kLanes<T>;
  p.pad = s.pad_h > 0 || s.pad_w > 0;
  return p;
}

// Image n of x (N, C, H, W) as the tiles read it, (C, Hp, Wp): in place without padding, else
// copied into the thread's padded frame xp (whose borders stay zero).
template <class T>
const T* image_frame(const Conv2dShape& s, const CvPlan& p, const T* x, int64_t n, T* xp) {
  const T* xi = x + n * s.C * p.HW;
  if (!p.pad) return xi;
  copy_into_padded_frame(s, p.plane, p.Wp, xi, xp);
  return xp;
}

// out[r*ldo + j*V + lane] := sum_t a[t][lane] * xq[off[t] + r*Wp + j], taps in order.
// a (taps, V) packed weights of one channel block; xq the group's padded image at the tile's
// first output position; out the tile's first position in the (P, V) block of outputs.
template <class T, int RH, int RW>
void forward_tile(int64_t taps, const int64_t* __restrict off, const T* __restrict a,
                  const T* __restrict xq, int64_t Wp, T* __restrict out, int64_t ldo) {
  constexpr int V = kLanes<T>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // The same loop on zmm values: from the portable arrays below GCC zeroed the accumulators
    // through a stack buffer and loaded them back at every tile's start (LeNet conv2 forward,
    // min of 9 x 300 calls, three alternating pairs: 1 thread 286.8-288.2 -> 277.4-283.5 us, 2
    // threads 147.5-148.3 -> 142.4-142.9). The weight tile measured no better so (364 vs 313 us).
    __m512 vacc[RH * RW];
#pragma GCC unroll 32
    for (int i = 0; i < RH * RW; ++i) vacc[i] = _mm512_setzero_ps();
    const float* __restrict vrow[RH];
#pragma GCC unroll 4
    for (int r = 0; r < RH; ++r) vrow[r] = xq + r * Wp;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t o = off[t];
      const __m512 av = _mm512_loadu_ps(a + t * V);
#pragma GCC unroll 4
      for (int r = 0; r < RH; ++r)
#pragma GCC unroll 12
        for (int j = 0; j < RW; ++j) vacc[r * RW + j] = _mm512_fmadd_ps(av, _mm512_set1_ps(vrow[r][o + j]), vacc[r * RW + j]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < RH; ++r)
#pragma GCC unroll 12
      for (int j = 0; j < RW; ++j) _mm512_storeu_ps(out + r * ldo + j * V, vacc[r * RW + j]);
    return;
  }
#endif
  T acc[RH * RW][V];
  for (int i = 0; i < RH * RW; ++i)
    for (int l = 0; l < V; ++l) acc[i][l] = T(0);
  // One base pointer per tile row, advanced by the tap offset: each broadcast then addresses
  // row[r] + off[t] + j with j an immediate. Indexing xq + off[t] + r * Wp + j instead, GCC ran
  // out of registers for the RW constants r * Wp + j and moved them through xmm registers
  // (LeNet conv2 forward, 1 thread, min of ~20000 calls: 0.299-0.301 -> 0.284-0.286 ms).
  const T* __restrict row[RH];
#pragma GCC unroll 4
  for (int r = 0; r < RH; ++r) row[r] = xq + r * Wp;
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t o = off[t];
    const T* __restrict av = a + t * V;  // (V)
#pragma GCC unroll 4
    for (int r = 0; r < RH; ++r) {
#pragma GCC unroll 12
      for (int j = 0; j < RW; ++j) {
        const T bx = row[r][o + j];
#pragma omp simd
        for (int l = 0; l < V; ++l) acc[r * RW + j][l] += av[l] * bx;
      }
    }
  }
  for (int r = 0; r < RH; ++r)
    for (int j = 0; j < RW; ++j)
      for (int l = 0; l < V; ++l) out[r * ldo + j * V + l] = acc[r * RW + j][l];
}


// part[i*ldp + j*V + lane] += sum_{oh < OH, ow < OW} gyt[oh*OW + ow][lane] * xc[(oh+i)*Wp + ow+j]
// for i < TH, j < TW; positions in order. gyt (P, V) grad_y of one channel block, transposed;
// xc the padded image of one input channel at tap (kh0, kw0).
template <class T, int TH, int TW>
void weight_tile(int64_t OH, int64_t OW, const T* __restrict gyt, const T* __restrict xc,
                 int64_t Wp, T* __restrict part, int64_t ldp) {
  constexpr int V = kLanes<T>;
  T acc[TH * TW][V];
  for (int i = 0; i < TH; ++i)
    for (int j = 0; j < TW; ++j)
      for (int l = 0; l < V; ++l) acc[i * TW + j][l] = part[i * ldp + j * V + l];
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* __restrict xrow = xc + oh * Wp;     // (TH rows of stride Wp, OW + TW - 1)
    const T* __restrict grow = gyt + oh * OW * V;  // (OW, V)
    for (int64_t ow = 0; ow < OW; ++ow) {
      const T* __restrict gv = grow + ow * V;  // (V)
#pragma GCC unroll 5
      for (int i = 0; i < TH; ++i) {
#pragma GCC unroll 8
        for (int j = 0; j < TW; ++j) {
          const T bx = xrow[i * Wp + ow + j];
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[i * TW + j][l] += gv[l] * bx;
        }
      }
    }
  }
  for (int i = 0; i < TH; ++i)
    for (int j = 0; j < TW; ++j)
      for (int l = 0; l < V; ++l) part[i * ldp + j * V + l] = acc[i * TW + j][l];
}

template <class T>
using ForwardTileFn = void (*)(int64_t, const int64_t*, const T*, const T*, int64_t, T*, int64_t);
template <class T>
using WeightTileFn = void (*)(int64_t, int64_t, const T*, const T*, int64_t, T*, int64_t);

// The instantiation for a tile of rh x rw (1 <= rh <= kMaxRH, 1 <= rw <= kMaxRW).
template <class T, std::size_t... I>
ForwardTileFn<T> forward_tile_for(int64_t rh, int64_t rw, std::index_sequence<I...>) {
  static constexpr ForwardTileFn<T> table[] = {
      &forward_tile<T, static_cast<int>(I) / kMaxRW + 1, static_cast<int>(I) % kMaxRW + 1>...};
  return table[(rh - 1) * kMaxRW + rw - 1];
}
template <class T, std::size_t... I>
WeightTileFn<T> weight_tile_for(int64_t th, int64_t tw, std::index_sequence<I...>) {
  static constexpr WeightTileFn<T> table[] = {
      &weight_tile<T, static_cast<int>(I) / kMaxTW + 1, static_cast<int>(I) % kMaxTW + 1>...};
  return table[(th - 1) * kMaxTW + tw - 1];
}

}  // namespace

bool cv_fits(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1;
}

template <class T>
double cv_lane_use(const Conv2dShape& s) {
  const CvPlan p = plan_of<T>(s);
  return static_cast<double>(p.Cog) / static_cast<double>(p.nblk * kLanes<T>);
}
template double cv_lane_use<float>(const Conv2dShape&);
template double cv_lane_use<double>(const Conv2dShape&);

template <class T>
void cv_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  // x (N, C, H, W), w (C_out, Cg, KH, KW), bias (C_out) or null, y (N, C_out, OH, OW)
  constexpr int V = kLanes<T>;
  const CvPlan p = plan_of<T>(s);
  std::unique_ptr<int64_t[]> off(new int64_t[p.Kc]);  // (Kc): tap (c, kh, kw) -> xp offset
  for (int64_t c = 0; c < p.Cg; ++c)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw)
        off[(c * s.KH + kh) * s.KW + kw] = c * p.plane + kh * p.Wp + kw;
  // packed (G, nblk, Kc, V): lane l of block blk is channel g*Cog + blk*V + l, zero past Cog;
  // each block is its (m, Kc) rows of w transposed (zeroed first only when a block is partial).
  const int64_t packed_size = p.G * p.nblk * p.Kc * V;
  std::unique_ptr<T[]> packed(new T[packed_size]);
  if (p.Cog % V != 0) std::fill(packed.get(), packed.get() + packed_size, T(0));
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t blk = 0; blk < p.nblk; ++blk)
      load_transposed(w + (g * p.Cog + blk * V) * p.Kc, p.Kc, std::min<int64_t>(V, p.Cog - blk * V),
                      packed.get() + (g * p.nblk + blk) * p.Kc * V, V);
  // Tile: RW balanced columns, as many rows as the accumulators allow.
  const int64_t RW = balanced_chunk(s.OW, kMaxRW);
  const int64_t RH = std::max<int64_t>(1, std::min<int64_t>({kMaxAcc / RW, kMaxRH, s.OH}));
  const int64_t xp_size = p.pad ? s.C * p.plane : 0;
  const int64_t per_thread = xp_size + p.P * V;  // xp, then one block's outputs (P, V)
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
  const auto seq = std::make_index_sequence<kMaxRH * kMaxRW>{};
#pragma omp parallel
  {
    T* xp = scratch.get() + omp_get_thread_num() * per_thread;  // (C, Hp, Wp)
    T* yb = xp + xp_size;                                       // (P, V)
    std::fill(xp, xp + xp_size, T(0));
#pragma omp for schedule(static) nowait  // the end of the region is the barrier
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xi = image_frame(s, p, x, n, xp);  // (C, Hp, Wp)
      T* y_n = y + n * s.C_out * p.P;                // (C_out, OH, OW)
      for (int64_t g = 0; g < p.G; ++g)
        for (int64_t blk = 0; blk < p.nblk; ++blk) {
          const T* a = packed.get() + (g * p.nblk + blk) * p.Kc * V;  // (Kc, V)
          const int64_t co0 = g * p.Cog + blk * V;
          for (int64_t oh0 = 0; oh0 < s.OH; oh0 += RH) {
            const int64_t rh = std::min(RH, s.OH - oh0);
            for (int64_t ow0 = 0; ow0 < s.OW; ow0 += RW) {
              const int64_t rw = std::min(RW, s.OW - ow0);
              forward_tile_for<T>(rh, rw, seq)(p.Kc, off.get(), a,
                                                xi + g * p.Cg * p.plane + oh0 * p.Wp + ow0, p.Wp,
                                                yb + (oh0 * s.OW + ow0) * V, s.OW * V);
            }
          }
          store_transposed(yb, p.P, std::min<int64_t>(V, p.Cog - blk * V),
                           bias ? bias + co0 : nullptr, s.relu, y_n + co0 * p.P, V);
        }
    }
  }
}
template void cv_forward<float>(const Conv2dShape&, const float*, const float*, const float*,
                                float*);
template void cv_forward<double>(const Conv2dShape&, const double*, const double*, const double*,
                                 double*);

template <class T>
void cv_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w) {
  // x (N, C, H, W), grad_y (N, C_out, OH, OW), grad_w (C_out, Cg, KH, KW)
  constexpr int V = kLanes<T>;
  const CvPlan p = plan_of<T>(s);
  const int64_t TW = balanced_chunk(s.KW, kMaxTW);
  const int64_t TH = std::max<int64_t>(1, std::min<int64_t>({kMaxAcc / TW, kMaxTH, s.KH}));
  const int64_t nb = p.G * p.nblk;  // channel blocks of all groups
  const int64_t xp_size = p.pad ? s.C * p.plane : 0;
  const int64_t part_size = nb * p.Kc * V;
  // Per thread: xp (C, Hp, Wp), gyt (nb, P, V), part (nb, Kc, V) last.
  const int64_t per_thread = xp_size + nb * p.P * V + part_size;
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
  const auto seq = std::make_index_sequence<kMaxTH * kMaxTW>{};
#pragma omp parallel
  {
    const int threads = omp_get_num_threads();
    T* xp = scratch.get() + omp_get_thread_num() * per_thread;  // (C, Hp, Wp)
    T* gyt = xp + xp_size;                                      // (nb, P, V)
    T* part = gyt + nb * p.P * V;                               // (nb, Kc, V)
    std::fill(xp, xp + per_thread, T(0));  // borders, unused lanes and partial sums start at 0
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xi = image_frame(s, p, x, n, xp);  // (C, Hp, Wp)
      for (int64_t g = 0; g < p.G; ++g)
        for (int64_t blk = 0; blk < p.nblk; ++blk) {
          const int64_t co0 = g * p.Cog + blk * V;
          const int64_t m = std::min<int64_t>(V, p.Cog - blk * V);
          load_transposed(grad_y + (n * s.C_out + co0) * p.P, p.P, m,
                          gyt + (g * p.nblk + blk) * p.P * V, V);
        }
      for (int64_t g = 0; g < p.G; ++g)
        for (int64_t blk = 0; blk < p.nblk; ++blk) {
          const T* gb = gyt + (g * p.nblk + blk) * p.P * V;  // (P, V)
          T* pb = part + (g * p.nblk + blk) * p.Kc * V;       // (Kc, V)
          for (int64_t c = 0; c < p.Cg; ++c)
            for (int64_t kh0 = 0; kh0 < s.KH; kh0 += TH)
              for (int64_t kw0 = 0; kw0 < s.KW; kw0 += TW) {
                const int64_t th = std::min(TH, s.KH - kh0), tw = std::min(TW, s.KW - kw0);
                const T* xc = xi + (g * p.Cg + c) * p.plane + kh0 * p.Wp + kw0;  // at (kh0, kw0)
                weight_tile_for<T>(th, tw, seq)(s.OH, s.OW, gb, xc, p.Wp,
                                                pb + ((c * s.KH + kh0) * s.KW + kw0) * V, s.KW * V);
              }
        }
    }
    // The implicit barrier above makes every thread's partial sums complete.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.C_out * p.Kc; ++i) {
      const int64_t co = i / p.Kc, t = i % p.Kc;
      const int64_t g = co / p.Cog, cg = co % p.Cog;
      const int64_t at = ((g * p.nblk + cg / V) * p.Kc + t) * V + cg % V;  // in part
      T acc = 0;
      for (int u = 0; u < threads; ++u)
        acc += scratch[u * per_thread + per_thread - part_size + at];
      grad_w[i] = acc;
    }
  }
}
template void cv_backward_weight<float>(const Conv2dShape&, const float*, const float*, float*);
template void cv_backward_weight<double>(const Conv2dShape&, const double*, const double*, double*);

}  // namespace dlcore::cpu::DLCORE_ISA

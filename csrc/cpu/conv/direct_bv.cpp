// conv2d's direct path, batch-in-vector variant (stride 1, dilation 1, groups 1): the forward
// conv that backward_input runs when the layer has few input channels (csrc/cpu/ref/conv2d.cpp
// transposes the problem and decides).
//
// Why: LeNet conv2's backward_input is the forward conv of grad_y (64, 16, 10, 10) padded by 4
// with 6 output channels. The wide variant computes 256 wide positions for 196 and multiplies
// the zero padding: about half its taps (0.6 ms at 1 thread, twice the forward). Channels in
// vector would fill 6 of 16 lanes. Here the V = (vector bytes / sizeof(T)) lanes hold V images,
// every weight is a broadcast, and each output row visits only the kernel rows that land inside
// the image; only the columns of a tile's kernel-column range that fall on padding are wasted
// (LeNet conv2: 60 of 50 useful per row and channel pair, against 196 -> 256 and 25 -> 12.5 taps).
//
// y[n, co, oh, ow] = sum_{c, kh, kw} w[co, c, kh, kw] * x[n, c, oh + kh - ph, ow + kw - pw]
// Tile: RC output channels x RW output columns of one output row, V images in the lanes; per
// tap (c, kh, kw) RC weight broadcasts, RW vector loads and RC*RW FMAs. kh runs over
// [max(0, ph - oh), min(KH, H + ph - oh)) (rows inside x), kw over the union of the tile's
// columns' valid ranges; the columns left of 0 and right of W read zeros from the frame.
//
// Layout, per group of V images (the last one partial: its missing lanes are zero):
//   xt (C, H, Wp, V), Wp = W + 2 pw: x transposed, images in the lanes, zero columns either side
//   yt (C_out, OH, OW, V): the outputs, transposed back into y (16 x 16 register transposes on
//      AVX-512 float, csrc/cpu/conv/transpose_parts.h)
//   wp (C*KH*KW, C_out): the weights, tap-major, so a tile's RC broadcasts are adjacent.
// Summation order: per output, c, kh, kw ascending (the padding taps skipped add zero).
// Threads: whole groups of V images per thread (omp for, static), scratch allocated before the
// parallel region (a failed allocation raises instead of terminating).
//
// Tested: tests/kernels/test_conv_kernels.py (cases "bv_*": every ISA, float32 / float64,
// partial image groups, padding up to K - 1, odd widths, 1 and 2 threads), and through
// backward_input's gradient checks. Timed: LeNet conv2 (64, 6 -> 16, 14x14, k5) backward_input,
// 1 thread, float32, AVX-512, min of 300 calls, alternating builds: see the numbers in
// csrc/cpu/ref/conv2d.cpp's header.
// Bound: 2*N*C_out*C*KH*KW*OH*OW flops times (computed / useful taps, 1.2 for LeNet conv2's
// backward_input) times V*groups/N for a partial last group.
#include "cpu/conv/direct_bv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <utility>

#include "cpu/conv/conv_dims.h"
#include "cpu/transpose_parts.h"
#include "cpu/kernels.h"
#include "cpu/vector_width.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Registers: RC*RW accumulators + RC broadcasts + 1 load must fit the 32 zmm (AVX-512) or 16
// ymm / xmm registers.
constexpr int kRegisters = kVectorBytes == 64 ? 32 : 16;
constexpr int kMaxRC = kVectorBytes == 64 ? 6 : 3;
constexpr int kMaxRW = 8;

struct BvPlan {
  int64_t Wp;              // frame width W + 2 pw
  int64_t P, HW, taps;     // OH*OW, H*W, C*KH*KW
  int64_t xt_size, yt_size;
  int64_t RC, RW;          // tile
};

template <class T>
BvPlan plan_of(const Conv2dShape& s) {
  constexpr int V = kLanes<T>;
  BvPlan p;
  p.Wp = s.W + 2 * s.pad_w;
  p.P = s.OH * s.OW;
  p.HW = s.H * s.W;
  p.taps = s.C * s.KH * s.KW;
  p.xt_size = s.C * s.H * p.Wp * V;
  p.yt_size = s.C_out * p.P * V;
  p.RC = balanced_chunk(s.C_out, kMaxRC);
  p.RW = std::min<int64_t>(kMaxRW, balanced_chunk(s.OW, (kRegisters - 1 - p.RC) / p.RC));
  return p;
}

// Geometry of one tile call.
struct BvTile {
  int64_t C, H, KH, KW, Wp, C_out;
  int64_t kh_lo, kh_hi, kw_lo, kw_hi;  // the taps visited
  int64_t row0;                         // frame row of kh = 0: oh - ph (may be negative)
};

// tap(xv, wv) for each tap (c, kh, kw) the tile visits, in order: xv the frame at (c, row0 + kh,
// ow0 + kw) (positions V lanes apart), wv the tap's C_out weights from channel co0.
template <class T, class Tap>
[[gnu::always_inline]] inline void for_each_tap(const BvTile& g, const T* __restrict wp, const T* __restrict xt,
                                                const Tap& tap) {
  constexpr int V = kLanes<T>;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t kh = g.kh_lo; kh < g.kh_hi; ++kh) {
      const T* __restrict xr = xt + ((c * g.H + g.row0 + kh) * g.Wp) * V;  // (Wp - ow0, V)
      const T* __restrict wr = wp + (c * g.KH + kh) * g.KW * g.C_out;      // (KW, C_out)
      for (int64_t kw = g.kw_lo; kw < g.kw_hi; ++kw) tap(xr + kw * V, wr + kw * g.C_out);
    }
  }
}

// out[(i*P + j)*V + lane] := sum_{c, kh, kw} wp[tap*C_out + i] * xt[c, row0 + kh, ow0 + j + kw][lane]
// for i < RC, j < RW. xt points at the group's frame column ow0 (row 0, channel 0); wp at
// channel co0; out at yt[co0, oh, ow0].
template <class T, int RC, int RW>
void bv_tile(const BvTile& g, const T* __restrict wp, const T* __restrict xt, T* __restrict out,
             int64_t P) {
  constexpr int V = kLanes<T>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // On zmm values, as direct_cv.cpp's forward tile (the portable arrays below had GCC zero the
    // accumulators through the stack): LeNet conv2's backward_input, 1 thread, min of 9 x 300
    // calls, three alternating pairs: 394.5-396.3 -> 358.9-359.0 us.
    __m512 vacc[RC * RW];
#pragma GCC unroll 32
    for (int i = 0; i < RC * RW; ++i) vacc[i] = _mm512_setzero_ps();
    for_each_tap(g, wp, xt, [&](const float* __restrict xv, const float* __restrict wv) {
      __m512 x[RW];
#pragma GCC unroll 8
      for (int j = 0; j < RW; ++j) x[j] = _mm512_loadu_ps(xv + j * V);
#pragma GCC unroll 6
      for (int i = 0; i < RC; ++i) {
        const __m512 wi = _mm512_set1_ps(wv[i]);
#pragma GCC unroll 8
        for (int j = 0; j < RW; ++j) vacc[i * RW + j] = _mm512_fmadd_ps(wi, x[j], vacc[i * RW + j]);
      }
    });
#pragma GCC unroll 6
    for (int i = 0; i < RC; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < RW; ++j) _mm512_storeu_ps(out + (i * P + j) * V, vacc[i * RW + j]);
    return;
  }
#endif
  T acc[RC * RW][V];
  for (int i = 0; i < RC * RW; ++i)
    for (int l = 0; l < V; ++l) acc[i][l] = T(0);
  for_each_tap(g, wp, xt, [&](const T* __restrict xv, const T* __restrict wv) {
#pragma GCC unroll 6
    for (int i = 0; i < RC; ++i) {
      const T wi = wv[i];
#pragma GCC unroll 8
      for (int j = 0; j < RW; ++j) {
#pragma omp simd
        for (int l = 0; l < V; ++l) acc[i * RW + j][l] += wi * xv[j * V + l];
      }
    }
  });
  for (int i = 0; i < RC; ++i)
    for (int j = 0; j < RW; ++j)
      for (int l = 0; l < V; ++l) out[(i * P + j) * V + l] = acc[i * RW + j][l];
}

template <class T>
using BvTileFn = void (*)(const BvTile&, const T*, const T*, T*, int64_t);

// The instantiation for a tile of rc x rw (1 <= rc <= kMaxRC, 1 <= rw <= kMaxRW).
template <class T, std::size_t... I>
BvTileFn<T> bv_tile_for(int64_t rc, int64_t rw, std::index_sequence<I...>) {
  static constexpr BvTileFn<T> table[] = {
      &bv_tile<T, static_cast<int>(I) / kMaxRW + 1, static_cast<int>(I) % kMaxRW + 1>...};
  return table[(rc - 1) * kMaxRW + rw - 1];
}

}  // namespace

bool bv_fits(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1 && s.groups == 1 &&
         s.pad_h < s.KH && s.pad_w < s.KW;
}

template <class T>
void bv_forward(const Conv2dShape& s, const T* x, const T* w, T* y) {
  // x (N, C, H, W), w (C_out, C, KH, KW), y (N, C_out, OH, OW)
  constexpr int V = kLanes<T>;
  const BvPlan p = plan_of<T>(s);
  std::unique_ptr<T[]> wp(new T[p.taps * s.C_out]);  // (taps, C_out)
  for (int64_t co = 0; co < s.C_out; ++co)
    for (int64_t t = 0; t < p.taps; ++t) wp[t * s.C_out + co] = w[co * p.taps + t];
  const int64_t groups = (s.N + V - 1) / V;
  const int64_t per_thread = p.xt_size + p.yt_size;
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
  const auto seq = std::make_index_sequence<kMaxRC * kMaxRW>{};
#pragma omp parallel
  {
    T* xt = scratch.get() + omp_get_thread_num() * per_thread;  // (C, H, Wp, V)
    T* yt = xt + p.xt_size;                                     // (C_out, OH, OW, V)
    std::fill(xt, xt + p.xt_size, T(0));                        // the zero columns
#pragma omp for schedule(static)
    for (int64_t grp = 0; grp < groups; ++grp) {
      const int64_t n0 = grp * V, m = std::min<int64_t>(V, s.N - n0);
      if (m < V) std::fill(xt, xt + p.xt_size, T(0));  // lanes past the last image
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t h = 0; h < s.H; ++h)
          load_transposed(x + (n0 * s.C + c) * p.HW + h * s.W, s.W, m,
                          xt + ((c * s.H + h) * p.Wp + s.pad_w) * V, V, s.C * p.HW);
      BvTile g{s.C, s.H, s.KH, s.KW, p.Wp, s.C_out, 0, 0, 0, 0, 0};
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        g.kh_lo = std::max<int64_t>(0, s.pad_h - oh);
        g.kh_hi = std::min<int64_t>(s.KH, s.H + s.pad_h - oh);
        g.row0 = oh - s.pad_h;
        for (int64_t ow0 = 0; ow0 < s.OW; ow0 += p.RW) {
          const int64_t rw = std::min(p.RW, s.OW - ow0);
          g.kw_lo = std::max<int64_t>(0, s.pad_w - (ow0 + rw - 1));
          g.kw_hi = std::min<int64_t>(s.KW, s.W + s.pad_w - ow0);
          for (int64_t co0 = 0; co0 < s.C_out; co0 += p.RC) {
            const int64_t rc = std::min(p.RC, s.C_out - co0);
            bv_tile_for<T>(rc, rw, seq)(g, wp.get() + co0, xt + ow0 * V,
                                        yt + (co0 * p.P + oh * s.OW + ow0) * V, p.P);
          }
        }
      }
      for (int64_t co = 0; co < s.C_out; ++co)
        store_transposed(yt + co * p.P * V, p.P, m, static_cast<const T*>(nullptr), false,
                         y + (n0 * s.C_out + co) * p.P, V, s.C_out * p.P);
    }
  }
}
template void bv_forward<float>(const Conv2dShape&, const float*, const float*, float*);
template void bv_forward<double>(const Conv2dShape&, const double*, const double*, double*);

}  // namespace dlcore::cpu::DLCORE_ISA

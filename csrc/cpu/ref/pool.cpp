// max_pool2d and avg_pool2d, forward and backward, NCHW: the portable kernels, the reference
// rules, and the dispatch to the float 2x2 stride-2 SIMD kernels (pool_avx512.cpp, pool_avx2.cpp).
//
// Math:   window (oh, ow) covers rows h = oh*stride_h - pad_h + kh*dil_h (kh < KH), columns
//         w likewise; positions outside [0, H) x [0, W) are padding and never win / add.
//         max:  y = max over the window, visiting taps in row-major window order with the rule
//               `v > best || isnan(v)` (PyTorch's): ties keep the first position, a NaN always
//               wins and a later NaN takes over. A window with no in-bounds element (only
//               possible with dilation) gives y = -inf and no position, which backward skips.
//               Where the max was is written as one of (or neither, when no backward follows):
//                 plane index  int64 h*W + w inside the (H, W) plane, -1 for an empty window
//                              (PyTorch's return_indices);
//                 window index uint8 kh*KW + kw inside the window, 255 for an empty window
//                              (KH*KW <= 255): 1 byte instead of 8 for autograd's own use.
//         avg:  y = sum over the in-bounds window / divisor, exactly as PyTorch: the window is
//               first clipped to the padded input [-pad, H + pad), giving the
//               count_include_pad divisor, then to the input, giving the other divisor. Both
//               are a row factor times a column factor.
// Layout: x, grad_x (N, C, H, W); y, grad_y, index (N, C, OH, OW); all C-contiguous.
// Preconditions (checked in csrc/bindings/ops_pool.cpp): sizes >= 1 (N may be 0), OH/OW from
//         PyTorch's floor/ceil formula, pad <= kernel / 2; avg pooling has dil_h = dil_w = 1;
//         plane index values lie in [0, H*W) or are -1; window index values < KH*KW or 255.
// Paths, per (n, c) plane (what each measured is at the end):
//   forward   the interior, the windows lying wholly inside the plane (a rectangle of them),
//             runs a dense loop: the float 2x2 stride-2 SIMD kernel where this ISA has one
//             (pool_avx512.cpp: 2 rows x 32 floats -> 16 outputs, even/odd lanes split with
//             permutex2var; pool_avx2.cpp likewise with 8), else the portable dense loops below
//             (taps outside, a chunk of output columns inside, selects not branches, so GCC
//             vectorises them). The windows around it (padding, ceil-mode overhang) run the
//             general per-window loop. avg sums in T over the interior when KH*KW <= 16 (float:
//             at most 16 terms, well within 1e-5 relative of the float64 oracle), else in double.
//   backward  float 2x2 stride 2 (disjoint windows): the SIMD kernel writes grad_x over the
//             interior in one pass, no zero fill (max: g where the saved index names the
//             element, else 0; avg: g / 4), disjoint_row the odd edges and padding. Otherwise
//             max zero-fills, then adds each g at its index in output order (deterministic; for
//             disjoint windows too: the one-pass scalar write lost, 22 vs 2.5 ms); avg writes
//             disjoint windows (stride >= kernel) in one pass, window by window, and overlapping
//             ones zero-fill, then add each window's share in row-major window order.
//             Only indices made by forward are meaningful: one that lies outside its own window
//             is ignored by the SIMD kernels (as by the CUDA gather), added where it points by
//             the portable scatter.
// Overwrite: every kernel overwrites its outputs; windows of one plane never touch another.
// Threads: one OpenMP chunk of (n, c) planes per thread; small tensors stay on one thread.
// Tested: tests/kernels/test_pool_kernels.py against NumPy float64 loop references (max
//         forward bitwise equal, both index kinds equal), every ISA, float32 and float64,
//         shapes that reach each path and each SIMD tail (widths 1..40, 67), NaN, ties, +-0.
// Bound:  memory: forward reads x and writes y (+ 1 byte per output for the window index);
//         backward reads grad_y (+ index) and writes grad_x. (32, 64, 56, 56) 2x2/2 float:
//         32.1 MB forward, 64.2 MB forward + backward (+ 3.2 MB of window index): 1.1 and
//         2.3 ms at the ~28 GB/s one-thread NumPy copy bandwidth here.
// Measured: that shape, kernel only (_C calls), 1 thread, AVX-512, min of 15, ms, on the
//         general per-window loops | the portable paths | the SIMD kernels (the first two by
//         switching the faster paths off in a scratch build):
//           max forward, no index       33.4 | 2.6 | 0.93      (was 3.26 with int64 index)
//           max forward, window index   33.7 | 3.4 | 1.05
//           max forward, plane index    34.6 | 3.2 | 1.6
//           max backward, window index  12.4 | 4.4 | 0.92
//           max backward, plane index    2.5 | 2.5 | 2.2      (reads 12.8 MB of index)
//           avg forward                  7.5 | 2.0 | 0.82      (was 4.70)
//           avg backward                11.3 | 8.2 | 0.93
//         AVX2 SIMD within 10 % of AVX-512 (memory-bound). 3x3 stride 2 pad 1 on
//         (8, 64, 112, 112), portable vs general: max forward 6.6 vs 53, avg forward 3.7 vs 11.6.
//         Through autograd (bench/bench_conv.py --cases maxpool,avgpool, quiet machine, ms,
//         1 / 2 threads, torch channels_last beside): max fwd 1.11 / 0.59 (2.54 / 1.46), avg
//         fwd 1.11 / 0.54 (1.87 / 0.56); fwd+bwd max 4.27 / 3.59 (6.33 / 6.07), avg 4.42 / 4.67
//         (5.79 / 2.80), of which ~1.3-2 ms is autograd copying grad_x for the leaf input
//         (python/dlcore/autograd.py _accumulate_leaf copies arrays that do not own their data,
//         as the host-cache arrays do not); without that copy 3.01 / 1.91 and 2.63 / 1.84.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cpu/kernels.h"
#include "cpu/ref/pool_2x2.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// The float 2x2 stride-2 SIMD kernels (pool_2x2.h) exist in the AVX2 and AVX-512 copies.
#if defined(__AVX2__)
constexpr bool kHasPool2x2 = true;
#else
constexpr bool kHasPool2x2 = false;
#endif
// Whether a T plane may take them (float only).
template <class T>
constexpr bool kSimd2x2 = std::is_same_v<T, float> && kHasPool2x2;

// Below this many window-element visits, threads cost more than they save.
constexpr int64_t kParallelWork = 1 << 15;
// Interior avg windows with at most this many taps sum in T (float: <= 16 roundings of
// partial sums, well inside the 1e-5 relative tolerance); larger ones sum in double.
constexpr int64_t kAvgSumInT = 16;

// The taps k in [lo, hi) of a window starting at `start` with `taps` taps `dil` apart that
// land inside [0, size). Empty (lo >= hi) when none does.
struct TapRange {
  int64_t lo, hi;
};
inline TapRange tap_range(int64_t start, int64_t taps, int64_t dil, int64_t size) {
  const int64_t lo = start < 0 ? (-start + dil - 1) / dil : 0;
  const int64_t hi = start > size - 1 ? 0 : std::min(taps, (size - 1 - start) / dil + 1);
  return {lo, hi};
}

// avg_pool2d's clipped window along one axis and its divisor factor (PyTorch rule).
struct AvgRange {
  int64_t lo, hi;    // in-bounds [lo, hi)
  int64_t factor;    // divisor factor: padded length, or in-bounds length
};
inline AvgRange avg_range(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size, bool include_pad) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + k, size + pad);
  const int64_t lo = std::max<int64_t>(start, 0), hi = std::min(end, size);
  return {lo, hi, include_pad ? end - start : hi - lo};
}

inline bool use_threads(const Pool2dShape& s) {
  return s.N * s.C * s.OH * s.OW * s.KH * s.KW >= kParallelWork;
}

// The outputs [lo, hi) along one axis whose window lies wholly inside [0, size).
struct Span {
  int64_t lo, hi;
};
inline Span interior(int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t size) {
  const int64_t lo = std::min(out, (pad + stride - 1) / stride);
  const int64_t last = size + pad - ((k - 1) * dil + 1);  // the largest in-range window start + pad
  const int64_t hi = last < 0 ? lo : std::clamp(last / stride + 1, lo, out);
  return {lo, hi};
}

// The rectangle of interior windows of a plane.
struct Rect {
  Span h, w;
  bool empty() const { return h.lo >= h.hi || w.lo >= w.hi; }
};
inline Rect interior_rect(const Pool2dShape& s) {
  return {interior(s.OH, s.KH, s.stride_h, s.pad_h, s.dil_h, s.H),
          interior(s.OW, s.KW, s.stride_w, s.pad_w, s.dil_w, s.W)};
}

// Calls f(oh, ow) for every window of the plane outside rectangle r.
template <class F>
void for_border(const Pool2dShape& s, const Rect& r, F&& f) {
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    const bool inside = oh >= r.h.lo && oh < r.h.hi && !r.empty();
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      if (inside && ow == r.w.lo) ow = r.w.hi;
      if (ow < s.OW) f(oh, ow);
    }
  }
}

// Whether the float 2x2 stride-2 SIMD kernels serve this geometry.
inline bool is_2x2s2(const Pool2dShape& s) {
  return s.KH == 2 && s.KW == 2 && s.stride_h == 2 && s.stride_w == 2 && s.dil_h == 1 && s.dil_w == 1 &&
         s.H * s.W < (int64_t(1) << 31);
}
inline Pool2x2Rect rect_2x2(const Pool2dShape& s, const Rect& r) {
  const int64_t h0 = r.h.lo * 2 - s.pad_h, w0 = r.w.lo * 2 - s.pad_w;
  return {s.W, r.h.hi - r.h.lo, r.w.hi - r.w.lo, s.OW, h0 * s.W + w0};
}

enum class IndexKind { none, window };  // what max_interior tracks besides the max

// ---- max forward ---------------------------------------------------------------------------
// One window by the general rule, any padding / dilation.
template <class T>
void max_window(const Pool2dShape& s, const T* xp, int64_t oh, int64_t ow, T* yp, int64_t* pidx, uint8_t* widx) {
  const int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  const TapRange rh = tap_range(h0, s.KH, s.dil_h, s.H), rw = tap_range(w0, s.KW, s.dil_w, s.W);
  T best = -std::numeric_limits<T>::infinity();
  int64_t best_kh = -1, best_kw = -1;
  if (rh.lo < rh.hi && rw.lo < rw.hi) best_kh = rh.lo, best_kw = rw.lo;
  for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
    const T* row = xp + (h0 + kh * s.dil_h) * s.W + w0;  // (W) shifted to this window
    for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
      const T v = row[kw * s.dil_w];
      if (v > best || v != v) best = v, best_kh = kh, best_kw = kw;
    }
  }
  const int64_t o = oh * s.OW + ow;
  yp[o] = best;
  if (pidx) pidx[o] = best_kh < 0 ? -1 : (h0 + best_kh * s.dil_h) * s.W + w0 + best_kw * s.dil_w;
  if (widx) widx[o] = best_kh < 0 ? kNoWindowTap : static_cast<uint8_t>(best_kh * s.KW + best_kw);
}

// The interior rectangle r of one plane: taps outside, output columns inside, selects instead
// of branches, so the compiler vectorises across ow. Row-major tap order with a strict `>`
// keeps the first maximum; `v != v` lets a NaN take over, exactly like max_window. Each row
// goes in chunks of kChunk outputs whose max and index live in local arrays (no aliasing with
// the outputs; the window index is tracked as int32, the width of a float lane, and narrowed
// to uint8 at the end: tracked in place as uint8 it did not vectorise, 15.4 -> 3.4 ms on the
// AVX-512 2x2/2 benchmark without the SIMD kernel). No index or the window index; the plane
// index goes through max_interior_plane.
template <class T, IndexKind kind>
void max_interior(const Pool2dShape& s, const Rect& r, const T* xp, T* yp, uint8_t* widx) {
  constexpr int64_t kChunk = 256;  // 256 x (8 + 4) bytes at most: stays in L1
  T best[kChunk];
  int32_t arg[kChunk];  // window position kh*KW + kw
  const int64_t W = s.W, OW = s.OW, KH = s.KH, KW = s.KW, sh = s.stride_h, sw = s.stride_w;
  const int64_t dh = s.dil_h, dw = s.dil_w, n = r.w.hi - r.w.lo;
  for (int64_t oh = r.h.lo; oh < r.h.hi; ++oh) {
    const int64_t o0 = oh * OW + r.w.lo;
    for (int64_t c = 0; c < n; c += kChunk) {
      const int64_t m = std::min(kChunk, n - c);
      const int64_t b0 = (oh * sh - s.pad_h) * W + (r.w.lo + c) * sw - s.pad_w;  // plane offset of tap (0, 0)
      for (int64_t i = 0; i < m; ++i) {
        best[i] = xp[b0 + i * sw];
        if constexpr (kind == IndexKind::window) arg[i] = 0;
      }
      for (int64_t kh = 0; kh < KH; ++kh) {
        for (int64_t kw = (kh == 0 ? 1 : 0); kw < KW; ++kw) {
          const int64_t base = b0 + kh * dh * W + kw * dw;  // plane offset of tap (kh, kw), i = 0
          const T* row = xp + base;
          const int32_t k = static_cast<int32_t>(kh * KW + kw);
          for (int64_t i = 0; i < m; ++i) {
            const T v = row[i * sw];
            const bool take = v > best[i] || v != v;
            best[i] = take ? v : best[i];
            if constexpr (kind == IndexKind::window) arg[i] = take ? k : arg[i];
          }
        }
      }
      std::copy(best, best + m, yp + o0 + c);
      if constexpr (kind == IndexKind::window)
        for (int64_t i = 0; i < m; ++i) widx[o0 + c + i] = static_cast<uint8_t>(arg[i]);
    }
  }
}

// max_interior for the int64 plane index: the same loops writing y and the index in place
// (the chunked form measured 6.0 ms vs 3.1 for this one on the AVX-512 2x2/2 benchmark).
template <class T>
void max_interior_plane(const Pool2dShape& s, const Rect& r, const T* xp, T* yp, int64_t* pidx) {
  // Sizes as locals: the index stores could otherwise alias the fields of `s`, which would
  // stop the compiler from computing the trip count (and vectorising).
  const int64_t W = s.W, OW = s.OW, KH = s.KH, KW = s.KW, sh = s.stride_h, sw = s.stride_w;
  const int64_t dh = s.dil_h, dw = s.dil_w, n = r.w.hi - r.w.lo;
  for (int64_t oh = r.h.lo; oh < r.h.hi; ++oh) {
    T* __restrict yrow = yp + oh * OW + r.w.lo;        // (n)
    int64_t* __restrict prow = pidx + oh * OW + r.w.lo;  // (n)
    const int64_t base0 = (oh * sh - s.pad_h) * W + r.w.lo * sw - s.pad_w;  // plane offset of tap (0, 0)
    for (int64_t i = 0; i < n; ++i) {
      yrow[i] = xp[base0 + i * sw];
      prow[i] = base0 + i * sw;
    }
    for (int64_t kh = 0; kh < KH; ++kh) {
      for (int64_t kw = (kh == 0 ? 1 : 0); kw < KW; ++kw) {
        const int64_t base = base0 + kh * dh * W + kw * dw;  // plane offset of tap (kh, kw), i = 0
        const T* __restrict row = xp + base;
        for (int64_t i = 0; i < n; ++i) {
          const T v = row[i * sw];
          const bool take = v > yrow[i] || v != v;
          yrow[i] = take ? v : yrow[i];
          prow[i] = take ? base + i * sw : prow[i];
        }
      }
    }
  }
}

template <class T>
void max_forward_plane(const Pool2dShape& s, const Rect& r, const T* xp, T* yp, int64_t* pidx, uint8_t* widx) {
  if (!r.empty()) {
    if constexpr (kSimd2x2<T>) {
      if (is_2x2s2(s)) {
        const Pool2x2Rect q = rect_2x2(s, r);
        const int64_t o0 = r.h.lo * s.OW + r.w.lo;
        max_pool2d_forward_2x2s2(q, xp + q.plane_base, yp + o0, pidx ? pidx + o0 : nullptr, widx ? widx + o0 : nullptr);
        for_border(s, r, [&](int64_t oh, int64_t ow) { max_window(s, xp, oh, ow, yp, pidx, widx); });
        return;
      }
    }
    if (pidx) max_interior_plane(s, r, xp, yp, pidx);
    else if (widx) max_interior<T, IndexKind::window>(s, r, xp, yp, widx);
    else max_interior<T, IndexKind::none>(s, r, xp, yp, widx);
  }
  for_border(s, r, [&](int64_t oh, int64_t ow) { max_window(s, xp, oh, ow, yp, pidx, widx); });
}

// ---- backward over disjoint windows --------------------------------------------------------
// Whether every grad_x element lies in at most one window.
inline bool windows_disjoint(const Pool2dShape& s) {
  return s.dil_h == 1 && s.dil_w == 1 && s.stride_h >= s.KH && s.stride_w >= s.KW;
}

// Writes grad_x row h, columns [w_begin, w_end), of one plane when windows_disjoint(s):
// element (h, w) lies in window (oh, ow) = ((h + pad_h) / stride_h, (w + pad_w) / stride_w) at
// tap (kh, kw) = the remainders, if kh < KH, kw < KW and the window exists; value(o, kh, kw,
// h, w) gives its gradient from that window, every other element gets 0.
template <class T, class Value>
void disjoint_row(const Pool2dShape& s, int64_t h, int64_t w_begin, int64_t w_end, T* gxrow, Value&& value) {
  const int64_t oh = (h + s.pad_h) / s.stride_h, kh = (h + s.pad_h) % s.stride_h;
  if (kh >= s.KH || oh >= s.OH) {
    std::fill(gxrow + w_begin, gxrow + w_end, T(0));
    return;
  }
  int64_t ow = (w_begin + s.pad_w) / s.stride_w, kw = (w_begin + s.pad_w) % s.stride_w;
  for (int64_t w = w_begin; w < w_end; ++w) {
    gxrow[w] = kw < s.KW && ow < s.OW ? value(oh * s.OW + ow, kh, kw, h, w) : T(0);
    if (++kw == s.stride_w) kw = 0, ++ow;
  }
}

// Calls row(h, w_begin, w_end) for every part of the (H, W) plane outside the 2x2 block that
// the SIMD kernel wrote for windows r (rows 2*r.h.lo - pad_h .. , columns likewise).
template <class F>
void for_rows_outside(const Pool2dShape& s, const Rect& r, F&& row) {
  const int64_t h_lo = 2 * r.h.lo - s.pad_h, h_hi = 2 * r.h.hi - s.pad_h;
  const int64_t w_lo = 2 * r.w.lo - s.pad_w, w_hi = 2 * r.w.hi - s.pad_w;
  for (int64_t h = 0; h < s.H; ++h) {
    if (h >= h_lo && h < h_hi) {
      row(h, 0, w_lo);
      row(h, w_hi, s.W);
    } else {
      row(h, 0, s.W);
    }
  }
}

// The float 2x2 stride-2 backward of one plane: the SIMD kernel over the interior windows,
// disjoint_row for the rest of the plane (odd edges, padding). False where it does not serve
// (other geometry or element type, or no interior window); the caller takes the portable path.
template <class T, class Simd, class Value>
bool backward_2x2(const Pool2dShape& s, T* gx, Simd&& simd, Value&& value) {
  if constexpr (kSimd2x2<T>) {
    const Rect r = interior_rect(s);
    if (is_2x2s2(s) && !r.empty()) {
      const Pool2x2Rect q = rect_2x2(s, r);
      simd(q, r.h.lo * s.OW + r.w.lo, gx + q.plane_base);
      for_rows_outside(s, r, [&](int64_t h, int64_t w_begin, int64_t w_end) {
        if (w_begin < w_end) disjoint_row(s, h, w_begin, w_end, gx + h * s.W, value);
      });
      return true;
    }
  }
  return false;
}

// avg backward of one plane when windows_disjoint(s), portable: grad_x written once, row by
// row, window by window (one division per window), gaps between windows and after the last
// one set to 0.
template <class T>
void avg_backward_disjoint(const Pool2dShape& s, const T* gy, T* gx) {
  for (int64_t h = 0; h < s.H; ++h) {
    T* row = gx + h * s.W;  // (W)
    const int64_t oh = (h + s.pad_h) / s.stride_h, kh = (h + s.pad_h) % s.stride_h;
    if (kh >= s.KH || oh >= s.OH) {
      std::fill(row, row + s.W, T(0));
      continue;
    }
    const int64_t fh = avg_range(oh, s.stride_h, s.pad_h, s.KH, s.H, s.count_include_pad).factor;
    const T* g = gy + oh * s.OW;  // (OW)
    int64_t w = 0;
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      const int64_t w0 = ow * s.stride_w - s.pad_w;  // w >= w0 here: w ends where this window starts
      const int64_t fw = avg_range(ow, s.stride_w, s.pad_w, s.KW, s.W, s.count_include_pad).factor;
      const T v = g[ow] / static_cast<T>(fh * fw);
      for (const int64_t end = std::min(w0 + s.stride_w, s.W); w < end; ++w) row[w] = w - w0 < s.KW ? v : T(0);
    }
    std::fill(row + w, row + s.W, T(0));
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* plane_index, uint8_t* window_index) {
  const int64_t planes = s.N * s.C;
  const Rect r = interior_rect(s);
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    const int64_t o = plane * s.OH * s.OW;
    max_forward_plane(s, r, x + plane * s.H * s.W,  // (H, W)
                      y + o,                        // (OH, OW)
                      plane_index ? plane_index + o : nullptr, window_index ? window_index + o : nullptr);
  }
}
DLCORE_INSTANTIATE(max_pool2d_forward, MaxPool2dForwardSig)

template <class T>
void max_pool2d_backward(const Pool2dShape& s, const int64_t* plane_index, const uint8_t* window_index,
                         const T* grad_y, T* grad_x) {
  const int64_t planes = s.N * s.C;
  // Window index -> tap offsets (kh*dil_h, kw*dil_w): no division per output in the scatter.
  int32_t tap_h[256], tap_w[256];
  if (window_index)
    for (int64_t k = 0; k < s.KH * s.KW; ++k)
      tap_h[k] = static_cast<int32_t>(k / s.KW * s.dil_h), tap_w[k] = static_cast<int32_t>(k % s.KW * s.dil_w);
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gx = grad_x + plane * s.H * s.W;                 // (H, W)
    const T* gy = grad_y + plane * s.OH * s.OW;         // (OH, OW)
    const int64_t* pidx = plane_index ? plane_index + plane * s.OH * s.OW : nullptr;     // (OH, OW)
    const uint8_t* widx = window_index ? window_index + plane * s.OH * s.OW : nullptr;  // (OH, OW)
    auto value = [&](int64_t o, int64_t kh, int64_t kw, int64_t h, int64_t w) {
      const bool hit = pidx ? pidx[o] == h * s.W + w : widx[o] == kh * s.KW + kw;
      return hit ? gy[o] : T(0);
    };
    auto simd = [&](const Pool2x2Rect& q, int64_t o0, T* gx0) {
      if constexpr (kSimd2x2<T>)
        max_pool2d_backward_2x2s2(q, pidx ? pidx + o0 : nullptr, widx ? widx + o0 : nullptr, gy + o0, gx0);
    };
    if (backward_2x2(s, gx, simd, value)) continue;
    // Portable: zero-fill, then add each grad_y at its index in output order. For disjoint
    // windows too: a one-pass write measured 22 ms vs 2.5 for this on the 2x2/2 benchmark
    // (scalar per element, vs a memset and one add per window).
    std::fill(gx, gx + s.H * s.W, T(0));
    if (pidx) {
      for (int64_t o = 0; o < s.OH * s.OW; ++o)
        if (pidx[o] >= 0) gx[pidx[o]] += gy[o];
      continue;
    }
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t o = oh * s.OW + ow;
        if (widx[o] == kNoWindowTap) continue;
        const int64_t h = oh * s.stride_h - s.pad_h + tap_h[widx[o]];
        const int64_t w = ow * s.stride_w - s.pad_w + tap_w[widx[o]];
        if (h >= 0 && h < s.H && w >= 0 && w < s.W) gx[h * s.W + w] += gy[o];
      }
    }
  }
}
DLCORE_INSTANTIATE(max_pool2d_backward, MaxPool2dBackwardSig)

namespace {

// One avg window by the general rule (double sums keep float within 1 ulp of the oracle).
template <class T>
void avg_window(const Pool2dShape& s, const T* xp, int64_t oh, int64_t ow, T* yp) {
  const AvgRange rh = avg_range(oh, s.stride_h, s.pad_h, s.KH, s.H, s.count_include_pad);
  const AvgRange rw = avg_range(ow, s.stride_w, s.pad_w, s.KW, s.W, s.count_include_pad);
  T& out = yp[oh * s.OW + ow];
  if (rh.lo >= rh.hi || rw.lo >= rw.hi) {
    out = T(0);
    return;
  }
  double sum = 0;
  for (int64_t h = rh.lo; h < rh.hi; ++h)
    for (int64_t w = rw.lo; w < rw.hi; ++w) sum += xp[h * s.W + w];
  out = static_cast<T>(sum / static_cast<double>(rh.factor * rw.factor));
}

// The interior rectangle r of one plane (divisor KH*KW there in both modes), summed in Acc.
// Like max_interior: chunks of kChunk outputs, taps outside, outputs inside, so the compiler
// vectorises across ow (with the taps inside, GCC gathered the strided loads: 9 ms vs 3.5 on
// the AVX-512 2x2/2 benchmark without the SIMD kernel).
template <class T, class Acc>
void avg_interior(const Pool2dShape& s, const Rect& r, const T* xp, T* yp) {
  constexpr int64_t kChunk = 256;  // 256 x 8 bytes at most: stays in L1
  Acc sum[kChunk];
  const int64_t W = s.W, OW = s.OW, KH = s.KH, KW = s.KW, sh = s.stride_h, sw = s.stride_w;
  const int64_t n = r.w.hi - r.w.lo;
  const Acc divisor = static_cast<Acc>(KH * KW);
  for (int64_t oh = r.h.lo; oh < r.h.hi; ++oh) {
    T* yrow = yp + oh * OW + r.w.lo;  // (n)
    for (int64_t c = 0; c < n; c += kChunk) {
      const int64_t m = std::min(kChunk, n - c);
      const T* x0 = xp + (oh * sh - s.pad_h) * W + (r.w.lo + c) * sw - s.pad_w;  // tap (0, 0), i = 0
      std::fill(sum, sum + m, Acc(0));
      for (int64_t kh = 0; kh < KH; ++kh) {
        for (int64_t kw = 0; kw < KW; ++kw) {
          const T* row = x0 + kh * W + kw;
          for (int64_t i = 0; i < m; ++i) sum[i] += static_cast<Acc>(row[i * sw]);
        }
      }
      for (int64_t i = 0; i < m; ++i) yrow[c + i] = static_cast<T>(sum[i] / divisor);
    }
  }
}

}  // namespace

template <class T>
void avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y) {
  const int64_t planes = s.N * s.C;
  const Rect r = interior_rect(s);
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * s.H * s.W;  // (H, W)
    T* yp = y + plane * s.OH * s.OW;      // (OH, OW)
    if (!r.empty()) {
      bool done = false;
      if constexpr (kSimd2x2<T>) {
        if (is_2x2s2(s)) {
          const Pool2x2Rect q = rect_2x2(s, r);
          avg_pool2d_forward_2x2s2(q, xp + q.plane_base, yp + r.h.lo * s.OW + r.w.lo);
          done = true;
        }
      }
      if (!done) {
        if (s.KH * s.KW <= kAvgSumInT) avg_interior<T, T>(s, r, xp, yp);
        else avg_interior<T, double>(s, r, xp, yp);
      }
    }
    for_border(s, r, [&](int64_t oh, int64_t ow) { avg_window(s, xp, oh, ow, yp); });
  }
}
DLCORE_INSTANTIATE(avg_pool2d_forward, AvgPool2dForwardSig)

template <class T>
void avg_pool2d_backward(const Pool2dShape& s, const T* grad_y, T* grad_x) {
  const int64_t planes = s.N * s.C;
  const bool disjoint = windows_disjoint(s);
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gx = grad_x + plane * s.H * s.W;          // (H, W)
    const T* gy = grad_y + plane * s.OH * s.OW;  // (OH, OW)
    auto value = [&](int64_t o, int64_t, int64_t, int64_t, int64_t) {
      const int64_t fh = avg_range(o / s.OW, s.stride_h, s.pad_h, s.KH, s.H, s.count_include_pad).factor;
      const int64_t fw = avg_range(o % s.OW, s.stride_w, s.pad_w, s.KW, s.W, s.count_include_pad).factor;
      return gy[o] / static_cast<T>(fh * fw);
    };
    auto simd = [&](const Pool2x2Rect& q, int64_t o0, T* gx0) {
      if constexpr (kSimd2x2<T>) avg_pool2d_backward_2x2s2(q, gy + o0, gx0);
    };
    if (backward_2x2(s, gx, simd, value)) continue;
    if (disjoint) {
      avg_backward_disjoint(s, gy, gx);
      continue;
    }
    std::fill(gx, gx + s.H * s.W, T(0));
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const AvgRange rh = avg_range(oh, s.stride_h, s.pad_h, s.KH, s.H, s.count_include_pad);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const AvgRange rw = avg_range(ow, s.stride_w, s.pad_w, s.KW, s.W, s.count_include_pad);
        if (rh.lo >= rh.hi || rw.lo >= rw.hi) continue;
        const T share = gy[oh * s.OW + ow] / static_cast<T>(rh.factor * rw.factor);
        for (int64_t h = rh.lo; h < rh.hi; ++h) {
          T* row = gx + h * s.W;  // (W)
          for (int64_t w = rw.lo; w < rw.hi; ++w) row[w] += share;
        }
      }
    }
  }
}
DLCORE_INSTANTIATE(avg_pool2d_backward, AvgPool2dBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA

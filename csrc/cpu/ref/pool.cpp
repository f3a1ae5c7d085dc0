// max_pool2d and avg_pool2d, forward and backward, NCHW: the portable reference kernels.
//
// Math:   window (oh, ow) covers rows h = oh*stride_h - pad_h + kh*dil_h (kh < KH), columns
//         w likewise; positions outside [0, H) x [0, W) are padding and never win / add.
//         max:  y = max over the window, index = h*W + w of the max inside its (H, W) plane.
//               Ties keep the first position in row-major window order; a NaN always wins
//               and a later NaN takes over its index (PyTorch's update rule
//               `v > best || isnan(v)`). A window with no in-bounds element (only possible
//               with dilation) gives y = -inf and index = -1, which backward skips.
//         avg:  y = sum over the in-bounds window / divisor, exactly as PyTorch: the window is
//               first clipped to the padded input [-pad, H + pad), giving the
//               count_include_pad divisor, then to the input, giving the other divisor.
// Layout: x, grad_x (N, C, H, W); y, grad_y, index (N, C, OH, OW); all C-contiguous.
// Preconditions (checked in csrc/bindings/ops_pool.cpp): sizes >= 1 (N may be 0), OH/OW from
//         PyTorch's floor/ceil formula, pad <= kernel / 2; avg pooling has dil_h = dil_w = 1;
//         max backward's index values lie in [0, H*W) or are -1.
// Overwrite: every kernel overwrites its outputs (backward zero-fills grad_x, then adds each
//         window's share; windows of one plane never touch another plane).
// Threads: one OpenMP task per (n, c) plane; small tensors stay on one thread.
// Tested: tests/kernels/test_pool_kernels.py against a NumPy float64 loop reference (max
//         forward bitwise equal, index equal), every ISA, float32 and float64.
// Bound: memory-bound, one read of x and one write of y per plane (plus index for max).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Below this many window-element visits, threads cost more than they save.
constexpr int64_t kParallelWork = 1 << 15;

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

// avg_pool2d's clipped window along one axis and its two divisor factors (PyTorch rule).
struct AvgRange {
  int64_t lo, hi;    // in-bounds [lo, hi)
  int64_t padded;    // length clipped to [-pad, size + pad)
};
inline AvgRange avg_range(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + k, size + pad);
  return {std::max<int64_t>(start, 0), std::min(end, size), end - start};
}

inline bool use_threads(const Pool2dShape& s) {
  return s.N * s.C * s.OH * s.OW * s.KH * s.KW >= kParallelWork;
}

// Whether every window lies inside the plane with unit dilation (no padding, no ceil-mode
// overhang): the common case (LeNet's 2x2 stride-2 pools), served by max_pool_plane_dense.
inline bool windows_dense(const Pool2dShape& s) {
  return s.pad_h == 0 && s.pad_w == 0 && s.dil_h == 1 && s.dil_w == 1 &&
         (s.OH - 1) * s.stride_h + s.KH <= s.H && (s.OW - 1) * s.stride_w + s.KW <= s.W;
}

// One plane of max_pool2d_forward when windows_dense(s): taps outside, output columns inside,
// selects instead of branches, so the compiler vectorises across ow. Visiting the taps in
// row-major order with a strict `>` keeps the first maximum; `v != v` lets a NaN take over,
// exactly like the general loop below.
template <class T>
void max_pool_plane_dense(const Pool2dShape& s, const T* xp, T* yp, int64_t* ip) {
  // Sizes as locals: the int64 index stores could otherwise alias the fields of `s`, which
  // would stop the compiler from computing the trip count (and vectorising).
  const int64_t W = s.W, OH = s.OH, OW = s.OW, KH = s.KH, KW = s.KW, sh = s.stride_h, sw = s.stride_w;
  for (int64_t oh = 0; oh < OH; ++oh) {
    T* __restrict yrow = yp + oh * OW;          // (OW)
    int64_t* __restrict irow = ip + oh * OW;    // (OW)
    const int64_t h0 = oh * sh;
    for (int64_t ow = 0; ow < OW; ++ow) {
      yrow[ow] = xp[h0 * W + ow * sw];
      irow[ow] = h0 * W + ow * sw;
    }
    for (int64_t kh = 0; kh < KH; ++kh) {
      for (int64_t kw = (kh == 0 ? 1 : 0); kw < KW; ++kw) {
        const int64_t base = (h0 + kh) * W + kw;  // plane offset of tap (kh, kw) at ow = 0
        const T* __restrict row = xp + base;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T v = row[ow * sw];
          const bool take = v > yrow[ow] || v != v;
          yrow[ow] = take ? v : yrow[ow];
          irow[ow] = take ? base + ow * sw : irow[ow];
        }
      }
    }
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* index) {
  const int64_t planes = s.N * s.C;
  const bool dense = windows_dense(s);
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * s.H * s.W;          // (H, W)
    T* yp = y + plane * s.OH * s.OW;              // (OH, OW)
    int64_t* ip = index + plane * s.OH * s.OW;    // (OH, OW)
    if (dense) {
      max_pool_plane_dense(s, xp, yp, ip);
      continue;
    }
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t h0 = oh * s.stride_h - s.pad_h;
      const TapRange rh = tap_range(h0, s.KH, s.dil_h, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = ow * s.stride_w - s.pad_w;
        const TapRange rw = tap_range(w0, s.KW, s.dil_w, s.W);
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = -1;
        if (rh.lo < rh.hi && rw.lo < rw.hi) arg = (h0 + rh.lo * s.dil_h) * s.W + w0 + rw.lo * s.dil_w;
        for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
          const int64_t h = h0 + kh * s.dil_h;
          const T* row = xp + h * s.W;  // (W)
          for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
            const int64_t w = w0 + kw * s.dil_w;
            const T v = row[w];
            if (v > best || v != v) {
              best = v;
              arg = h * s.W + w;
            }
          }
        }
        yp[oh * s.OW + ow] = best;
        ip[oh * s.OW + ow] = arg;
      }
    }
  }
}
DLCORE_INSTANTIATE(max_pool2d_forward, MaxPool2dForwardSig)

template <class T>
void max_pool2d_backward(const Pool2dShape& s, const int64_t* index, const T* grad_y, T* grad_x) {
  const int64_t planes = s.N * s.C;
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gx = grad_x + plane * s.H * s.W;                 // (H, W)
    const T* gy = grad_y + plane * s.OH * s.OW;         // (OH, OW)
    const int64_t* ip = index + plane * s.OH * s.OW;    // (OH, OW)
    std::fill(gx, gx + s.H * s.W, T(0));
    for (int64_t o = 0; o < s.OH * s.OW; ++o)
      if (ip[o] >= 0) gx[ip[o]] += gy[o];
  }
}
DLCORE_INSTANTIATE(max_pool2d_backward, MaxPool2dBackwardSig)

template <class T>
void avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y) {
  const int64_t planes = s.N * s.C;
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x + plane * s.H * s.W;  // (H, W)
    T* yp = y + plane * s.OH * s.OW;      // (OH, OW)
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const AvgRange rh = avg_range(oh, s.stride_h, s.pad_h, s.KH, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const AvgRange rw = avg_range(ow, s.stride_w, s.pad_w, s.KW, s.W);
        if (rh.lo >= rh.hi || rw.lo >= rw.hi) {
          yp[oh * s.OW + ow] = T(0);
          continue;
        }
        // Double accumulation keeps float windows within 1 ulp of the float64 oracle.
        double sum = 0;
        for (int64_t h = rh.lo; h < rh.hi; ++h)
          for (int64_t w = rw.lo; w < rw.hi; ++w) sum += xp[h * s.W + w];
        const int64_t divisor =
            s.count_include_pad ? rh.padded * rw.padded : (rh.hi - rh.lo) * (rw.hi - rw.lo);
        yp[oh * s.OW + ow] = static_cast<T>(sum / static_cast<double>(divisor));
      }
    }
  }
}
DLCORE_INSTANTIATE(avg_pool2d_forward, AvgPool2dForwardSig)

template <class T>
void avg_pool2d_backward(const Pool2dShape& s, const T* grad_y, T* grad_x) {
  const int64_t planes = s.N * s.C;
#pragma omp parallel for schedule(static) if (use_threads(s))
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gx = grad_x + plane * s.H * s.W;          // (H, W)
    const T* gy = grad_y + plane * s.OH * s.OW;  // (OH, OW)
    std::fill(gx, gx + s.H * s.W, T(0));
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const AvgRange rh = avg_range(oh, s.stride_h, s.pad_h, s.KH, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const AvgRange rw = avg_range(ow, s.stride_w, s.pad_w, s.KW, s.W);
        if (rh.lo >= rh.hi || rw.lo >= rw.hi) continue;
        const int64_t divisor =
            s.count_include_pad ? rh.padded * rw.padded : (rh.hi - rh.lo) * (rw.hi - rw.lo);
        const T share = gy[oh * s.OW + ow] / static_cast<T>(divisor);
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

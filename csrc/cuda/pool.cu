// max_pool2d and avg_pool2d, forward and backward, on the GPU: NCHW, float32 / float64, the
// conventions of the CPU kernels (csrc/cpu/ref/pool.cpp), which these reproduce bit for bit,
// except float32 avg forward: the CPU sums windows of <= 16 taps in float (its 2x2 SIMD
// kernels pairwise), this one in double, so the two can differ in the last bits.
//
// Math:   window (oh, ow) covers rows h = oh*stride_h - pad_h + kh*dil_h (kh < KH), columns
//         w likewise; positions outside [0, H) x [0, W) are padding and never win / add.
//         max:  y = max over the window, index = h*W + w of the max inside its (H, W) plane.
//               Ties keep the first position in row-major window order; a NaN always wins
//               and a later NaN takes over (update rule `v > best || v != v`). A window with
//               no in-bounds element (only possible with dilation) gives y = -inf, index -1.
//         avg:  y = sum over the in-bounds window (in double, row-major) / divisor, PyTorch's
//               rule: the window clipped to the padded input [-pad, H + pad) gives the
//               count_include_pad divisor, clipped to the input the other one.
// Backward is a gather, one thread per input pixel: it visits the windows that hold the pixel
// in output order (oh, ow ascending), which is the order the CPU scatter adds them, so the sums
// match the CPU bits and repeat every run (no atomics).
//         max:  grad_x[p] = sum of grad_y[o] over those windows o with index[o] == p.
//         avg:  grad_x[p] = sum of grad_y[o] / divisor(o) (the share rounded to T first).
// Layout: x, grad_x (N, C, H, W); y, grad_y, index (N, C, OH, OW); all C-contiguous.
// Preconditions: check_pool2d_shape (the Python mirror validates first, with friendlier
//         messages). Every output is overwritten; N = 0 launches nothing.
// Tested: pytest tests/cuda/test_pool.py (float64 NumPy oracle, bitwise against the CPU
//         kernels, ties, NaN, empty windows, ceil_mode, count_include_pad, run-twice bits).
// Timed: python bench/bench_cuda.py (inside the "LeNet-5 train step" row; no pool row of its own).
// Bound: memory-bound; forward reads each window (KH*KW loads per output, mostly cached),
//         backward reads grad_y (and index) of the windows holding each pixel.
#include "cuda/pool.h"

#include <math_constants.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"

namespace dlcore::cuda {
namespace {

// Threads per block: a common choice that keeps several blocks resident per SM; the loops are
// grid-stride, one thread per output (forward) or input (backward) element.
constexpr int kThreads = 256;
// Sizes and geometry above this are refused, so no index product can overflow int64.
constexpr int64_t kMaxElems = int64_t{1} << 50;

template <class T> __device__ inline T negative_infinity();
template <> __device__ inline float negative_infinity<float>() { return -CUDART_INF_F; }
template <> __device__ inline double negative_infinity<double>() { return -CUDART_INF; }

__host__ __device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ceil(a / b) for b > 0 and any sign of a.
__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The taps k in [lo, hi) of a window starting at `start`, `taps` taps `dil` apart, that land
// inside [0, size). Empty (lo >= hi) when none does.
struct TapRange {
  int64_t lo, hi;
};
__device__ inline TapRange tap_range(int64_t start, int64_t taps, int64_t dil, int64_t size) {
  const int64_t lo = start < 0 ? ceil_div(-start, dil) : 0;
  const int64_t hi = start > size - 1 ? 0 : min64(taps, (size - 1 - start) / dil + 1);
  return {lo, hi};
}

// The outputs o in [lo, hi) whose window has a tap on input position i along one axis:
// o*stride - pad + k*dil == i for some k < taps. For dil > 1 a caller must still check that
// i + pad - o*stride is a multiple of dil.
struct OutRange {
  int64_t lo, hi;
};
__device__ inline OutRange windows_holding(int64_t i, int64_t pad, int64_t taps, int64_t dil, int64_t stride,
                                           int64_t out) {
  const int64_t lo = max64(0, ceil_div(i + pad - (taps - 1) * dil, stride));
  const int64_t hi = min64(out, (i + pad) / stride + 1);  // i + pad >= 0
  return {lo, hi};
}

// avg_pool2d's window along one axis: in-bounds [lo, hi) and its length clipped to the
// padded input (the count_include_pad divisor factor), PyTorch's rule.
struct AvgWindow {
  int64_t lo, hi, padded;
};
__device__ inline AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t end = min64(start + k, size + pad);
  return {max64(start, 0), min64(end, size), end - start};
}

__device__ inline int64_t avg_divisor(const Pool2dShape& s, const AvgWindow& rh, const AvgWindow& rw) {
  return s.count_include_pad ? rh.padded * rw.padded : (rh.hi - rh.lo) * (rw.hi - rw.lo);
}

// ---- kernels ----------------------------------------------------------------------------------

// y, index (N*C, OH, OW) := max and argmax of each window of x (N*C, H, W). One thread per output.
template <class T>
__global__ void max_pool2d_forward_cuda(Pool2dShape s, int64_t total, const T* __restrict__ x,
                                        T* __restrict__ y, int64_t* __restrict__ index) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, plane = i / (s.OW * s.OH);
    const T* xp = x + plane * s.H * s.W;  // (H, W)
    const int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
    const TapRange rh = tap_range(h0, s.KH, s.dil_h, s.H);
    const TapRange rw = tap_range(w0, s.KW, s.dil_w, s.W);
    T best = negative_infinity<T>();
    int64_t arg = -1;
    // The first in-bounds tap holds the argmax until a larger value (or a NaN) replaces it, so
    // an all -inf window still names a real pixel.
    if (rh.lo < rh.hi && rw.lo < rw.hi) arg = (h0 + rh.lo * s.dil_h) * s.W + w0 + rw.lo * s.dil_w;
    for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
      const int64_t h = h0 + kh * s.dil_h;
      for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
        const int64_t w = w0 + kw * s.dil_w;
        const T v = xp[h * s.W + w];
        if (v > best || v != v) {
          best = v;
          arg = h * s.W + w;
        }
      }
    }
    y[i] = best;
    index[i] = arg;
  }
}

// grad_x (N*C, H, W) := for each pixel, the grad_y of the windows holding it whose index names
// it, summed in output order. One thread per input pixel.
template <class T>
__global__ void max_pool2d_backward_cuda(Pool2dShape s, int64_t total, const int64_t* __restrict__ index,
                                         const T* __restrict__ grad_y, T* __restrict__ grad_x) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t iw = i % s.W, ih = (i / s.W) % s.H, plane = i / (s.W * s.H);
    const int64_t self = ih * s.W + iw;                        // this pixel's index in its plane
    const int64_t* ip = index + plane * s.OH * s.OW;           // (OH, OW)
    const T* gy = grad_y + plane * s.OH * s.OW;                // (OH, OW)
    const OutRange rh = windows_holding(ih, s.pad_h, s.KH, s.dil_h, s.stride_h, s.OH);
    const OutRange rw = windows_holding(iw, s.pad_w, s.KW, s.dil_w, s.stride_w, s.OW);
    T acc = T(0);
    for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      if ((ih + s.pad_h - oh * s.stride_h) % s.dil_h != 0) continue;  // falls between taps
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
        if ((iw + s.pad_w - ow * s.stride_w) % s.dil_w != 0) continue;
        const int64_t o = oh * s.OW + ow;
        if (ip[o] == self) acc += gy[o];
      }
    }
    grad_x[i] = acc;
  }
}

// y (N*C, OH, OW) := mean of each window of x (N*C, H, W), summed in double in row-major order
// as the CPU does. One thread per output.
template <class T>
__global__ void avg_pool2d_forward_cuda(Pool2dShape s, int64_t total, const T* __restrict__ x,
                                        T* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, plane = i / (s.OW * s.OH);
    const T* xp = x + plane * s.H * s.W;  // (H, W)
    const AvgWindow rh = avg_window(oh, s.stride_h, s.pad_h, s.KH, s.H);
    const AvgWindow rw = avg_window(ow, s.stride_w, s.pad_w, s.KW, s.W);
    if (rh.lo >= rh.hi || rw.lo >= rw.hi) {
      y[i] = T(0);
      continue;
    }
    double sum = 0;
    for (int64_t h = rh.lo; h < rh.hi; ++h)
      for (int64_t w = rw.lo; w < rw.hi; ++w) sum += xp[h * s.W + w];
    y[i] = static_cast<T>(sum / static_cast<double>(avg_divisor(s, rh, rw)));
  }
}

// grad_x (N*C, H, W) := for each pixel, grad_y / divisor of every window holding it, summed in
// output order. One thread per input pixel.
template <class T>
__global__ void avg_pool2d_backward_cuda(Pool2dShape s, int64_t total, const T* __restrict__ grad_y,
                                         T* __restrict__ grad_x) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t iw = i % s.W, ih = (i / s.W) % s.H, plane = i / (s.W * s.H);
    const T* gy = grad_y + plane * s.OH * s.OW;  // (OH, OW)
    // A pixel lies in window o exactly when o*stride - pad <= i < o*stride - pad + K: it is
    // inside the input, so the clip to [-pad, H + pad) never cuts it off.
    const OutRange rh = windows_holding(ih, s.pad_h, s.KH, 1, s.stride_h, s.OH);
    const OutRange rw = windows_holding(iw, s.pad_w, s.KW, 1, s.stride_w, s.OW);
    T acc = T(0);
    for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      const AvgWindow wh = avg_window(oh, s.stride_h, s.pad_h, s.KH, s.H);
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
        const AvgWindow ww = avg_window(ow, s.stride_w, s.pad_w, s.KW, s.W);
        acc += gy[oh * s.OW + ow] / static_cast<T>(avg_divisor(s, wh, ww));
      }
    }
    grad_x[i] = acc;
  }
}

// ---- host side --------------------------------------------------------------------------------

// Calls f(T{}) with T = float or double for `dtype`, or throws std::invalid_argument naming op.
template <class F>
void dispatch_float(const char* op, DType dtype, F&& f) {
  if (dtype == DType::f32) return f(float{});
  if (dtype == DType::f64) return f(double{});
  throw std::invalid_argument(std::string(op) + ": dtype must be float32 or float64, got " +
                              dtype_name(dtype));
}

// PyTorch's pooling output size: floor or ceil division, then a ceil-mode window that would
// start in the right padding is dropped. Arguments within [0, 2^50] (checked first).
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, bool ceil_mode) {
  // dil*(k-1), saturated at 2^52: past in + 2*pad + stride (< 2^52), so the size is < 1 anyway.
  constexpr int64_t kSpanCap = kMaxElems * 4;
  const int64_t span = (k > 1 && dil > kSpanCap / (k - 1)) ? kSpanCap : dil * (k - 1);
  const int64_t num = in + 2 * pad - span - 1 + (ceil_mode ? stride - 1 : 0);
  const int64_t floor_q = num >= 0 ? num / stride : -ceil_div(-num, stride);
  int64_t out = floor_q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

}  // namespace

void check_pool2d_shape(const char* op, const Pool2dShape& s, bool ceil_mode, bool avg) {
  const auto str = [](int64_t v) { return std::to_string(v); };
  const std::string geometry = "input (" + str(s.N) + ", " + str(s.C) + ", " + str(s.H) + ", " + str(s.W) +
                               "), output (" + str(s.OH) + ", " + str(s.OW) + "), kernel_size (" + str(s.KH) +
                               ", " + str(s.KW) + "), stride (" + str(s.stride_h) + ", " + str(s.stride_w) +
                               "), padding (" + str(s.pad_h) + ", " + str(s.pad_w) + "), dilation (" +
                               str(s.dil_h) + ", " + str(s.dil_w) + "), ceil_mode " + (ceil_mode ? "True" : "False");
  const auto fail = [&](const char* what) { throw std::invalid_argument(std::string(op) + ": " + what + ": " + geometry); };
  if (s.N < 0 || s.N > kMaxElems) fail("N must lie in [0, 2^50]");
  for (int64_t v : {s.C, s.H, s.W, s.OH, s.OW, s.KH, s.KW, s.stride_h, s.stride_w, s.dil_h, s.dil_w})
    if (v < 1 || v > kMaxElems) fail("sizes, kernel_size, stride and dilation must lie in [1, 2^50]");
  if (s.pad_h < 0 || s.pad_w < 0 || s.pad_h > s.KH / 2 || s.pad_w > s.KW / 2)
    fail("padding must lie in [0, kernel_size / 2]");
  if (avg && (s.dil_h != 1 || s.dil_w != 1)) fail("avg_pool2d has no dilation (it must be 1)");
  if (s.OH != pool_out_size(s.H, s.KH, s.stride_h, s.pad_h, s.dil_h, ceil_mode) ||
      s.OW != pool_out_size(s.W, s.KW, s.stride_w, s.pad_w, s.dil_w, ceil_mode))
    fail("output size does not follow from the input and the pooling geometry");
  // Planes and their products under 2^50 elements: N*C*H*W and N*C*OH*OW.
  const double in_elems = double(s.N) * double(s.C) * double(s.H) * double(s.W);
  const double out_elems = double(s.N) * double(s.C) * double(s.OH) * double(s.OW);
  if (in_elems > double(kMaxElems) || out_elems > double(kMaxElems)) fail("sizes too large (over 2^50 elements)");
}

void max_pool2d_forward(DType dtype, const Pool2dShape& s, const void* x, void* y, int64_t* index) {
  const int64_t total = s.N * s.C * s.OH * s.OW;
  dispatch_float("max_pool2d_forward", dtype, [&](auto t) {
    using T = decltype(t);
    if (total == 0) return;
    max_pool2d_forward_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        s, total, static_cast<const T*>(x), static_cast<T*>(y), index);
    check_launch("max_pool2d_forward_cuda");
  });
}

void max_pool2d_backward(DType dtype, const Pool2dShape& s, const int64_t* index, const void* grad_y,
                         void* grad_x) {
  const int64_t total = s.N * s.C * s.H * s.W;
  dispatch_float("max_pool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    if (total == 0) return;
    max_pool2d_backward_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        s, total, index, static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
    check_launch("max_pool2d_backward_cuda");
  });
}

void avg_pool2d_forward(DType dtype, const Pool2dShape& s, const void* x, void* y) {
  const int64_t total = s.N * s.C * s.OH * s.OW;
  dispatch_float("avg_pool2d_forward", dtype, [&](auto t) {
    using T = decltype(t);
    if (total == 0) return;
    avg_pool2d_forward_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        s, total, static_cast<const T*>(x), static_cast<T*>(y));
    check_launch("avg_pool2d_forward_cuda");
  });
}

void avg_pool2d_backward(DType dtype, const Pool2dShape& s, const void* grad_y, void* grad_x) {
  const int64_t total = s.N * s.C * s.H * s.W;
  dispatch_float("avg_pool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    if (total == 0) return;
    avg_pool2d_backward_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        s, total, static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
    check_launch("avg_pool2d_backward_cuda");
  });
}

}  // namespace dlcore::cuda

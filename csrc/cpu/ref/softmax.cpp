// softmax / log_softmax over the middle axis of a (outer, R, inner) view, and their
// gradients from the forward output y.
//
// Math (numerically stable: m = max_r x, so exp never overflows):
//   softmax      y[r] = exp(x[r] - m) / s,          s = sum_r exp(x[r] - m)
//   log_softmax  y[r] = (x[r] - m) - log(s)   (x - m first: no rounding of a large m + log s)
//   backward     softmax:     grad_x[r] = y[r] * (grad_y[r] - sum_q grad_y[q] y[q])
//                log_softmax: grad_x[r] = grad_y[r] - exp(y[r]) * sum_q grad_y[q]
//
// Layout: x, y, grad_y, grad_x (outer, R, inner) contiguous. The bindings view a tensor as
// outer = prod(shape[:dim]), R = shape[dim], inner = prod(shape[dim+1:]).
//
// Accuracy: s and the backward sums accumulate in double; float32 exp is vec::exp (<= 1 ulp). A row holding NaN gives NaN; a
// row of all -inf gives NaN (as PyTorch).
//
// Preconditions (checked in csrc/bindings/ops_reduce.cpp): R >= 1. y / grad_x are
// OVERWRITTEN. y may not alias x (the binding always allocates y).
//
// Loops: inner == 1 (the logits case, dim = -1) works on contiguous rows; inner > 1 walks r
// in the outer loop over a block of kInnerBlock contiguous columns whose max / sum
// accumulators sit on the stack. Threads over (outer, column block) tasks above
// kParallelMin elements. Bound: one exp per element (float32: cpu/vec_math.h, vectorised;
// float64: scalar libm), then ~3 passes of memory. Measured (avx512, float32, 1 thread):
// (700, 10000) 4.8 ms, (64, 1000) 0.04 ms; NumPy 16.7 / 0.08 ms; scalar libm was 27 / 0.25.
//
// Tested by tests/kernels/test_reduce_kernels.py (each dim, every ISA, f32/f64, 1000 + x):
//   DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/kernels/test_reduce_kernels.py
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Below this many elements the op runs on the calling thread (fork/join ~ µs).
constexpr int64_t kParallelMin = 32768;
// Columns per task when inner > 1: 512 doubles (4 KiB) per accumulator array stay in L1.
constexpr int64_t kInnerBlock = 512;

// One contiguous row x, y (R). Every loop is one vectorised pass: the max and the sum are
// `omp simd` reductions (lanes combine in any order; a NaN still reaches every output through
// the sum). exp(x - m) is parked in y (log_softmax overwrites it), then summed in a separate
// loop: GCC 12 vectorises vec::exp plus a float -> double sum in one body badly (6x slower).
template <class T>
void softmax_row(bool log, int64_t R, const T* __restrict x, T* __restrict y) {
  T m = x[0];
#pragma omp simd reduction(max : m)
  for (int64_t r = 1; r < R; ++r) m = x[r] > m ? x[r] : m;
  for (int64_t r = 0; r < R; ++r) y[r] = vec::exp(x[r] - m);
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t r = 0; r < R; ++r) s += static_cast<double>(y[r]);
  if (log) {
    const T log_s = static_cast<T>(std::log(s));
    for (int64_t r = 0; r < R; ++r) y[r] = (x[r] - m) - log_s;
  } else {
    const T inv = static_cast<T>(1.0 / s);
    for (int64_t r = 0; r < R; ++r) y[r] *= inv;
  }
}

// A block x, y (R, nc) with row stride `inner`.
template <class T>
void softmax_block(bool log, int64_t R, int64_t inner, int64_t nc, const T* __restrict x,
                   T* __restrict y) {
  T m[kInnerBlock];       // (nc) running max
  double s[kInnerBlock];  // (nc) sum of exp(x - m)
  for (int64_t c = 0; c < nc; ++c) {
    m[c] = x[c];
    s[c] = 0.0;
  }
  for (int64_t r = 1; r < R; ++r) {
    const T* xr = x + r * inner;  // (nc)
    for (int64_t c = 0; c < nc; ++c) m[c] = xr[c] > m[c] ? xr[c] : m[c];
  }
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + r * inner;  // (nc)
    T* yr = y + r * inner;        // (nc)
    // Two loops, as in softmax_row (GCC 12 does not vectorise the fused body here); yr
    // (overwritten below for log_softmax) is still in L1 for the second.
    for (int64_t c = 0; c < nc; ++c) yr[c] = vec::exp(xr[c] - m[c]);
    for (int64_t c = 0; c < nc; ++c) s[c] += static_cast<double>(yr[c]);
  }
  if (log) {
    T log_s[kInnerBlock];  // (nc) log(s)
    for (int64_t c = 0; c < nc; ++c) log_s[c] = static_cast<T>(std::log(s[c]));
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + r * inner;  // (nc)
      T* yr = y + r * inner;        // (nc)
      for (int64_t c = 0; c < nc; ++c) yr[c] = (xr[c] - m[c]) - log_s[c];
    }
  } else {
    T inv[kInnerBlock];  // (nc) 1 / s
    for (int64_t c = 0; c < nc; ++c) inv[c] = static_cast<T>(1.0 / s[c]);
    for (int64_t r = 0; r < R; ++r) {
      T* yr = y + r * inner;  // (nc)
      for (int64_t c = 0; c < nc; ++c) yr[c] *= inv[c];
    }
  }
}

// Backward of one block y, grad_y, grad_x (R, nc) with row stride `inner` (nc = 1 for rows).
template <class T>
void softmax_backward_block(bool log, int64_t R, int64_t inner, int64_t nc, const T* __restrict y,
                            const T* __restrict grad_y, T* __restrict grad_x) {
  double dot[kInnerBlock];  // (nc) sum_r grad_y y (softmax) or sum_r grad_y (log_softmax)
  for (int64_t c = 0; c < nc; ++c) dot[c] = 0.0;
  for (int64_t r = 0; r < R; ++r) {
    const T* yr = y + r * inner;       // (nc)
    const T* gr = grad_y + r * inner;  // (nc)
    if (log) {
      for (int64_t c = 0; c < nc; ++c) dot[c] += static_cast<double>(gr[c]);
    } else {
      for (int64_t c = 0; c < nc; ++c) dot[c] += static_cast<double>(gr[c]) * static_cast<double>(yr[c]);
    }
  }
  T d[kInnerBlock];  // (nc) dot in T
  for (int64_t c = 0; c < nc; ++c) d[c] = static_cast<T>(dot[c]);
  for (int64_t r = 0; r < R; ++r) {
    const T* yr = y + r * inner;       // (nc)
    const T* gr = grad_y + r * inner;  // (nc)
    T* gx = grad_x + r * inner;        // (nc)
    if (log) {
      for (int64_t c = 0; c < nc; ++c) gx[c] = gr[c] - vec::exp(yr[c]) * d[c];
    } else {
      for (int64_t c = 0; c < nc; ++c) gx[c] = yr[c] * (gr[c] - d[c]);
    }
  }
}

// Backward of one contiguous row (R): the dot product vectorises as an `omp simd` reduction.
template <class T>
void softmax_backward_row(bool log, int64_t R, const T* __restrict y, const T* __restrict grad_y,
                          T* __restrict grad_x) {
  double dot = 0.0;
  if (log) {
#pragma omp simd reduction(+ : dot)
    for (int64_t r = 0; r < R; ++r) dot += static_cast<double>(grad_y[r]);
    const T d = static_cast<T>(dot);
    for (int64_t r = 0; r < R; ++r) grad_x[r] = grad_y[r] - vec::exp(y[r]) * d;
  } else {
#pragma omp simd reduction(+ : dot)
    for (int64_t r = 0; r < R; ++r) dot += static_cast<double>(grad_y[r]) * static_cast<double>(y[r]);
    const T d = static_cast<T>(dot);
    for (int64_t r = 0; r < R; ++r) grad_x[r] = y[r] * (grad_y[r] - d);
  }
}

}  // namespace

template <class T>
void softmax_forward(bool log, int64_t outer, int64_t R, int64_t inner, const T* x, T* y) {
  const bool parallel = outer * R * inner > kParallelMin;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o) softmax_row(log, R, x + o * R, y + o * R);
    return;
  }
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks;
    const int64_t c0 = (task % blocks) * kInnerBlock;
    const int64_t off = o * R * inner + c0;  // block origin in (outer, R, inner)
    softmax_block(log, R, inner, std::min(kInnerBlock, inner - c0), x + off, y + off);
  }
}
DLCORE_INSTANTIATE(softmax_forward, SoftmaxForwardSig)

template <class T>
void softmax_backward(bool log, int64_t outer, int64_t R, int64_t inner, const T* y,
                      const T* grad_y, T* grad_x) {
  const bool parallel = outer * R * inner > kParallelMin;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o)
      softmax_backward_row(log, R, y + o * R, grad_y + o * R, grad_x + o * R);
    return;
  }
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks;
    const int64_t c0 = (task % blocks) * kInnerBlock;
    const int64_t off = o * R * inner + c0;  // block origin in (outer, R, inner)
    softmax_backward_block(log, R, inner, std::min(kInnerBlock, inner - c0), y + off,
                           grad_y + off, grad_x + off);
  }
}
DLCORE_INSTANTIATE(softmax_backward, SoftmaxBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA

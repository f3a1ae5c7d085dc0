// conv2d_forward, conv2d_backward_input, conv2d_backward_weight: NCHW convolution with any
// stride, padding, dilation and groups, built on this ISA's gemm (explicit im2col / col2im).
//
// Math, with G groups, Cg = C / G, Cog = C_out / G and g = co / Cog:
//   y[n, co, oh, ow] = bias[co] + sum_{c < Cg, kh, kw} w[co, c, kh, kw]
//                      * x[n, g*Cg + c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]   (0 outside x)
// As GEMMs per image n and group g, with Kc = Cg*KH*KW and P = OH*OW:
//   forward           y_g[n] (Cog, P)    = w_g (Cog, Kc) @ col_g[n] (Kc, P)  (+ bias per row)
//   backward_input    col_g  (Kc, P)     = w_g^T @ grad_y_g[n] (Cog, P), then col2im (scatter-add)
//   backward_weight   grad_w_g (Cog, Kc) = sum_n grad_y_g[n] @ col_g[n]^T
//                     grad_bias[co]      = sum_{n, oh, ow} grad_y[n, co, oh, ow]
// col[n] is (C*KH*KW, P): row (c, kh, kw), column (oh, ow) holds x[n, c, ih, iw], or 0 where
// (ih, iw) falls in the padding. The G groups of one image are one batched gemm call.
// A 1x1 stride-1 unpadded conv skips im2col: x[n] (C, H*W) already is col[n].
//
// Threads: with at least as many images as OpenMP threads, each thread takes whole images with
// its own column buffer (one scratch block allocated before the parallel region, so a failed
// allocation raises instead of terminating); the gemm inside runs single-threaded (it checks
// omp_in_parallel). backward_weight then gives each thread a private grad_w, summed in thread
// order at the end (deterministic for a given thread count). With fewer images than threads
// (N == 1 at inference), images run in turn and im2col/col2im and the gemm parallelise instead.
//
// Layout and preconditions (checked in csrc/bindings/ops_conv.cpp): all tensors C-contiguous;
// every size >= 1; C and C_out divisible by groups; OH, OW as in kernel_args.h and >= 1.
// Every output (y, grad_x, grad_w, grad_bias) is overwritten.
//
// Tested: pytest tests/kernels/test_conv_kernels.py (NumPy float64 oracle on every ISA, float32
// and float64, plus an integer-exact case). Bound: 2*N*C_out*Kc*P flops at the gemm's rate;
// im2col writes Kc*P*G elements per image, small next to the gemm once C_out/G >> 1.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Below this many elements (im2col/col2im) an OpenMP team costs more than it saves.
constexpr int64_t kParallelMinElems = int64_t{1} << 15;

// Sizes derived once from a Conv2dShape.
struct ConvDims {
  int64_t G, Cg, Cog;  // groups, input / output channels per group
  int64_t Kc;          // Cg*KH*KW: the gemm reduction length of forward
  int64_t P;           // OH*OW: output positions per image
  int64_t HW;          // H*W: input positions per image
  int64_t col_size;    // G*Kc*P: one image's column matrix
  bool direct;         // 1x1, stride 1, no padding: x[n] is its own column matrix
};

ConvDims dims_of(const Conv2dShape& s) {
  ConvDims d;
  d.G = s.groups;
  d.Cg = s.C / s.groups;
  d.Cog = s.C_out / s.groups;
  d.Kc = d.Cg * s.KH * s.KW;
  d.P = s.OH * s.OW;
  d.HW = s.H * s.W;
  d.col_size = d.G * d.Kc * d.P;
  d.direct = s.KH == 1 && s.KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
             s.pad_w == 0;
  return d;
}

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The output positions o in [lo, hi) whose input index o*stride - pad + offset lies in
// [0, size); positions outside read padding. lo <= hi always.
void valid_range(int64_t offset, int64_t pad, int64_t stride, int64_t size, int64_t out,
                 int64_t& lo, int64_t& hi) {
  lo = std::min(out, std::max<int64_t>(0, ceil_div(pad - offset, stride)));
  hi = std::max(lo, std::min(out, ceil_div(size + pad - offset, stride)));
}

// Images run one per thread when there are enough of them to fill the team.
bool parallel_over_images(const Conv2dShape& s) {
  return s.N > 1 && s.N >= omp_get_max_threads();
}

// col (C*KH*KW, OH*OW) := the column matrix of one image x (C, H, W). `parallel` lets the
// rows spread over threads (only outside a parallel region).
template <class T>
void im2col(const Conv2dShape& s, const ConvDims& d, const T* __restrict x, T* __restrict col,
            bool parallel) {
  const int64_t rows = s.C * s.KH * s.KW;
#pragma omp parallel for schedule(static) if (parallel && rows * d.P >= kParallelMinElems)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row / (s.KH * s.KW), kh = (row / s.KW) % s.KH, kw = row % s.KW;
    const T* __restrict x_c = x + c * d.HW;  // (H, W)
    T* __restrict col_row = col + row * d.P;  // (OH, OW)
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    valid_range(kh * s.dil_h, s.pad_h, s.stride_h, s.H, s.OH, oh_lo, oh_hi);
    valid_range(kw * s.dil_w, s.pad_w, s.stride_w, s.W, s.OW, ow_lo, ow_hi);
    const int64_t iw0 = kw * s.dil_w - s.pad_w;  // iw = ow*sw + iw0
    std::fill(col_row, col_row + oh_lo * s.OW, T(0));
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
      const T* __restrict x_row = x_c + (oh * s.stride_h - s.pad_h + kh * s.dil_h) * s.W;  // (W)
      T* __restrict out = col_row + oh * s.OW;                                            // (OW)
      std::fill(out, out + ow_lo, T(0));
      if (s.stride_w == 1) {
        if (ow_lo < ow_hi) std::copy(x_row + ow_lo + iw0, x_row + ow_hi + iw0, out + ow_lo);
      } else {
        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) out[ow] = x_row[ow * s.stride_w + iw0];
      }
      std::fill(out + ow_hi, out + s.OW, T(0));
    }
    std::fill(col_row + oh_hi * s.OW, col_row + d.P, T(0));
  }
}

// grad_x (C, H, W) := the scatter-add of col (C*KH*KW, OH*OW) back to input positions (the
// adjoint of im2col). Channels are independent, so `parallel` spreads them over threads.
template <class T>
void col2im(const Conv2dShape& s, const ConvDims& d, const T* __restrict col, T* __restrict grad_x,
            bool parallel) {
#pragma omp parallel for schedule(static) if (parallel && d.col_size >= kParallelMinElems)
  for (int64_t c = 0; c < s.C; ++c) {
    T* __restrict gx_c = grad_x + c * d.HW;  // (H, W)
    std::fill(gx_c, gx_c + d.HW, T(0));
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      int64_t oh_lo, oh_hi;
      valid_range(kh * s.dil_h, s.pad_h, s.stride_h, s.H, s.OH, oh_lo, oh_hi);
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        int64_t ow_lo, ow_hi;
        valid_range(kw * s.dil_w, s.pad_w, s.stride_w, s.W, s.OW, ow_lo, ow_hi);
        const int64_t iw0 = kw * s.dil_w - s.pad_w;
        const T* __restrict col_row = col + ((c * s.KH + kh) * s.KW + kw) * d.P;  // (OH, OW)
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          T* __restrict gx_row = gx_c + (oh * s.stride_h - s.pad_h + kh * s.dil_h) * s.W;  // (W)
          const T* __restrict in = col_row + oh * s.OW;                                   // (OW)
          if (s.stride_w == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) gx_row[ow + iw0] += in[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) gx_row[ow * s.stride_w + iw0] += in[ow];
          }
        }
      }
    }
  }
}

// y_n (C_out, OH, OW) := conv of one image x_n (C, H, W); col is scratch (G*Kc, P).
template <class T>
void forward_image(const Conv2dShape& s, const ConvDims& d, const T* x_n, const T* w,
                   const T* bias, T* y_n, T* col, bool parallel) {
  const T* cols = x_n;  // (G*Kc, P)
  if (!d.direct) {
    im2col(s, d, x_n, col, parallel);
    cols = col;
  }
  GemmArgs<T> a;
  a.M = d.Cog; a.N = d.P; a.K = d.Kc;
  a.A = w;    a.lda = d.Kc;  // (Cog, Kc) per group
  a.B = cols; a.ldb = d.P;   // (Kc, P) per group
  a.C = y_n;  a.ldc = d.P;   // (Cog, P) per group
  a.batch = d.G; a.stride_a = d.Cog * d.Kc; a.stride_b = d.Kc * d.P; a.stride_c = d.Cog * d.P;
  gemm<T>(a);
  if (bias) {
    for (int64_t co = 0; co < s.C_out; ++co) {
      T* __restrict y_row = y_n + co * d.P;  // (P)
      const T b = bias[co];
      for (int64_t p = 0; p < d.P; ++p) y_row[p] += b;
    }
  }
}

// grad_x_n (C, H, W) := the input gradient of one image from grad_y_n (C_out, OH, OW).
template <class T>
void backward_input_image(const Conv2dShape& s, const ConvDims& d, const T* w, const T* grad_y_n,
                          T* grad_x_n, T* col, bool parallel) {
  GemmArgs<T> a;
  a.trans_a = true;
  a.M = d.Kc; a.N = d.P; a.K = d.Cog;
  a.A = w;        a.lda = d.Kc;                    // (Cog, Kc) per group, read transposed
  a.B = grad_y_n; a.ldb = d.P;                     // (Cog, P) per group
  a.C = d.direct ? grad_x_n : col; a.ldc = d.P;    // (Kc, P) per group
  a.batch = d.G; a.stride_a = d.Cog * d.Kc; a.stride_b = d.Cog * d.P; a.stride_c = d.Kc * d.P;
  gemm<T>(a);
  if (!d.direct) col2im(s, d, col, grad_x_n, parallel);
}

// grad_w (C_out, Kc) := grad_w * (accumulate ? 1 : 0) + grad_y_n @ col_n^T for one image.
template <class T>
void backward_weight_image(const Conv2dShape& s, const ConvDims& d, const T* x_n,
                           const T* grad_y_n, T* grad_w, T* col, bool accumulate, bool parallel) {
  const T* cols = x_n;  // (G*Kc, P)
  if (!d.direct) {
    im2col(s, d, x_n, col, parallel);
    cols = col;
  }
  GemmArgs<T> a;
  a.trans_b = true;
  a.M = d.Cog; a.N = d.Kc; a.K = d.P;
  a.beta = accumulate ? T(1) : T(0);
  a.A = grad_y_n; a.lda = d.P;   // (Cog, P) per group
  a.B = cols;     a.ldb = d.P;   // (Kc, P) per group, read transposed
  a.C = grad_w;   a.ldc = d.Kc;  // (Cog, Kc) per group
  a.batch = d.G; a.stride_a = d.Cog * d.P; a.stride_b = d.Kc * d.P; a.stride_c = d.Cog * d.Kc;
  gemm<T>(a);
}

// sum of row[0, n), in 8 interleaved partial sums so the loop vectorises without reassociation.
template <class T>
T sum_row(const T* __restrict row, int64_t n) {
  constexpr int kLanes = 8;
  T part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) part[j] += row[i + j];
  T total = 0;
  for (; i < n; ++i) total += row[i];
  for (int j = 0; j < kLanes; ++j) total += part[j];
  return total;
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  // x (N, C, H, W), w (C_out, Cg, KH, KW), bias (C_out) or null, y (N, C_out, OH, OW)
  const ConvDims d = dims_of(s);
  const bool over_images = parallel_over_images(s);
  const int64_t team = over_images ? omp_get_max_threads() : 1;
  std::unique_ptr<T[]> scratch(d.direct ? nullptr : new T[team * d.col_size]);  // team x (G*Kc, P)
  if (!over_images) {
    for (int64_t n = 0; n < s.N; ++n)
      forward_image(s, d, x + n * s.C * d.HW, w, bias, y + n * s.C_out * d.P, scratch.get(), true);
    return;
  }
#pragma omp parallel
  {
    T* col = d.direct ? nullptr : scratch.get() + omp_get_thread_num() * d.col_size;  // (G*Kc, P)
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      forward_image(s, d, x + n * s.C * d.HW, w, bias, y + n * s.C_out * d.P, col, false);
  }
}
DLCORE_INSTANTIATE(conv2d_forward, Conv2dForwardSig)

template <class T>
void conv2d_backward_input(const Conv2dShape& s, const T* w, const T* grad_y, T* grad_x) {
  // w (C_out, Cg, KH, KW), grad_y (N, C_out, OH, OW), grad_x (N, C, H, W)
  const ConvDims d = dims_of(s);
  const bool over_images = parallel_over_images(s);
  const int64_t team = over_images ? omp_get_max_threads() : 1;
  std::unique_ptr<T[]> scratch(d.direct ? nullptr : new T[team * d.col_size]);  // team x (G*Kc, P)
  if (!over_images) {
    for (int64_t n = 0; n < s.N; ++n)
      backward_input_image(s, d, w, grad_y + n * s.C_out * d.P, grad_x + n * s.C * d.HW,
                           scratch.get(), true);
    return;
  }
#pragma omp parallel
  {
    T* col = d.direct ? nullptr : scratch.get() + omp_get_thread_num() * d.col_size;  // (G*Kc, P)
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      backward_input_image(s, d, w, grad_y + n * s.C_out * d.P, grad_x + n * s.C * d.HW, col,
                           false);
  }
}
DLCORE_INSTANTIATE(conv2d_backward_input, Conv2dBackwardInputSig)

template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                            T* grad_bias) {
  // x (N, C, H, W), grad_y (N, C_out, OH, OW), grad_w (C_out, Cg, KH, KW), grad_bias (C_out) or null
  const ConvDims d = dims_of(s);
  const int64_t w_size = s.C_out * d.Kc;
  const bool over_images = parallel_over_images(s);

  if (!over_images) {
    std::unique_ptr<T[]> col(d.direct ? nullptr : new T[d.col_size]);  // (G*Kc, P)
    for (int64_t n = 0; n < s.N; ++n)
      backward_weight_image(s, d, x + n * s.C * d.HW, grad_y + n * s.C_out * d.P, grad_w,
                            col.get(), n > 0, true);
  } else {
    // Per thread: a column buffer (G*Kc, P), then a private grad_w (C_out, Kc).
    const int64_t team = omp_get_max_threads();
    const int64_t per_thread = (d.direct ? 0 : d.col_size) + w_size;
    std::unique_ptr<T[]> scratch(new T[team * per_thread]);
    std::vector<char> used(team, 0);  // whether thread t wrote its private grad_w
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      const int threads = omp_get_num_threads();
      T* col = scratch.get() + t * per_thread;                         // (G*Kc, P)
      T* grad_w_t = col + (d.direct ? 0 : d.col_size);                 // (C_out, Kc)
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n) {
        backward_weight_image(s, d, x + n * s.C * d.HW, grad_y + n * s.C_out * d.P, grad_w_t,
                              col, used[t] != 0, false);
        used[t] = 1;
      }
      // The implicit barrier above makes every private grad_w complete.
#pragma omp for schedule(static)
      for (int64_t i = 0; i < w_size; ++i) {
        T acc = 0;
        for (int u = 0; u < threads; ++u)
          if (used[u]) acc += scratch[u * per_thread + (d.direct ? 0 : d.col_size) + i];
        grad_w[i] = acc;
      }
    }
  }

  if (grad_bias) {
#pragma omp parallel for schedule(static) if (s.N * s.C_out * d.P >= kParallelMinElems)
    for (int64_t co = 0; co < s.C_out; ++co) {
      T acc = 0;
      for (int64_t n = 0; n < s.N; ++n) acc += sum_row(grad_y + (n * s.C_out + co) * d.P, d.P);
      grad_bias[co] = acc;
    }
  }
}
DLCORE_INSTANTIATE(conv2d_backward_weight, Conv2dBackwardWeightSig)

}  // namespace dlcore::cpu::DLCORE_ISA

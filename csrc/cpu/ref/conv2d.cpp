// conv2d_forward, conv2d_backward_input, conv2d_backward_weight: NCHW convolution with any
// stride, padding, dilation and groups: a direct path (four variants) for stride 1 and short
// reductions, Winograd where csrc/cpu/conv/winograd.cpp prefers it, otherwise this ISA's gemm
// over explicit im2col / col2im. This file holds the entry points, the rule and two of the
// paths (gemm, wide direct); csrc/cpu/conv/direct_cv.cpp, direct_bv.cpp and pointwise.cpp the
// other variants.
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
// (ih, iw) falls in the padding.
//
// Direct path (stride 1): col is never built. backward_input at stride 1 is the forward conv of
// grad_y padded by (K-1)*dil - pad with the weights flipped and transposed per group, so every
// forward variant serves it too. Four variants, picked inside algo 'direct':
// * wide (here): the image is copied once into its zero-padded frame xp (C, Hp, Wp); at the
//   wide index q = oh*Wp + ow, tap (c, kh, kw) reads xp[c*Hp*Wp + kh*dh*Wp + kw*dw + q], so a
//   run of consecutive q is one contiguous run of xp (the row of col, shifted). A register tile
//   of 6 channels x 2 vectors of q sums the taps (kh-major order) in order; columns ow >= OW of
//   the wide output are computed and dropped, and a tile skips the kh whose padded rows are all
//   padding for its output rows (half the taps of LeNet conv2's backward_input, 0.75 -> 0.61
//   ms). backward_weight dots zero-filled wide grad_y rows with the shifted xp runs, in
//   per-lane partial sums kept across images.
// * channels in vector (direct_cv.cpp; dilation 1): output channels across the lanes, output
//   positions (forward) or taps (backward_weight) as broadcasts: no junk positions, Cog rounded
//   up to the vector instead of 6.
// * pointwise (pointwise.cpp; 1x1, no padding): w @ x[n] with x[n] read in place, not packed;
//   backward_weight sums x[n] rows times grad_y[n]^T rows, again without packing x.
// * batch in vector (direct_bv.cpp; backward_input only, dilation 1, one group): V images
//   across the lanes, weights broadcast, the kernel rows that land on padding skipped.
// Which one: backward_input takes batch in vector for layers of at most kBvMaxChannels input
// channels with V images per thread (use_bv); then pointwise whenever it fits; else channels-in-vector where it fits and its share of
// useful lanes, Cog / (Cog rounded up to V), beats the wide one's, P/Qpad * Cog/(6*nblk)
// (LeNet conv2 forward: 1.0 vs 0.56; its backward_input, 6 output channels: 0.375 vs 0.77;
// LeNet conv1, 6 channels: 0.375 vs 0.875); else wide.
// Where x or w hold inf or NaN, the zero padding / zero-filled columns multiplied in can turn
// an inf result into NaN or spread a NaN to more entries than the gemm path does.
// Otherwise im2col + gemm: the G groups of one image are one batched gemm call; a 1x1 stride-1
// unpadded conv skips im2col (x[n] (C, H*W) already is col[n]).
//
// The rule for algo 'auto' (choose_algo): a forced algorithm runs as asked; else Winograd where
// winograd_preferred() says; else direct where the direction's test says, else gemm:
//   forward          use_direct (stride 1, not 1x1-unpadded, Kc <= 512, Cog >= 6, N >= threads)
//                    or use_pointwise (1x1 unpadded, Cog <= Cg, N >= threads);
//   backward_input   use_direct of the transposed problem (padding >= 0 there), so never 1x1;
//                    inside it, batch in vector where use_bv;
//   backward_weight  use_direct and (channels-in-vector, or the wide junk under a quarter of P),
//                    or pointwise with Cog >= 16 and N >= threads.
// Measured behind it (float32, AVX-512, 1 thread, ms, min of 3 alternating runs of 5, on the
// shared 2-core VM; before = this file at the start of issue 4, gemm = algo='gemm'):
//   LeNet conv2 (64, 6->16, 14x14, k5): forward 0.548 (wide) -> 0.306 (channels in vector;
//   gemm 0.99); backward_input 0.749 -> 0.614 (wide, kh skipped; gemm 0.86); backward_weight
//   1.034 (gemm) -> 0.327 (channels in vector).
//   LeNet conv2's backward_input then 0.595 (wide) -> 0.387 (batch in vector; 2 threads 0.305-
//   0.325 -> 0.198-0.209); (64, 8->16, 14x14, k5, pad 2) 0.686 -> 0.374 at 2 threads; with 16
//   input channels (64, 16->32, 14x14, k5) a tie (3.24 / 3.19-3.30) and 32 (k3, pad 1) slower
//   (2.17-2.36 -> 2.41-2.47), hence kBvMaxChannels = 8.
//   conv1x1_28 (32, 256->64, 28x28): forward 10.13 (gemm) -> 9.20 (pointwise); backward_input
//   stays gemm (8.7-9.2; pointwise 10.6); backward_weight 10.84 (gemm) -> 8.64 (pointwise).
//   LeNet conv1 (64, 1->6, 32x32, k5), all three directions: unchanged (wide / gemm).
//
// Threads: with at least as many images as OpenMP threads, each thread takes whole images with
// its own scratch (one block allocated before the parallel region, so a failed allocation
// raises instead of terminating); the gemm inside runs single-threaded (it checks
// omp_in_parallel). backward_weight gives each thread a private grad_w (or partial sums),
// summed in thread order at the end (deterministic for a given thread count). With fewer images
// than threads (N == 1 at inference), images run in turn and im2col/col2im and the gemm
// parallelise instead (a forced 'direct' still splits the images, leaving threads idle).
//
// Layout and preconditions (checked in csrc/bindings/ops_conv.cpp): all tensors C-contiguous;
// every size >= 1; C and C_out divisible by groups; OH, OW as in kernel_args.h and >= 1.
// Every output (y, grad_x, grad_w, grad_bias) is overwritten. With s.relu, forward stores
// v <= 0 ? 0 : v of conv + bias (NaN stays NaN, -0 becomes 0) in the pass that writes y, on
// every path here (gemm: the GEMM's epilogue without a bias, else the bias pass; wide: the
// row copy; channels in vector: the transpose; pointwise: the last channel block's tile
// store); Winograd does its own.
//
// Tested: pytest tests/kernels/test_conv_kernels.py (NumPy float64 oracle on every ISA, float32
// and float64, integer-exact cases at 1 and 4 threads, every stride-1 case with algo='direct'
// and 'gemm' forced, cases that take each direct variant and its edge tiles).
// Timed: per direction with algo forced, alternating builds; vs torch (PYTHONPATH=python):
//   python3 bench/bench_conv.py --cases lenet_c1,lenet_c3,lenet_c1_b256,conv1x1_28
// Bound: 2*N*C_out*Kc*P flops (wide: Qpad/P more, the dropped columns; channels in vector:
// the unused lanes of the last channel block).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/conv_algo.h"
#include "cpu/conv/conv_dims.h"
#include "cpu/conv/direct_bv.h"
#include "cpu/conv/direct_cv.h"
#include "cpu/conv/padded_frame.h"
#include "cpu/conv/pointwise.h"
#include "cpu/conv/winograd.h"
#include "cpu/kernels.h"
#include "cpu/vector_width.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Below this many elements (im2col/col2im) an OpenMP team costs more than it saves.
constexpr int64_t kParallelMinElems = int64_t{1} << 15;

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

// The fused epilogue of forward when s.relu: v <= 0 ? 0 : v, so NaN stays NaN and -0 becomes 0.
template <class T>
T relu_of(T v) {
  return v <= T(0) ? T(0) : v;
}

// y_n (C_out, OH, OW) := conv of one image x_n (C, H, W) (+ bias, then relu when s.relu); col
// is scratch (G*Kc, P).
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
  // The GEMM's epilogue adds a bias per column (a position here), not per output channel, so
  // it takes the ReLU only when there is no bias; with one, a pass over y below does both.
  a.relu = s.relu && !bias;
  gemm<T>(a);
  if (bias) {
    for (int64_t co = 0; co < s.C_out; ++co) {
      T* __restrict y_row = y_n + co * d.P;  // (P)
      const T b = bias[co];
      if (s.relu) {
        for (int64_t p = 0; p < d.P; ++p) y_row[p] = relu_of(y_row[p] + b);
      } else {
        for (int64_t p = 0; p < d.P; ++p) y_row[p] += b;
      }
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

// ---- Direct path (stride 1, small Kc): implicit im2col over a padded copy of the image ----

// Register tile of the direct path: MR output channels x NR output positions (two vectors),
// 12 accumulators as in the gemm micro-kernel.
template <class T>
struct DirectTile {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * kVectorBytes / static_cast<int>(sizeof(T));
};

// Above this reduction length the gemm's cache blocking beats re-reading the taps per tile.
constexpr int64_t kDirectMaxKc = 512;

// backward_input runs the batch-in-vector variant for layers of at most this many input
// channels (use_bv below; measured in the header).
constexpr int64_t kBvMaxChannels = 8;

// Geometry of the direct path. x_n is copied into xp (C, Hp, Wp) with its zero padding; the
// output position (oh, ow) becomes the wide index q = oh*Wp + ow, and tap (c, kh, kw) of it
// reads xp[c*plane + q + kh*dh*Wp + kw*dw]. So each tap feeds a tile of NR consecutive q from
// one contiguous run of xp, like a row of col. Wide columns ow >= OW and q >= OH*Wp are junk:
// computed from in-buffer values, never stored.
struct DirectPlan {
  int64_t Hp, Wp, plane;     // padded image (Hp, Wp), plane = Hp*Wp
  int64_t Qpad;              // OH*Wp rounded up to NR: the wide positions computed
  int64_t xp_size;           // C*plane + slack: the last tile's junk reads stay inside
  int64_t nblk;              // ceil(Cog / MR): row blocks of packed weights per group
  // (Kc): tap (c, kh, kw) -> c*plane + kh*dh*Wp + kw*dw. A plain array, not std::vector:
  // vector's out-of-line growth code would be a weak symbol shared across ISA copies
  // (cmake/check_isa_symbols.py).
  std::unique_ptr<int64_t[]> off;
  // The same taps in the forward kernel's order, kh outermost: t = (kh*Cg + c)*KW + kw, so the
  // taps of a range of kh are one contiguous run (a tile skips the kh whose rows are all
  // padding). fwd_off[t] is the offset of tap t, fwd_src[t] its index (c*KH + kh)*KW + kw.
  std::unique_ptr<int64_t[]> fwd_off, fwd_src;
};

// The wide variant's work: Qpad positions (OH*Wp rounded up to NR) of nblk row blocks per
// group, without the tap tables (the rules below need only these two).
struct WideSize {
  int64_t Qpad, nblk;
};

template <class T>
WideSize wide_size(const Conv2dShape& s, const ConvDims& d) {
  constexpr int MR = DirectTile<T>::MR, NR = DirectTile<T>::NR;
  const int64_t Wp = s.W + 2 * s.pad_w;
  return {(s.OH * Wp + NR - 1) / NR * NR, (d.Cog + MR - 1) / MR};
}

template <class T>
DirectPlan direct_plan(const Conv2dShape& s, const ConvDims& d) {
  constexpr int NR = DirectTile<T>::NR;
  DirectPlan p;
  p.Hp = s.H + 2 * s.pad_h;
  p.Wp = s.W + 2 * s.pad_w;
  p.plane = p.Hp * p.Wp;
  const WideSize ws = wide_size<T>(s, d);
  p.Qpad = ws.Qpad;
  // Largest read: (C-1)*plane + (KH-1)*dh*Wp + (KW-1)*dw + Qpad-1, and OH*Wp + (KH-1)*dh*Wp
  // = plane, Qpad <= OH*Wp + NR - 1.
  p.xp_size = s.C * p.plane + (s.KW - 1) * s.dil_w + NR;
  p.nblk = ws.nblk;
  p.off.reset(new int64_t[d.Kc]);
  for (int64_t c = 0; c < d.Cg; ++c)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw)
        p.off[(c * s.KH + kh) * s.KW + kw] = c * p.plane + kh * s.dil_h * p.Wp + kw * s.dil_w;
  p.fwd_off.reset(new int64_t[d.Kc]);
  p.fwd_src.reset(new int64_t[d.Kc]);
  for (int64_t kh = 0; kh < s.KH; ++kh)
    for (int64_t c = 0; c < d.Cg; ++c)
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const int64_t t = (kh * d.Cg + c) * s.KW + kw, src = (c * s.KH + kh) * s.KW + kw;
        p.fwd_src[t] = src;
        p.fwd_off[t] = p.off[src];
      }
  return p;
}

// Stride 1, not 1x1 (that one needs no im2col), short reduction, at least one full row block
// of output channels per group (fewer leave most of the tile idle), whole images per thread.
template <class T>
bool use_direct(const Conv2dShape& s, const ConvDims& d) {
  return !d.direct && s.stride_h == 1 && s.stride_w == 1 && d.Kc <= kDirectMaxKc &&
         d.Cog >= DirectTile<T>::MR && parallel_over_images(s);
}

// Pointwise forward reading x in place beats the gemm (which packs x[n] for C_out / groups
// multiply-adds per element) where that is at most the channels it sums over: conv1x1_28
// (256 -> 64) 9.20 vs 10.35 ms; the other way round (64 -> 256, its backward_input) the gemm
// measured faster, 9.2 vs 10.6 ms (1 thread).
bool use_pointwise(const Conv2dShape& s, const ConvDims& d) {
  return pointwise_fits(s) && d.Cog <= d.Cg && parallel_over_images(s);
}

// Share of the lanes the wide variant spends on output: P of Qpad positions, Cog of nblk*MR rows.
template <class T>
double wide_lane_use(const ConvDims& d, const WideSize& ws) {
  return static_cast<double>(d.P) / static_cast<double>(ws.Qpad) * static_cast<double>(d.Cog) /
         static_cast<double>(ws.nblk * DirectTile<T>::MR);
}

// Inside the direct path: the channels-in-vector variant where it fits (dilation 1) and wastes
// fewer lanes than the wide one (LeNet conv2: 1.0 vs 0.56; conv1's 6 channels: 0.375 vs 0.875).
template <class T>
bool use_cv(const Conv2dShape& s, const ConvDims& d) {
  return cv_fits(s) && cv_lane_use<T>(s) > wide_lane_use<T>(d, wide_size<T>(s, d));
}

// backward_input's transposed problem st inside the direct path: the batch-in-vector variant
// where it fits, every thread gets whole groups of V images, and st has few output channels
// (the layer's input channels), where channels in vector leaves lanes idle and the wide
// variant multiplies the padding.
template <class T>
bool use_bv(const Conv2dShape& st) {
  return bv_fits(st) && st.C_out <= kBvMaxChannels && st.N >= kLanes<T> * omp_get_max_threads();
}

// The algorithm for direction `dir`: the forced one, else Winograd where it fits and measured
// faster, else the direct path where `direct_wins` (each direction's own test), else gemm.
template <class T>
ConvAlgo choose_algo(const Conv2dShape& s, ConvDirection dir, bool direct_wins) {
  if (s.algo != ConvAlgo::kAuto) return s.algo;
  if (winograd_fits(s, std::is_same_v<T, float>) && winograd_preferred(s, dir))
    return ConvAlgo::kWinograd;
  return direct_wins ? ConvAlgo::kDirect : ConvAlgo::kGemm;
}

// packed (G, nblk, Kc, MR) := weight(g, row, fwd_src[t]) for row < Cog, zero for the rows past
// Cog of the last block: MR consecutive values per tap (in fwd_off's kh-major order), as the
// micro-kernel broadcasts them.
template <class T, class Weight>
std::unique_ptr<T[]> pack_weights(const ConvDims& d, const DirectPlan& p, Weight weight) {
  constexpr int MR = DirectTile<T>::MR;
  std::unique_ptr<T[]> packed(new T[d.G * p.nblk * d.Kc * MR]);  // (G, nblk, Kc, MR)
  for (int64_t g = 0; g < d.G; ++g)
    for (int64_t blk = 0; blk < p.nblk; ++blk) {
      T* __restrict panel = packed.get() + (g * p.nblk + blk) * d.Kc * MR;  // (Kc, MR)
      for (int64_t t = 0; t < d.Kc; ++t)
        for (int i = 0; i < MR; ++i) {
          const int64_t row = blk * MR + i;
          panel[t * MR + i] = row < d.Cog ? weight(g, row, p.fwd_src[t]) : T(0);
        }
    }
  return packed;
}

// out[i, j] := sum_t a[t, i] * xq[off[t] + j] for i < m, j < NR (the sum in order t = 0, 1, ...).
// a (taps, MR) packed weights, xq the padded image at the tile's first position, out (m, ldo).
template <class T>
void direct_tile(int64_t taps, const int64_t* __restrict off, const T* __restrict a,
                 const T* __restrict xq, T* __restrict out, int64_t ldo, int64_t m) {
  constexpr int MR = DirectTile<T>::MR, NR = DirectTile<T>::NR;
  T acc[MR][NR] = {};
  for (int64_t t = 0; t < taps; ++t, a += MR) {
    const T* __restrict b = xq + off[t];  // (NR)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict row = out + i * ldo;  // (NR)
    for (int j = 0; j < NR; ++j) row[j] = acc[i][j];
  }
}

// dst[0, n) := src[0, n) + b, then relu_of when relu. Plain loops left a scalar remainder (and
// an alias check) per output row that cost ~15 % of LeNet conv1's forward (rows of 28);
// AVX-512 float masks it.
template <class T>
void copy_row_plus(const T* __restrict src, int64_t n, T b, bool relu, T* __restrict dst) {
  if (relu) {
    for (int64_t i = 0; i < n; ++i) dst[i] = relu_of(src[i] + b);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] + b;
  }
}
#if defined(__AVX512F__)
template <>
void copy_row_plus<float>(const float* __restrict src, int64_t n, float b, bool relu,
                          float* __restrict dst) {
  const __m512 vb = _mm512_set1_ps(b), zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k =
        n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, src + i), vb);
    if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
    _mm512_mask_storeu_ps(dst + i, k, v);
  }
}
#endif

// y_n (C_out, OH, OW) := conv of one image x_n (C, H, W) (+ bias) on the direct path.
// packed (G, nblk, Kc, MR) from pack_weights; xp (xp_size) and yw (C_out, Qpad) are scratch.
template <class T>
void forward_image_direct(const Conv2dShape& s, const ConvDims& d, const DirectPlan& p,
                          const T* x_n, const T* packed, const T* bias, T* y_n, T* xp, T* yw) {
  constexpr int MR = DirectTile<T>::MR, NR = DirectTile<T>::NR;
  copy_into_padded_frame(s, p.plane, p.Wp, x_n, xp);
  for (int64_t g = 0; g < d.G; ++g)
    for (int64_t blk = 0; blk < p.nblk; ++blk) {
      const T* a = packed + (g * p.nblk + blk) * d.Kc * MR;  // (Kc, MR)
      const T* xg = xp + g * d.Cg * p.plane;                 // (Cg, Hp, Wp) of group g
      T* out = yw + (g * d.Cog + blk * MR) * p.Qpad;         // (m, Qpad)
      const int64_t m = std::min<int64_t>(MR, d.Cog - blk * MR);
      for (int64_t q0 = 0; q0 < p.Qpad; q0 += NR) {
        // Only the kh whose padded rows oh + kh*dh meet x for some output row oh of the tile;
        // the others multiply zero padding (half the taps of LeNet conv2's backward_input).
        const int64_t r0 = q0 / p.Wp, r1 = std::min(s.OH - 1, (q0 + NR - 1) / p.Wp);
        const int64_t kh_lo = std::max<int64_t>(0, ceil_div(s.pad_h - r1, s.dil_h));
        const int64_t kh_hi =
            std::max(kh_lo, std::min(s.KH, (s.pad_h + s.H - 1 - r0) / s.dil_h + 1));
        const int64_t t0 = kh_lo * d.Cg * s.KW, t1 = kh_hi * d.Cg * s.KW;
        direct_tile(t1 - t0, p.fwd_off.get() + t0, a + t0 * MR, xg + q0, out + q0, p.Qpad, m);
      }
    }
  for (int64_t co = 0; co < s.C_out; ++co) {
    const T b = bias ? bias[co] : T(0);
    for (int64_t oh = 0; oh < s.OH; ++oh)
      copy_row_plus(yw + co * p.Qpad + oh * p.Wp, s.OW, b, s.relu, y_n + (co * s.OH + oh) * s.OW);
  }
}

// y (N, C_out, OH, OW) := conv of x (N, C, H, W) on the direct path, whole images per thread.
// packed (G, nblk, Kc, MR): the weights as pack_weights lays them out.
template <class T>
void forward_direct(const Conv2dShape& s, const ConvDims& d, const DirectPlan& p, const T* x,
                    const T* packed, const T* bias, T* y) {
  const int64_t per_thread = p.xp_size + s.C_out * p.Qpad;
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
#pragma omp parallel
  {
    T* xp = scratch.get() + omp_get_thread_num() * per_thread;  // (xp_size)
    T* yw = xp + p.xp_size;                                     // (C_out, Qpad)
    std::fill(xp, xp + p.xp_size, T(0));                        // borders stay 0
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      forward_image_direct(s, d, p, x + n * s.C * d.HW, packed, bias, y + n * s.C_out * d.P, xp,
                           yw);
  }
}

// Register tile of the direct backward_weight: WR output channels x WT taps, each one vector
// of L lanes summed over positions (12 accumulators, 8 loads per 12 FMAs).
template <class T>
struct WeightTile {
  static constexpr int WR = 2, WT = 6;
  static constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
};

// part[i, t, j] += sum_{q = j mod L} gyw[i, q] * xq[off[t] + q] for i < m, t < nt, lane j < L,
// q < Qpad (a multiple of L). gyw (m, Qpad) wide grad_y rows, zero at junk positions; xq the
// padded image of the group; part (m, ldp / L, L) lane partial sums, reduced over lanes only
// once all images are in (a short Qpad would otherwise spend more on the reduction than on
// the products). Each partial sum runs in order q = j, L + j, 2L + j, ...
template <class T>
void weight_tile(int64_t Qpad, const int64_t* off, const T* gyw, const T* xq, T* part,
                 int64_t ldp, int64_t m, int64_t nt) {
  constexpr int WR = WeightTile<T>::WR, WT = WeightTile<T>::WT, L = WeightTile<T>::L;
  const T* rows[WR];  // WR x (Qpad); rows past m repeat the last one, their sums are dropped
  const T* taps[WT];  // WT x (Qpad); likewise for taps past nt
  T acc[WR][WT][L];
  for (int i = 0; i < WR; ++i) {
    const int64_t ic = std::min<int64_t>(i, m - 1);
    rows[i] = gyw + ic * Qpad;
    for (int t = 0; t < WT; ++t) {
      const T* src = part + ic * ldp + std::min<int64_t>(t, nt - 1) * L;  // (L)
      for (int j = 0; j < L; ++j) acc[i][t][j] = src[j];
    }
  }
  for (int t = 0; t < WT; ++t) taps[t] = xq + off[std::min<int64_t>(t, nt - 1)];
  for (int64_t q0 = 0; q0 < Qpad; q0 += L) {
#pragma GCC unroll 16
    for (int i = 0; i < WR; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < WT; ++t) {
#pragma omp simd
        for (int j = 0; j < L; ++j) acc[i][t][j] += rows[i][q0 + j] * taps[t][q0 + j];
      }
    }
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = 0; t < nt; ++t) {
      T* dst = part + i * ldp + t * L;  // (L)
      for (int j = 0; j < L; ++j) dst[j] = acc[i][t][j];
    }
}

// grad_w (C_out, Kc) := sum_n grad_y[n] (C_out, P) @ col[n]^T on the direct path. Each thread
// sums its images (in order) into private lane partial sums; then grad_w[i] adds, in thread
// order, each thread's lanes in order: deterministic for a given thread count.
template <class T>
void backward_weight_direct(const Conv2dShape& s, const ConvDims& d, const DirectPlan& p,
                            const T* x, const T* grad_y, T* grad_w) {
  constexpr int WR = WeightTile<T>::WR, WT = WeightTile<T>::WT, L = WeightTile<T>::L;
  const int64_t w_size = s.C_out * d.Kc;
  // Per thread: xp (xp_size), gyw (C_out, Qpad), partial sums (C_out, Kc, L).
  const int64_t per_thread = p.xp_size + s.C_out * p.Qpad + w_size * L;
  std::unique_ptr<T[]> scratch(new T[omp_get_max_threads() * per_thread]);
#pragma omp parallel
  {
    const int threads = omp_get_num_threads();
    T* xp = scratch.get() + omp_get_thread_num() * per_thread;  // (xp_size)
    T* gyw = xp + p.xp_size;                                    // (C_out, Qpad)
    T* part = gyw + s.C_out * p.Qpad;                           // (C_out, Kc, L)
    std::fill(xp, xp + per_thread, T(0));  // borders of xp and junk of gyw stay 0
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      copy_into_padded_frame(s, p.plane, p.Wp, x + n * s.C * d.HW, xp);
      for (int64_t co = 0; co < s.C_out; ++co)
        for (int64_t oh = 0; oh < s.OH; ++oh) {
          const T* src = grad_y + ((n * s.C_out + co) * s.OH + oh) * s.OW;  // (OW)
          std::copy(src, src + s.OW, gyw + co * p.Qpad + oh * p.Wp);
        }
      for (int64_t g = 0; g < d.G; ++g)
        for (int64_t co = 0; co < d.Cog; co += WR)
          for (int64_t t = 0; t < d.Kc; t += WT)
            weight_tile(p.Qpad, p.off.get() + t, gyw + (g * d.Cog + co) * p.Qpad,
                        xp + g * d.Cg * p.plane, part + ((g * d.Cog + co) * d.Kc + t) * L,
                        d.Kc * L, std::min<int64_t>(WR, d.Cog - co), std::min<int64_t>(WT, d.Kc - t));
    }
    // The implicit barrier above makes every thread's partial sums complete.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < w_size; ++i) {
      T acc = 0;
      for (int u = 0; u < threads; ++u) {
        const T* lanes = scratch.get() + u * per_thread + per_thread - w_size * L + i * L;  // (L)
        for (int j = 0; j < L; ++j) acc += lanes[j];
      }
      grad_w[i] = acc;
    }
  }
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  // x (N, C, H, W), w (C_out, Cg, KH, KW), bias (C_out) or null, y (N, C_out, OH, OW)
  const ConvDims d = dims_of(s);
  const ConvAlgo algo = choose_algo<T>(s, ConvDirection::kForward,
                                       use_direct<T>(s, d) || use_pointwise(s, d));
  if (algo == ConvAlgo::kWinograd) {
    if constexpr (std::is_same_v<T, float>) winograd_forward(s, x, w, bias, y);
    return;
  }
  if (algo == ConvAlgo::kDirect) {
    if (pointwise_fits(s)) {
      pointwise_forward(s, x, w, bias, y);
      return;
    }
    if (use_cv<T>(s, d)) {
      cv_forward(s, x, w, bias, y);
      return;
    }
    const DirectPlan p = direct_plan<T>(s, d);
    const auto packed = pack_weights<T>(d, p, [&](int64_t g, int64_t row, int64_t t) {
      return w[(g * d.Cog + row) * d.Kc + t];
    });
    forward_direct(s, d, p, x, packed.get(), bias, y);
    return;
  }
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
  // At stride 1, grad_x is the forward conv of grad_y padded by (K-1)*dil - pad with the
  // weights flipped in (kh, kw) and transposed per group: wt (C, Cog, KH, KW).
  const Conv2dShape st{s.N,       s.C_out,   s.OH,   s.OW,   s.C,
                       s.KH,      s.KW,      s.H,    s.W,    1,
                       1,         (s.KH - 1) * s.dil_h - s.pad_h,
                       (s.KW - 1) * s.dil_w - s.pad_w,       s.dil_h,
                       s.dil_w,   s.groups};
  const ConvDims dt = dims_of(st);
  const bool transposed_fits = s.stride_h == 1 && s.stride_w == 1 && st.pad_h >= 0 && st.pad_w >= 0;
  const ConvAlgo algo = choose_algo<T>(s, ConvDirection::kBackwardInput,
                                       transposed_fits && use_direct<T>(st, dt));
  if (algo == ConvAlgo::kWinograd) {
    if constexpr (std::is_same_v<T, float>) winograd_backward_input(s, w, grad_y, grad_x);
    return;
  }
  if (algo == ConvAlgo::kDirect) {
    const int64_t taps = s.KH * s.KW;
    const bool pointwise = pointwise_fits(st), bv = !pointwise && use_bv<T>(st);
    if (pointwise || bv || use_cv<T>(st, dt)) {
      // wt (C, Cog, KH, KW) per group: w transposed per group and flipped in (kh, kw).
      std::unique_ptr<T[]> wt(new T[s.C * d.Cog * taps]);
      for (int64_t g = 0; g < d.G; ++g)
        for (int64_t c = 0; c < d.Cg; ++c)
          for (int64_t co = 0; co < d.Cog; ++co)
            for (int64_t k = 0; k < taps; ++k)
              wt[((g * d.Cg + c) * d.Cog + co) * taps + k] =
                  w[((g * d.Cog + co) * d.Cg + c) * taps + taps - 1 - k];
      if (pointwise)
        pointwise_forward(st, grad_y, wt.get(), static_cast<const T*>(nullptr), grad_x);
      else if (bv)
        bv_forward(st, grad_y, wt.get(), grad_x);
      else
        cv_forward(st, grad_y, wt.get(), static_cast<const T*>(nullptr), grad_x);
      return;
    }
    const DirectPlan p = direct_plan<T>(st, dt);
    const auto packed = pack_weights<T>(dt, p, [&](int64_t g, int64_t c, int64_t t) {
      const int64_t co = t / taps, k = taps - 1 - t % taps;  // k: tap (KH-1-kh, KW-1-kw)
      return w[((g * d.Cog + co) * d.Cg + c) * taps + k];
    });
    forward_direct(st, dt, p, grad_y, packed.get(), static_cast<const T*>(nullptr), grad_x);
    return;
  }
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

  // The wide backward_weight multiplies the junk positions too and, unlike forward, pays for
  // them in every image: measured slower than the gemm path once they exceed a quarter of P
  // (LeNet conv2: Qpad 160 for P 100), where channels in vector runs instead (1.03 -> 0.33
  // ms). Pointwise: x[n] read in place instead of transposed into gemm panels, conv1x1_28
  // 10.8 -> 8.6 ms (1 thread); kept to >= 16 output channels per group (a zmm of them).
  const bool cv = use_cv<T>(s, d);
  const bool pointwise = pointwise_fits(s) && d.Cog >= 16 && over_images;
  const ConvAlgo algo = choose_algo<T>(
      s, ConvDirection::kBackwardWeight,
      pointwise || (use_direct<T>(s, d) && (cv || 4 * wide_size<T>(s, d).Qpad <= 5 * d.P)));
  if (algo == ConvAlgo::kWinograd) {
    if constexpr (std::is_same_v<T, float>) winograd_backward_weight(s, x, grad_y, grad_w);
  } else if (algo == ConvAlgo::kDirect && pointwise_fits(s)) {
    pointwise_backward_weight(s, x, grad_y, grad_w);
  } else if (algo == ConvAlgo::kDirect && cv) {
    cv_backward_weight(s, x, grad_y, grad_w);
  } else if (algo == ConvAlgo::kDirect) {
    backward_weight_direct(s, d, direct_plan<T>(s, d), x, grad_y, grad_w);
  } else if (!over_images) {
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

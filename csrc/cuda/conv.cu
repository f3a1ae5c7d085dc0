// conv2d_forward, conv2d_backward_input, conv2d_backward_weight on the GPU: NCHW, float32 /
// float64, any stride, padding, dilation and groups, as explicit im2col / col2im around the
// GEMM of csrc/cuda/gemm.h. The CPU twin is csrc/cpu/ref/conv2d.cpp (same math and layout).
//
// Math, with G groups, Cg = C / G, Cog = C_out / G, Kc = Cg*KH*KW and P = OH*OW:
//   y[n, co, oh, ow] = bias[co] + sum_{c < Cg, kh, kw} w[co, c, kh, kw]
//                      * x[n, g*Cg + c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]   (0 outside x)
// col[n] (G*Kc, P): row (c, kh, kw), column (oh, ow) holds the x value that tap reads (0 in the
// padding). Per image n and group g:
//   forward           y_g[n] (Cog, P)    = w_g (Cog, Kc) @ col_g[n] (Kc, P), then + bias per row
//   backward_input    col_g[n] (Kc, P)   = w_g^T @ grad_y_g[n] (Cog, P), then col2im
//   backward_weight   grad_w_g (Cog, Kc) = gyt_g (Cog, n*P) @ colt_g (Kc, n*P)^T over a chunk of
//                     n images laid side by side along the GEMM's depth, chunk after chunk
//                     grad_bias[co]      = sum_{n, oh, ow} grad_y[n, co, oh, ow]
// Images go through in chunks: im2col fills a column buffer (chunk, G*Kc, P) from the caching
// allocator (at most kColBudgetBytes, at least one image), then the GEMMs of the chunk run
// batched (over images per group, or over groups per image: whichever is fewer calls). A 1x1,
// stride-1, unpadded conv needs no buffer: x[n] (C, H*W) already is col[n]. backward_weight
// writes its column rows with the chunk's images side by side, colt (G*Kc, n, P), and grad_y as
// gyt (C_out, n, P), so each chunk is one GEMM (batched over the groups) of depth n*P: a GEMM
// per image had cost ~7 us of host time each (0.5 ms of LeNet-5's batch-64 step per conv).
//
// Determinism (same bits every run, no floating-point atomics): col2im is a gather (one thread
// per input pixel sums its column entries in tap order (kh, kw)); backward_weight sums each
// chunk in the GEMM's fixed depth order and accumulates chunk after chunk into grad_w through
// the GEMM's beta = 1; grad_bias is one block per channel with a fixed per-thread split and a
// fixed tree.
//
// Layout and preconditions (check_conv2d_shape; the Python mirror validates first, with
// friendlier messages): all tensors C-contiguous on the current device, every size >= 1,
// C and C_out divisible by groups, OH and OW from the formula in kernel_args.h. Every output
// (y, grad_x, grad_w, grad_bias) is overwritten.
//
// Tested: pytest tests/cuda/test_conv.py (float64 NumPy oracle, float32 and float64,
// integer-exact cases, chunking, run-twice bitwise equality of the backward kernels).
// Timed: python bench/bench_cuda.py (the LeNet conv2d and train-step rows, beside PyTorch).
// Bound: 2*N*C_out*Kc*P flops in the GEMMs; im2col moves N*C*KH*KW*P elements each way.
#include "cuda/conv.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/gemm.h"

namespace dlcore::cuda {
namespace {

// Threads per block of the elementwise-style kernels (im2col, col2im, bias add): a common
// choice that keeps several blocks resident per SM; the loops are grid-stride anyway.
constexpr int kThreads = 256;
// Threads per block of the grad_bias reduction: a power of two for the tree.
constexpr int kBiasThreads = 256;
// Column buffer cap: big enough that each chunk's GEMM fills the GPU, small enough to leave
// room for activations (LeNet conv1 at N = 64 needs 5 MB; a 3x3 conv of 256 channels at
// 56x56 takes 29 MB per image, so two images a chunk).
constexpr int64_t kColBudgetBytes = int64_t{64} << 20;
// Tensors (and one image's column matrix) above this many elements are refused, so no index
// product in a kernel can overflow int64 (2^50 elements is far past any device memory).
constexpr int64_t kMaxElems = int64_t{1} << 50;

// Sizes derived once from a Conv2dShape.
struct ConvDims {
  int64_t G, Cg, Cog;  // groups, input / output channels per group
  int64_t Kc;          // Cg*KH*KW: the GEMM reduction length of forward
  int64_t P;           // OH*OW: output positions per image
  int64_t HW;          // H*W: input positions per image
  int64_t col_image;   // G*Kc*P: one image's column matrix
  bool pointwise;      // 1x1, stride 1, no padding: x[n] (C, H*W) is its own column matrix
};

ConvDims dims_of(const Conv2dShape& s) {
  ConvDims d;
  d.G = s.groups;
  d.Cg = s.C / s.groups;
  d.Cog = s.C_out / s.groups;
  d.Kc = d.Cg * s.KH * s.KW;
  d.P = s.OH * s.OW;
  d.HW = s.H * s.W;
  d.col_image = d.G * d.Kc * d.P;
  d.pointwise = s.KH == 1 && s.KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
                s.pad_w == 0;
  return d;
}

// a * b for a, b >= 0, saturated at kMaxElems + 1 (never overflows).
int64_t mul_capped(int64_t a, int64_t b) {
  if (a != 0 && b > kMaxElems / a) return kMaxElems + 1;
  return std::min(a * b, kMaxElems + 1);
}

int64_t product_capped(std::initializer_list<int64_t> sizes) {
  int64_t n = 1;
  for (int64_t v : sizes) n = mul_capped(n, v);
  return n;
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

// Calls f(T{}) with T = float or double for `dtype`, or throws std::invalid_argument naming op.
template <class F>
void dispatch_float(const char* op, DType dtype, F&& f) {
  if (dtype == DType::f32) return f(float{});
  if (dtype == DType::f64) return f(double{});
  throw std::invalid_argument(std::string(op) + ": dtype must be float32 or float64, got " +
                              dtype_name(dtype));
}

// A temporary device buffer from the caching allocator, returned when it goes out of scope.
// Stream-ordered: kernels queued on current_stream() before the release still read it safely.
class ScratchBuffer {
 public:
  explicit ScratchBuffer(size_t nbytes) : device_(current_device()), ptr_(allocate(nbytes, device_)) {}
  ~ScratchBuffer() { release(ptr_, device_); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  template <class T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  int device_;
  void* ptr_;
};

// Images per chunk: as many column matrices as fit kColBudgetBytes, at least one, at most N.
// The 1x1 pointwise conv needs no buffer and takes all images at once.
int64_t chunk_images(const Conv2dShape& s, const ConvDims& d, int64_t elem_size) {
  if (d.pointwise) return s.N;
  return std::clamp<int64_t>(kColBudgetBytes / (d.col_image * elem_size), 1, s.N);
}

// ---- kernels ----------------------------------------------------------------------------------

// col (images, C*KH*KW, OH*OW) := the column matrices of x (images, C, H, W): row (c, kh, kw),
// column (oh, ow) holds x[c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw], or 0 in the padding.
// One thread per column entry; consecutive threads write consecutive ow.
template <class T>
__global__ void conv2d_im2col_cuda(Conv2dShape s, int64_t total, const T* __restrict__ x,
                                   T* __restrict__ col) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t r = i;
    const int64_t ow = r % s.OW; r /= s.OW;
    const int64_t oh = r % s.OH; r /= s.OH;
    const int64_t kw = r % s.KW; r /= s.KW;
    const int64_t kh = r % s.KH; r /= s.KH;
    const int64_t plane = r;  // n*C + c: the (H, W) plane of x this row reads
    const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
    const int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
    T v = T(0);
    if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) v = x[(plane * s.H + ih) * s.W + iw];
    col[i] = v;
  }
}

// colt (C*KH*KW, images, OH*OW) := the column matrices of x (images, C, H, W) with the images
// side by side in each row: entry (row (c, kh, kw), image n, column (oh, ow)), as in im2col.
// One thread per entry; consecutive threads write consecutive ow.
template <class T>
__global__ void conv2d_im2col_rows_cuda(Conv2dShape s, int64_t images, int64_t total, const T* __restrict__ x,
                                        T* __restrict__ colt) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t r = i;
    const int64_t ow = r % s.OW; r /= s.OW;
    const int64_t oh = r % s.OH; r /= s.OH;
    const int64_t n = r % images; r /= images;
    const int64_t kw = r % s.KW; r /= s.KW;
    const int64_t kh = r % s.KH; r /= s.KH;
    const int64_t c = r;
    const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h;
    const int64_t iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
    T v = T(0);
    if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) v = x[((n * s.C + c) * s.H + ih) * s.W + iw];
    colt[i] = v;
  }
}

// dst (rows, images, P) := src (images, rows, P): each row's images side by side.
template <class T>
__global__ void conv2d_images_inner_cuda(int64_t images, int64_t rows, int64_t P, int64_t total,
                                         const T* __restrict__ src, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t r = i;
    const int64_t p = r % P; r /= P;
    const int64_t n = r % images;
    const int64_t row = r / images;
    dst[i] = src[(n * rows + row) * P + p];
  }
}

// grad_x (images, C, H, W) := col2im of col (images, C*KH*KW, OH*OW), the adjoint of im2col.
// A gather: one thread per input pixel sums, in tap order (kh, kw), the column entries whose
// tap reads it (at most one output position per tap), so no atomics and the same bits every run.
template <class T>
__global__ void conv2d_col2im_cuda(Conv2dShape s, int64_t total, const T* __restrict__ col,
                                   T* __restrict__ grad_x) {
  const int64_t P = s.OH * s.OW;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t r = i;
    const int64_t iw = r % s.W; r /= s.W;
    const int64_t ih = r % s.H; r /= s.H;
    const T* col_c = col + r * s.KH * s.KW * P;  // (KH*KW, P): the rows of plane r = n*C + c
    T acc = T(0);
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const int64_t th = ih + s.pad_h - kh * s.dil_h;  // oh * stride_h, if tap kh of row oh reads ih
      if (th < 0) break;                               // and smaller for every later kh
      if (th % s.stride_h != 0 || th / s.stride_h >= s.OH) continue;
      const int64_t oh = th / s.stride_h;
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const int64_t tw = iw + s.pad_w - kw * s.dil_w;
        if (tw < 0) break;
        if (tw % s.stride_w != 0 || tw / s.stride_w >= s.OW) continue;
        acc += col_c[(kh * s.KW + kw) * P + oh * s.OW + tw / s.stride_w];
      }
    }
    grad_x[i] = acc;
  }
}

// y (N, C_out, P) += bias (C_out) per channel.
template <class T>
__global__ void conv2d_bias_add_cuda(int64_t total, int64_t P, int64_t C_out, const T* __restrict__ bias,
                                     T* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += bias[(i / P) % C_out];
}

// grad_bias[co] := sum over (n, p) of grad_y (N, C_out, P)[n, co, p]. One block per channel
// (grid-stride over channels); thread t sums the flat (n, p) positions t, t + kBiasThreads, ...
// in double, then a fixed tree in shared memory: the same bits every run.
template <class T>
__global__ void conv2d_grad_bias_cuda(int64_t N, int64_t C_out, int64_t P, const T* __restrict__ grad_y,
                                      T* __restrict__ grad_bias) {
  __shared__ double partial[kBiasThreads];
  const int t = static_cast<int>(threadIdx.x);
  for (int64_t co = blockIdx.x; co < C_out; co += gridDim.x) {
    double acc = 0;
    for (int64_t j = t; j < N * P; j += kBiasThreads) {
      const int64_t n = j / P, p = j - n * P;
      acc += grad_y[(n * C_out + co) * P + p];
    }
    partial[t] = acc;
    __syncthreads();
    for (int half = kBiasThreads / 2; half > 0; half /= 2) {
      if (t < half) partial[t] += partial[t + half];
      __syncthreads();
    }
    if (t == 0) grad_bias[co] = static_cast<T>(partial[0]);
    __syncthreads();  // partial is rewritten for the next channel
  }
}

// ---- launches ---------------------------------------------------------------------------------

template <class T>
void im2col(const Conv2dShape& s, int64_t images, const T* x, T* col) {
  const int64_t total = images * s.C * s.KH * s.KW * s.OH * s.OW;
  conv2d_im2col_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(s, total, x, col);
  check_launch("conv2d_im2col_cuda");
}

template <class T>
void im2col_rows(const Conv2dShape& s, int64_t images, const T* x, T* colt) {
  const int64_t total = images * s.C * s.KH * s.KW * s.OH * s.OW;
  conv2d_im2col_rows_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(s, images, total, x,
                                                                                          colt);
  check_launch("conv2d_im2col_rows_cuda");
}

template <class T>
void images_inner(int64_t images, int64_t rows, int64_t P, const T* src, T* dst) {
  const int64_t total = images * rows * P;
  conv2d_images_inner_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(images, rows, P, total,
                                                                                           src, dst);
  check_launch("conv2d_images_inner_cuda");
}

template <class T>
void col2im(const Conv2dShape& s, int64_t images, const T* col, T* grad_x) {
  const int64_t total = images * s.C * s.H * s.W;
  conv2d_col2im_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(s, total, col, grad_x);
  check_launch("conv2d_col2im_cuda");
}

// One operand of the per-(image, group) GEMMs: the matrix of image n, group g starts
// n*per_image + g*per_group elements past base; its rows are ld elements apart.
struct Operand {
  const void* base;
  int64_t ld, per_image, per_group;
};

// For every image n < images and group g < groups:
//   C(n, g) (M, N) := op(A(n, g)) @ op(B(n, g)) + beta * C(n, g)
// in as few GEMM calls as the layout allows: one call per group batched over the images, or
// one call per image batched over the groups, whichever is fewer. C is written (the Operand
// holds it as const only to share the struct).
template <class T>
void grouped_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double beta, int64_t images,
                  int64_t groups, const Operand& a, const Operand& b, const Operand& c) {
  const bool batch_images = images >= groups;
  const int64_t calls = batch_images ? groups : images;
  const auto at = [&](const Operand& o, int64_t call) {
    return static_cast<const T*>(o.base) + call * (batch_images ? o.per_group : o.per_image);
  };
  const auto stride = [&](const Operand& o) { return batch_images ? o.per_image : o.per_group; };
  for (int64_t call = 0; call < calls; ++call) {
    GemmDesc d{};
    d.dtype = dtype_of<T>();
    d.trans_a = trans_a;
    d.trans_b = trans_b;
    d.M = M; d.N = N; d.K = K;
    d.alpha = 1.0;
    d.beta = beta;
    d.A = at(a, call); d.lda = a.ld; d.stride_a = stride(a);
    d.B = at(b, call); d.ldb = b.ld; d.stride_b = stride(b);
    d.C = const_cast<T*>(at(c, call)); d.ldc = c.ld; d.stride_c = stride(c);
    d.batch = batch_images ? images : groups;
    d.bias = nullptr;
    d.relu = false;
    gemm(d);
  }
}

template <class T>
void forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  // x (N, C, H, W), w (C_out, Cg, KH, KW), bias (C_out) or null, y (N, C_out, OH, OW)
  const ConvDims d = dims_of(s);
  const int64_t chunk = chunk_images(s, d, sizeof(T));
  ScratchBuffer col(d.pointwise ? 0 : chunk * d.col_image * sizeof(T));  // (chunk, G*Kc, P)
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t images = std::min(chunk, s.N - n0);
    const T* x_n = x + n0 * s.C * d.HW;  // (images, C, H, W)
    const T* cols = x_n;                 // (images, G*Kc, P)
    if (!d.pointwise) {
      im2col(s, images, x_n, col.as<T>());
      cols = col.as<T>();
    }
    grouped_gemm<T>(false, false, d.Cog, d.P, d.Kc, 0.0, images, d.G,
                    {w, d.Kc, 0, d.Cog * d.Kc},                         // (Cog, Kc) per group
                    {cols, d.P, d.col_image, d.Kc * d.P},               // (Kc, P)
                    {y + n0 * s.C_out * d.P, d.P, s.C_out * d.P, d.Cog * d.P});  // (Cog, P)
  }
  if (bias) {
    const int64_t total = s.N * s.C_out * d.P;
    conv2d_bias_add_cuda<T><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(total, d.P, s.C_out,
                                                                                         bias, y);
    check_launch("conv2d_bias_add_cuda");
  }
}

template <class T>
void backward_input(const Conv2dShape& s, const T* w, const T* grad_y, T* grad_x) {
  // w (C_out, Cg, KH, KW), grad_y (N, C_out, OH, OW), grad_x (N, C, H, W)
  const ConvDims d = dims_of(s);
  const int64_t chunk = chunk_images(s, d, sizeof(T));
  ScratchBuffer col(d.pointwise ? 0 : chunk * d.col_image * sizeof(T));  // (chunk, G*Kc, P)
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t images = std::min(chunk, s.N - n0);
    T* gx_n = grad_x + n0 * s.C * d.HW;                // (images, C, H, W)
    T* cols = d.pointwise ? gx_n : col.as<T>();        // (images, G*Kc, P)
    grouped_gemm<T>(true, false, d.Kc, d.P, d.Cog, 0.0, images, d.G,
                    {w, d.Kc, 0, d.Cog * d.Kc},                                   // (Cog, Kc), read transposed
                    {grad_y + n0 * s.C_out * d.P, d.P, s.C_out * d.P, d.Cog * d.P},  // (Cog, P)
                    {cols, d.P, d.col_image, d.Kc * d.P});                        // (Kc, P)
    if (!d.pointwise) col2im(s, images, cols, gx_n);
  }
}

template <class T>
void backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  // x (N, C, H, W), grad_y (N, C_out, OH, OW), grad_w (C_out, Cg, KH, KW), grad_bias (C_out) or null
  const ConvDims d = dims_of(s);
  // Images per chunk: as many column matrices as fit kColBudgetBytes (the 1x1 conv too, whose
  // x is copied into colt here), at least one, at most N.
  const int64_t chunk = std::clamp<int64_t>(kColBudgetBytes / (d.col_image * static_cast<int64_t>(sizeof(T))), 1, s.N);
  ScratchBuffer colt(chunk * d.col_image * sizeof(T));  // (G*Kc, chunk, P)
  ScratchBuffer gyt(chunk * s.C_out * d.P * sizeof(T));  // (C_out, chunk, P)
  for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
    const int64_t images = std::min(chunk, s.N - n0);
    const T* x_n = x + n0 * s.C * d.HW;  // (images, C, H, W)
    if (d.pointwise)
      images_inner(images, s.C, d.P, x_n, colt.as<T>());  // x[n] (C, H*W) is col[n]
    else
      im2col_rows(s, images, x_n, colt.as<T>());
    images_inner(images, s.C_out, d.P, grad_y + n0 * s.C_out * d.P, gyt.as<T>());
    // One GEMM per chunk (batched over the groups) of depth K = images * P: the first chunk
    // overwrites grad_w (beta 0), the rest add (beta 1).
    const int64_t K = images * d.P;
    grouped_gemm<T>(false, true, d.Cog, d.Kc, K, n0 == 0 ? 0.0 : 1.0, 1, d.G,
                    {gyt.as<T>(), K, 0, d.Cog * K},   // (Cog, K) per group
                    {colt.as<T>(), K, 0, d.Kc * K},   // (Kc, K) per group, read transposed
                    {grad_w, d.Kc, 0, d.Cog * d.Kc});  // (Cog, Kc)
  }
  if (grad_bias) {
    // At most 65535 blocks (the grid-stride loop covers more channels); C_out >= 1.
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(s.C_out, 65535));
    conv2d_grad_bias_cuda<T><<<blocks, kBiasThreads, 0, current_stream()>>>(s.N, s.C_out, d.P, grad_y,
                                                                            grad_bias);
    check_launch("conv2d_grad_bias_cuda");
  }
}

}  // namespace

void check_conv2d_shape(const char* op, const Conv2dShape& s) {
  const auto fail = [&](const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what); };
  const auto str = [](int64_t v) { return std::to_string(v); };
  const std::string geometry = "input (" + str(s.N) + ", " + str(s.C) + ", " + str(s.H) + ", " + str(s.W) +
                               "), C_out " + str(s.C_out) + ", kernel (" + str(s.KH) + ", " + str(s.KW) +
                               "), output (" + str(s.OH) + ", " + str(s.OW) + "), stride (" + str(s.stride_h) +
                               ", " + str(s.stride_w) + "), padding (" + str(s.pad_h) + ", " + str(s.pad_w) +
                               "), dilation (" + str(s.dil_h) + ", " + str(s.dil_w) + "), groups " +
                               str(s.groups);
  for (int64_t v : {s.N, s.C, s.H, s.W, s.C_out, s.KH, s.KW, s.OH, s.OW, s.stride_h, s.stride_w, s.dil_h,
                    s.dil_w, s.groups})
    if (v < 1 || v > kMaxElems) fail("sizes, strides, dilations and groups must lie in [1, 2^50], got " + geometry);
  if (s.pad_h < 0 || s.pad_w < 0 || s.pad_h > kMaxElems || s.pad_w > kMaxElems)
    fail("padding must lie in [0, 2^50], got " + geometry);
  if (s.C % s.groups != 0 || s.C_out % s.groups != 0)
    fail("C and C_out must be divisible by groups, got " + geometry);
  const auto out_size = [](int64_t in, int64_t pad, int64_t k, int64_t dil, int64_t stride) -> int64_t {
    const int64_t span = mul_capped(dil, k - 1) + 1;
    if (span > in + 2 * pad) return 0;
    return (in + 2 * pad - span) / stride + 1;
  };
  if (s.OH != out_size(s.H, s.pad_h, s.KH, s.dil_h, s.stride_h) ||
      s.OW != out_size(s.W, s.pad_w, s.KW, s.dil_w, s.stride_w))
    fail("output size does not follow from the input, kernel, stride, padding and dilation: " + geometry);
  if (product_capped({s.N, s.C, s.H, s.W}) > kMaxElems || product_capped({s.C_out, s.C / s.groups, s.KH, s.KW}) > kMaxElems ||
      product_capped({s.N, s.C_out, s.OH, s.OW}) > kMaxElems ||
      product_capped({s.C, s.KH, s.KW, s.OH, s.OW}) > kMaxElems)
    fail("sizes too large (a tensor or column matrix over 2^50 elements): " + geometry);
}

void conv2d_forward(DType dtype, const Conv2dShape& s, const void* x, const void* w, const void* bias,
                    void* y) {
  check_conv2d_shape("conv2d_forward", s);
  dispatch_float("conv2d_forward", dtype, [&](auto t) {
    using T = decltype(t);
    forward<T>(s, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
               static_cast<T*>(y));
  });
}

void conv2d_backward_input(DType dtype, const Conv2dShape& s, const void* w, const void* grad_y,
                           void* grad_x) {
  check_conv2d_shape("conv2d_backward_input", s);
  dispatch_float("conv2d_backward_input", dtype, [&](auto t) {
    using T = decltype(t);
    backward_input<T>(s, static_cast<const T*>(w), static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
  });
}

void conv2d_backward_weight(DType dtype, const Conv2dShape& s, const void* x, const void* grad_y,
                            void* grad_w, void* grad_bias) {
  check_conv2d_shape("conv2d_backward_weight", s);
  dispatch_float("conv2d_backward_weight", dtype, [&](auto t) {
    using T = decltype(t);
    backward_weight<T>(s, static_cast<const T*>(x), static_cast<const T*>(grad_y), static_cast<T*>(grad_w),
                       static_cast<T*>(grad_bias));
  });
}

}  // namespace dlcore::cuda

// CUDA reduce family, the GPU twin of csrc/cpu/ref/{reduce,softmax,loss}.cpp: sum and max
// (with the first argmax) over the middle axis of an (outer, R, inner) view, the max gradient,
// softmax / log_softmax and their gradients, and the classification losses (cross_entropy
// fused with log-softmax, nll_loss).
//
// Math (o, r, i index outer, R, inner; n, c index rows and classes):
//   sum          out[o, i] = sum_r x[o, r, i]
//   max          out[o, i] = max_r x[o, r, i], index[o, i] = first r attaining it; a NaN is
//                the max (the first NaN), as on the CPU and in torch.max
//   max backward grad_x[o, r, i] = (r == index[o, i]) ? grad_out[o, i] : 0
//   softmax      y = exp(x - m) / s, log_softmax y = (x - m) - log(s); m = max_r x,
//                s = sum_r exp(x - m) (every exponent <= 0: no overflow)
//   backward     softmax: grad_x = y * (grad_y - sum_r grad_y y); log: grad_y - exp(y) sum_r grad_y
//   cross_entropy  lse[n] = m + log(s), loss[n] = (m - logits[n, t]) + log(s), t = target[n];
//                grad = grad_loss[n] * (exp(logits - lse[n]) - [c == t])
//   nll_loss     loss[n] = -logp[n, t], grad_logp[n, c] = -grad_loss[n] [c == t]
//   Rows with t == ignore_index get loss 0 and a zero gradient row (their lse is still set).
//
// Layout: every array C-contiguous; x, y, grad_x (outer, R, inner); out, index, grad_out
// (outer, inner); logits / logp / grads (N, C); target, loss, lse, grad_loss (N).
//
// Determinism (same bits every run, no atomics): every output is reduced in an order fixed
// by the shape alone. A thread folds its elements in increasing r; a block combines its
// threads with a fixed shuffle tree (__shfl_xor_sync butterfly, then one warp over the
// per-warp results). Long reductions split R into S chunks whose partial results go to a
// temporary (outer, S, inner) buffer that one thread per output then folds in order s = 0..S-1.
// S, the chunk and the block size are functions of the shape only (never of the device).
//
// Accuracy: float sums (reduce, softmax, losses) accumulate in double, as the CPU kernels do,
// so float32 results are within a few ulp of the float64 answer; int64 / bool sums are
// exact int64. exp is the full-precision expf / exp (no fast math).
//
// Two shapes of work for an (outer, R, inner) view:
//   inner == 1  contiguous rows: one block per (row, chunk); thread t takes r = t, t + blockDim, ...
//   inner  > 1  one thread per (o, chunk, i); i is fastest so a warp reads 32 consecutive
//               columns of one r (coalesced), looping over r.
// softmax / losses do not split (one block per row, or one thread per column).
//
// Bad values never cause an out-of-bounds access: a target outside [0, C) that is not
// ignore_index, or a max index outside [0, R), gives NaN where it would have been used. The
// Python mirror rejects bad targets in the loss forwards with a readable error; the targets
// and indices a backward gets come from a checked forward, so it does not copy them back.
//
// Tested by tests/cuda/test_reduce.py (float64 NumPy oracles, f32/f64, run-twice bitwise):
//   DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/cuda/test_reduce.py
// Timed by: no CUDA benchmark yet (correctness first; speed is a later issue).
// Bound: one read of x (reduce), ~3 passes over x plus one exp per element (softmax,
// cross_entropy): memory bandwidth, ~3.35 TB/s on an H100 SXM. Known slow shapes, correct
// but far from the bound: softmax over a long dim with few columns (one thread per column).
#include <math.h>  // INFINITY, NAN: usable in device code

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/reduce.h"

namespace dlcore::cuda {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
// Threads of a block that owns a row: at most 8 warps, enough to saturate memory with a few
// blocks per SM, and the per-warp results fit one warp for the final tree.
constexpr int kMaxRowThreads = 256;
constexpr int kMaxWarps = kMaxRowThreads / kWarp;
// Threads per block of the one-thread-per-item kernels (a multiple of the warp).
constexpr int kItemThreads = 256;
// Splitting R: only when there are too few rows / columns to fill the device, into at most
// kMaxSplit chunks (the fold of the partials is serial per output), never into chunks
// shorter than kRowMinChunk (rows: 32 elements per thread of 256) or kColMinChunk (columns).
// kFillBlocks ~ 8 blocks of 256 on each of the H100's 132 SMs; kFillThreads = 2^17 threads.
constexpr int64_t kFillBlocks = 1024;
constexpr int64_t kFillThreads = int64_t{1} << 17;
constexpr int64_t kMaxSplit = 1024;
constexpr int64_t kRowMinChunk = 8192;
constexpr int64_t kColMinChunk = 64;

__host__ __device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Threads of a block reducing `len` contiguous elements: whole warps, 32 .. kMaxRowThreads.
int row_threads(int64_t len) {
  return static_cast<int>(min64(kMaxRowThreads, max64(kWarp, ceil_div(len, kWarp) * kWarp)));
}

// ---- shuffles and the fixed reduction trees ---------------------------------------------------

template <class V>
__device__ inline V shfl_xor(V v, int lane_mask) {
  return __shfl_xor_sync(kFullMask, v, lane_mask);
}
// bool is stored as one byte: shuffle it as an int.
__device__ inline uint8_t shfl_xor(uint8_t v, int lane_mask) {
  return static_cast<uint8_t>(__shfl_xor_sync(kFullMask, static_cast<int>(v), lane_mask));
}

__device__ inline float exp_t(float v) { return expf(v); }
__device__ inline double exp_t(double v) { return exp(v); }

// The value below every element: -inf for floats (so a row of -inf still has a max).
template <class T> __device__ inline T lowest();
template <> __device__ inline float lowest<float>() { return -INFINITY; }
template <> __device__ inline double lowest<double>() { return -static_cast<double>(INFINITY); }
template <> __device__ inline int64_t lowest<int64_t>() { return INT64_MIN; }
template <> __device__ inline uint8_t lowest<uint8_t>() { return 0; }

// Combine rules ("Ops"): Part is the partial result; identity() is neutral; combine(a, b) is
// commutative (a + b == b + a in IEEE; the max picks by value, then by index), so the
// butterfly leaves the same bits in every lane.
template <class V>
struct Add {
  using Part = V;
  __device__ static Part identity() { return V(0); }
  __device__ static Part combine(Part a, Part b) { return a + b; }
  __device__ static Part shfl(Part p, int lane_mask) { return shfl_xor(p, lane_mask); }
};

// Max of values only (softmax's m). A NaN wins, so every lane agrees on m (a zero max may
// differ in sign between lanes, which leaves x - m unchanged); the row's outputs are NaN then.
template <class T>
struct MaxValue {
  using Part = T;
  __device__ static Part identity() { return lowest<T>(); }
  __device__ static Part combine(Part a, Part b) { return (b > a || b != b) ? b : a; }
  __device__ static Part shfl(Part p, int lane_mask) { return shfl_xor(p, lane_mask); }
};

// Every lane of the warp gets the combination of the 32 lanes' parts (xor butterfly).
template <class Op>
__device__ typename Op::Part warp_all_reduce(typename Op::Part p) {
  for (int lane_mask = kWarp / 2; lane_mask > 0; lane_mask /= 2) p = Op::combine(p, Op::shfl(p, lane_mask));
  return p;
}

// Every thread of the block gets the combination of all threads' parts. Called by all threads
// of the block (it holds barriers); blockDim.x is a multiple of 32, at most kMaxRowThreads.
// Each warp folds the per-warp results with the same tree, so all threads hold the same bits.
template <class Op>
__device__ typename Op::Part block_all_reduce(typename Op::Part p) {
  __shared__ typename Op::Part warp_parts[kMaxWarps];  // (warps)
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  p = warp_all_reduce<Op>(p);
  if (lane == 0) warp_parts[warp] = p;
  __syncthreads();
  p = lane < static_cast<int>(blockDim.x / kWarp) ? warp_parts[lane] : Op::identity();
  p = warp_all_reduce<Op>(p);
  __syncthreads();  // warp_parts may be rewritten by the next call
  return p;
}

// ---- sum / max reductions -------------------------------------------------------------------

// Sum: double for floats, exact int64 for int64 and bool.
template <class T> struct SumTypes { using Acc = double; using Out = T; };
template <> struct SumTypes<int64_t> { using Acc = int64_t; using Out = int64_t; };
template <> struct SumTypes<uint8_t> { using Acc = int64_t; using Out = int64_t; };

template <class T>
struct SumOp : Add<typename SumTypes<T>::Acc> {
  using Acc = typename SumTypes<T>::Acc;
  using Out = typename SumTypes<T>::Out;
  __device__ static Acc make(T v, int64_t) { return static_cast<Acc>(v); }
  __device__ static void store(Acc p, int64_t m, Out* out, int64_t*) { out[m] = static_cast<Out>(p); }
};

// A max candidate: value v at reduction position r. The identity has r = INT64_MAX, so any
// element (even -inf) beats it.
template <class T>
struct MaxPart {
  T v;
  int64_t r;
};

// Whether candidate a wins over b: a NaN beats a number; otherwise the larger value; ties
// (equal values or both NaN) go to the smaller position, so the first max wins.
template <class T>
__device__ inline bool wins(MaxPart<T> a, MaxPart<T> b) {
  const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
  if (a_nan || b_nan) return a_nan && (!b_nan || a.r < b.r);
  return a.v > b.v || (a.v == b.v && a.r < b.r);
}

template <class T>
struct ArgMaxOp {
  using Part = MaxPart<T>;
  using Out = T;
  __device__ static Part identity() { return {lowest<T>(), INT64_MAX}; }
  __device__ static Part combine(Part a, Part b) { return wins(b, a) ? b : a; }
  __device__ static Part shfl(Part p, int lane_mask) {
    return {shfl_xor(p.v, lane_mask), shfl_xor(p.r, lane_mask)};
  }
  __device__ static Part make(T v, int64_t r) { return {v, r}; }
  __device__ static void store(Part p, int64_t m, Out* out, int64_t* index) {
    out[m] = p.v;
    index[m] = p.r;
  }
};

// Contiguous rows x (rows, R), each split into S chunks of `chunk` elements. Block-stride over
// tasks (row, s); the block folds elements [s * chunk, min(R, (s + 1) * chunk)) of the row.
// S == 1: thread 0 stores the row's result; else it writes parts[row * S + s] ((rows, S)).
template <class Op, class T>
__global__ void reduce_rows_kernel(const T* x, int64_t rows, int64_t R, int64_t S, int64_t chunk,
                                   typename Op::Out* out, int64_t* index, typename Op::Part* parts) {
  const int64_t tasks = rows * S;
  for (int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
    const int64_t row = task / S, s = task % S;
    const int64_t end = min64(R, (s + 1) * chunk);
    const T* xr = x + row * R;  // (R)
    typename Op::Part p = Op::identity();
    for (int64_t r = s * chunk + threadIdx.x; r < end; r += blockDim.x) p = Op::combine(p, Op::make(xr[r], r));
    p = block_all_reduce<Op>(p);
    if (threadIdx.x == 0) {
      if (S == 1) {
        Op::store(p, row, out, index);
      } else {
        parts[task] = p;
      }
    }
  }
}

// x (outer, R, inner), inner > 1: one thread per item (o, s, i), i fastest (coalesced); it folds
// rows r in [s * chunk, min(R, (s + 1) * chunk)) of column i in order. S == 1: stores
// out[o, i]; else writes parts[item] ((outer, S, inner)).
template <class Op, class T>
__global__ void reduce_cols_kernel(const T* x, int64_t outer, int64_t R, int64_t inner, int64_t S,
                                   int64_t chunk, typename Op::Out* out, int64_t* index,
                                   typename Op::Part* parts) {
  const int64_t items = outer * S * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; item < items; item += stride) {
    const int64_t i = item % inner, os = item / inner;
    const int64_t s = os % S, o = os / S;
    const int64_t end = min64(R, (s + 1) * chunk);
    const T* xc = x + o * R * inner + i;  // (R) with stride inner
    typename Op::Part p = Op::identity();
    for (int64_t r = s * chunk; r < end; ++r) p = Op::combine(p, Op::make(xc[r * inner], r));
    if (S == 1) {
      Op::store(p, o * inner + i, out, index);
    } else {
      parts[item] = p;
    }
  }
}

// parts (outer, S, inner) -> out, index (outer, inner): one thread per output folds s = 0..S-1.
template <class Op>
__global__ void reduce_parts_kernel(const typename Op::Part* parts, int64_t outer, int64_t S, int64_t inner,
                                    typename Op::Out* out, int64_t* index) {
  const int64_t n = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t m = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; m < n; m += stride) {
    const int64_t o = m / inner, i = m % inner;
    const typename Op::Part* pc = parts + o * S * inner + i;  // (S) with stride inner
    typename Op::Part p = Op::identity();
    for (int64_t s = 0; s < S; ++s) p = Op::combine(p, pc[s * inner]);
    Op::store(p, m, out, index);
  }
}

// A temporary device buffer from the caching allocator, returned when it goes out of scope
// (stream-ordered: kernels queued before the release still own it).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t nbytes) : device_(current_device()), ptr_(allocate(nbytes, device_)) {}
  ~DeviceBuffer() {
    try {
      if (ptr_) release(ptr_, device_);
    } catch (...) {  // a destructor must not throw; the block is lost to the cache at worst
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  int device_;
  void* ptr_;
};

// How R is cut: S chunks of `chunk` elements (the last may be shorter, none is empty; R == 0
// gives one empty chunk).
struct Split {
  int64_t S, chunk;
};

Split make_split(int64_t R, int64_t S) {
  const int64_t chunk = max64(1, ceil_div(R, max64(1, S)));
  return {max64(1, ceil_div(R, chunk)), chunk};
}

// Rows: split only while rows < kFillBlocks, into chunks of >= kRowMinChunk elements.
Split split_rows(int64_t rows, int64_t R) {
  if (rows >= kFillBlocks) return make_split(R, 1);
  return make_split(R, min64(kMaxSplit, min64(ceil_div(R, kRowMinChunk), ceil_div(kFillBlocks, rows))));
}

// Columns: split only while outputs < kFillThreads, into chunks of >= kColMinChunk rows.
Split split_cols(int64_t outputs, int64_t R) {
  if (outputs >= kFillThreads) return make_split(R, 1);
  return make_split(R, min64(kMaxSplit, min64(ceil_div(R, kColMinChunk), ceil_div(kFillThreads, outputs))));
}

template <class Op, class T>
void reduce_run(int64_t outer, int64_t R, int64_t inner, const T* x, typename Op::Out* out, int64_t* index) {
  using Part = typename Op::Part;
  if (outer * inner == 0) return;
  cudaStream_t stream = current_stream();
  const Split sp = inner == 1 ? split_rows(outer, R) : split_cols(outer * inner, R);
  DeviceBuffer parts(sp.S > 1 ? static_cast<size_t>(outer * sp.S * inner) * sizeof(Part) : 0);
  Part* pp = static_cast<Part*>(parts.get());  // (outer, S, inner) or null
  if (inner == 1) {
    reduce_rows_kernel<Op, T><<<grid_for(outer * sp.S, 1), row_threads(sp.chunk), 0, stream>>>(
        x, outer, R, sp.S, sp.chunk, out, index, pp);
    check_launch("reduce_rows_kernel");
  } else {
    reduce_cols_kernel<Op, T><<<grid_for(outer * sp.S * inner, kItemThreads), kItemThreads, 0, stream>>>(
        x, outer, R, inner, sp.S, sp.chunk, out, index, pp);
    check_launch("reduce_cols_kernel");
  }
  if (sp.S > 1) {
    reduce_parts_kernel<Op><<<grid_for(outer * inner, kItemThreads), kItemThreads, 0, stream>>>(
        pp, outer, sp.S, inner, out, index);
    check_launch("reduce_parts_kernel");
  }
}

template <class T>
void reduce_dispatch(ReduceOp op, int64_t outer, int64_t R, int64_t inner, const void* x, void* out,
                     int64_t* index) {
  const T* xt = static_cast<const T*>(x);
  if (op == ReduceOp::sum) {
    reduce_run<SumOp<T>>(outer, R, inner, xt, static_cast<typename SumTypes<T>::Out*>(out), nullptr);
  } else {
    reduce_run<ArgMaxOp<T>>(outer, R, inner, xt, static_cast<T*>(out), index);
  }
}

// grad_x (outer, R, inner), one thread per element; index, grad_out (outer, inner).
template <class T>
__global__ void reduce_max_backward_kernel(int64_t outer, int64_t R, int64_t inner, const int64_t* index,
                                           const T* grad_out, T* grad_x) {
  const int64_t n = outer * R * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t i = e % inner, orr = e / inner;
    const int64_t r = orr % R, o = orr / R;
    const int64_t m = o * inner + i;
    const int64_t at = index[m];
    grad_x[e] = (at < 0 || at >= R) ? static_cast<T>(NAN) : (r == at ? grad_out[m] : T(0));
  }
}

// ---- softmax / log_softmax ------------------------------------------------------------------

// Rows x, y (rows, R): one block per row (block-stride); m and s shared by the whole block.
template <class T>
__global__ void softmax_rows_kernel(bool log, int64_t rows, int64_t R, const T* x, T* y) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * R;  // (R)
    T* yr = y + row * R;        // (R)
    T m = lowest<T>();
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) m = MaxValue<T>::combine(m, xr[r]);
    m = block_all_reduce<MaxValue<T>>(m);
    double s = 0.0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += static_cast<double>(exp_t(xr[r] - m));
    s = block_all_reduce<Add<double>>(s);
    if (log) {
      const T log_s = static_cast<T>(::log(s));
      for (int64_t r = threadIdx.x; r < R; r += blockDim.x) yr[r] = (xr[r] - m) - log_s;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t r = threadIdx.x; r < R; r += blockDim.x) yr[r] = exp_t(xr[r] - m) * inv;
    }
  }
}

// x, y (outer, R, inner), inner > 1: one thread per column (o, i), i fastest (coalesced).
template <class T>
__global__ void softmax_cols_kernel(bool log, int64_t outer, int64_t R, int64_t inner, const T* x, T* y) {
  const int64_t n = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; col < n; col += stride) {
    const int64_t off = (col / inner) * R * inner + col % inner;
    const T* xc = x + off;  // (R) with stride inner
    T* yc = y + off;        // (R) with stride inner
    T m = lowest<T>();
    for (int64_t r = 0; r < R; ++r) m = MaxValue<T>::combine(m, xc[r * inner]);
    double s = 0.0;
    for (int64_t r = 0; r < R; ++r) s += static_cast<double>(exp_t(xc[r * inner] - m));
    if (log) {
      const T log_s = static_cast<T>(::log(s));
      for (int64_t r = 0; r < R; ++r) yc[r * inner] = (xc[r * inner] - m) - log_s;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t r = 0; r < R; ++r) yc[r * inner] = exp_t(xc[r * inner] - m) * inv;
    }
  }
}

// The row term of the backward: grad_y * y (softmax) or grad_y (log_softmax), in double.
template <class T>
__device__ inline double backward_term(bool log, T y, T g) {
  return log ? static_cast<double>(g) : static_cast<double>(g) * static_cast<double>(y);
}

// The backward output from the row's dot d (in T).
template <class T>
__device__ inline T backward_value(bool log, T y, T g, T d) {
  return log ? g - exp_t(y) * d : y * (g - d);
}

// Rows y, grad_y, grad_x (rows, R): one block per row.
template <class T>
__global__ void softmax_backward_rows_kernel(bool log, int64_t rows, int64_t R, const T* y, const T* grad_y,
                                             T* grad_x) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t off = row * R;
    double dot = 0.0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) dot += backward_term(log, y[off + r], grad_y[off + r]);
    const T d = static_cast<T>(block_all_reduce<Add<double>>(dot));
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x)
      grad_x[off + r] = backward_value(log, y[off + r], grad_y[off + r], d);
  }
}

// y, grad_y, grad_x (outer, R, inner), inner > 1: one thread per column (o, i).
template <class T>
__global__ void softmax_backward_cols_kernel(bool log, int64_t outer, int64_t R, int64_t inner, const T* y,
                                             const T* grad_y, T* grad_x) {
  const int64_t n = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; col < n; col += stride) {
    const int64_t off = (col / inner) * R * inner + col % inner;  // column origin; stride inner
    double dot = 0.0;
    for (int64_t r = 0; r < R; ++r) dot += backward_term(log, y[off + r * inner], grad_y[off + r * inner]);
    const T d = static_cast<T>(dot);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t e = off + r * inner;
      grad_x[e] = backward_value(log, y[e], grad_y[e], d);
    }
  }
}

// ---- cross_entropy / nll_loss ---------------------------------------------------------------

__device__ inline bool valid_target(int64_t t, int64_t C) { return 0 <= t && t < C; }

// logits (N, C): one block per row; thread 0 writes lse[n] and loss[n].
template <class T>
__global__ void cross_entropy_forward_kernel(int64_t N, int64_t C, const T* logits, const int64_t* target,
                                             int64_t ignore_index, T* loss, T* lse) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* row = logits + n * C;  // (C)
    T m = lowest<T>();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = MaxValue<T>::combine(m, row[c]);
    m = block_all_reduce<MaxValue<T>>(m);
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += static_cast<double>(exp_t(row[c] - m));
    s = block_all_reduce<Add<double>>(s);
    if (threadIdx.x == 0) {
      const double log_s = ::log(s);
      lse[n] = static_cast<T>(static_cast<double>(m) + log_s);
      const int64_t t = target[n];
      if (t == ignore_index) {
        loss[n] = T(0);
      } else {
        loss[n] = valid_target(t, C) ? static_cast<T>(static_cast<double>(m - row[t]) + log_s) : static_cast<T>(NAN);
      }
    }
  }
}

// grad_logits (N, C), one thread per element.
template <class T>
__global__ void cross_entropy_backward_kernel(int64_t N, int64_t C, const T* logits, const int64_t* target,
                                              int64_t ignore_index, const T* lse, const T* grad_loss,
                                              T* grad_logits) {
  const int64_t total = N * C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t n = e / C, c = e % C;
    const int64_t t = target[n];
    T v = T(0);
    if (t != ignore_index) {
      if (valid_target(t, C)) {
        const T g = grad_loss[n];
        v = g * exp_t(logits[e] - lse[n]);
        if (c == t) v -= g;
      } else {
        v = static_cast<T>(NAN);
      }
    }
    grad_logits[e] = v;
  }
}

// loss (N): one thread per row.
template <class T>
__global__ void nll_loss_forward_kernel(int64_t N, int64_t C, const T* logp, const int64_t* target,
                                        int64_t ignore_index, T* loss) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += stride) {
    const int64_t t = target[n];
    if (t == ignore_index) {
      loss[n] = T(0);
    } else {
      loss[n] = valid_target(t, C) ? -logp[n * C + t] : static_cast<T>(NAN);
    }
  }
}

// grad_logp (N, C), one thread per element.
template <class T>
__global__ void nll_loss_backward_kernel(int64_t N, int64_t C, const int64_t* target, int64_t ignore_index,
                                         const T* grad_loss, T* grad_logp) {
  const int64_t total = N * C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t n = e / C, c = e % C;
    const int64_t t = target[n];
    T v = T(0);
    if (t != ignore_index) {
      if (!valid_target(t, C)) {
        v = static_cast<T>(NAN);
      } else if (c == t) {
        v = -grad_loss[n];
      }
    }
    grad_logp[e] = v;
  }
}

// ---- host-side checks and dtype dispatch -----------------------------------------------------

[[noreturn]] void bad(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

void check_sizes(const char* op, int64_t a, int64_t b, int64_t c) {
  if (a < 0 || b < 0 || c < 0)
    bad(op, "sizes must be non-negative, got (" + std::to_string(a) + ", " + std::to_string(b) + ", " +
                std::to_string(c) + ")");
}

// The losses' sizes: N, C >= 0 and C >= 1 when there are rows.
void check_rows(const char* op, int64_t N, int64_t C) {
  if (N < 0 || C < 0 || (N > 0 && C == 0))
    bad(op, "need N >= 0 and C >= 1, got N = " + std::to_string(N) + ", C = " + std::to_string(C));
}

// Calls f(T{}) with T the C++ type of a float dtype, else throws naming the op.
template <class F>
void dispatch_float(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: bad(op, std::string("expected float32 or float64, got ") + dtype_name(dtype));
  }
}

}  // namespace

void reduce_forward(ReduceOp op, DType dtype, int64_t outer, int64_t R, int64_t inner, const void* x,
                    void* out, int64_t* index) {
  const char* name = op == ReduceOp::sum ? "reduce_forward(sum)" : "reduce_forward(max)";
  if (op != ReduceOp::sum && op != ReduceOp::max) bad("reduce_forward", "unknown op");
  check_sizes(name, outer, R, inner);
  if (op == ReduceOp::max && R == 0 && outer * inner > 0) bad(name, "cannot reduce over an empty dimension");
  switch (dtype) {
    case DType::f32: reduce_dispatch<float>(op, outer, R, inner, x, out, index); return;
    case DType::f64: reduce_dispatch<double>(op, outer, R, inner, x, out, index); return;
    case DType::i64: reduce_dispatch<int64_t>(op, outer, R, inner, x, out, index); return;
    case DType::b8: reduce_dispatch<uint8_t>(op, outer, R, inner, x, out, index); return;
  }
  bad(name, "unknown dtype code " + std::to_string(static_cast<int>(dtype)));
}

void reduce_max_backward(DType dtype, int64_t outer, int64_t R, int64_t inner, const int64_t* index,
                         const void* grad_out, void* grad_x) {
  const char* name = "reduce_max_backward";
  check_sizes(name, outer, R, inner);
  const int64_t n = outer * R * inner;
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    reduce_max_backward_kernel<T><<<grid_for(n, kItemThreads), kItemThreads, 0, current_stream()>>>(
        outer, R, inner, index, static_cast<const T*>(grad_out), static_cast<T*>(grad_x));
    check_launch("reduce_max_backward_kernel");
  });
}

void softmax_forward(DType dtype, bool log, int64_t outer, int64_t R, int64_t inner, const void* x, void* y) {
  const char* name = log ? "softmax_forward(log)" : "softmax_forward";
  check_sizes(name, outer, R, inner);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (outer * R * inner == 0) return;
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    if (inner == 1) {
      softmax_rows_kernel<T><<<grid_for(outer, 1), row_threads(R), 0, current_stream()>>>(log, outer, R, xt, yt);
      check_launch("softmax_rows_kernel");
    } else {
      softmax_cols_kernel<T><<<grid_for(outer * inner, kItemThreads), kItemThreads, 0, current_stream()>>>(
          log, outer, R, inner, xt, yt);
      check_launch("softmax_cols_kernel");
    }
  });
}

void softmax_backward(DType dtype, bool log, int64_t outer, int64_t R, int64_t inner, const void* y,
                      const void* grad_y, void* grad_x) {
  const char* name = log ? "softmax_backward(log)" : "softmax_backward";
  check_sizes(name, outer, R, inner);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (outer * R * inner == 0) return;
    const T* yt = static_cast<const T*>(y);
    const T* gy = static_cast<const T*>(grad_y);
    T* gx = static_cast<T*>(grad_x);
    if (inner == 1) {
      softmax_backward_rows_kernel<T><<<grid_for(outer, 1), row_threads(R), 0, current_stream()>>>(
          log, outer, R, yt, gy, gx);
      check_launch("softmax_backward_rows_kernel");
    } else {
      softmax_backward_cols_kernel<T><<<grid_for(outer * inner, kItemThreads), kItemThreads, 0,
                                        current_stream()>>>(log, outer, R, inner, yt, gy, gx);
      check_launch("softmax_backward_cols_kernel");
    }
  });
}

void cross_entropy_forward(DType dtype, int64_t N, int64_t C, const void* logits, const int64_t* target,
                           int64_t ignore_index, void* loss, void* lse) {
  const char* name = "cross_entropy_forward";
  check_rows(name, N, C);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (N == 0) return;
    cross_entropy_forward_kernel<T><<<grid_for(N, 1), row_threads(C), 0, current_stream()>>>(
        N, C, static_cast<const T*>(logits), target, ignore_index, static_cast<T*>(loss), static_cast<T*>(lse));
    check_launch("cross_entropy_forward_kernel");
  });
}

void cross_entropy_backward(DType dtype, int64_t N, int64_t C, const void* logits, const int64_t* target,
                            int64_t ignore_index, const void* lse, const void* grad_loss, void* grad_logits) {
  const char* name = "cross_entropy_backward";
  check_rows(name, N, C);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (N == 0) return;
    cross_entropy_backward_kernel<T><<<grid_for(N * C, kItemThreads), kItemThreads, 0, current_stream()>>>(
        N, C, static_cast<const T*>(logits), target, ignore_index, static_cast<const T*>(lse),
        static_cast<const T*>(grad_loss), static_cast<T*>(grad_logits));
    check_launch("cross_entropy_backward_kernel");
  });
}

void nll_loss_forward(DType dtype, int64_t N, int64_t C, const void* logp, const int64_t* target,
                      int64_t ignore_index, void* loss) {
  const char* name = "nll_loss_forward";
  check_rows(name, N, C);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (N == 0) return;
    nll_loss_forward_kernel<T><<<grid_for(N, kItemThreads), kItemThreads, 0, current_stream()>>>(
        N, C, static_cast<const T*>(logp), target, ignore_index, static_cast<T*>(loss));
    check_launch("nll_loss_forward_kernel");
  });
}

void nll_loss_backward(DType dtype, int64_t N, int64_t C, const int64_t* target, int64_t ignore_index,
                       const void* grad_loss, void* grad_logp) {
  const char* name = "nll_loss_backward";
  check_rows(name, N, C);
  dispatch_float(name, dtype, [&](auto tag) {
    using T = decltype(tag);
    if (N == 0) return;
    nll_loss_backward_kernel<T><<<grid_for(N * C, kItemThreads), kItemThreads, 0, current_stream()>>>(
        N, C, target, ignore_index, static_cast<const T*>(grad_loss), static_cast<T*>(grad_logp));
    check_launch("nll_loss_backward_kernel");
  });
}

}  // namespace dlcore::cuda

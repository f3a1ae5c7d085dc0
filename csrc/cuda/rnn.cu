// CUDA recurrences, the pointwise half of one time step: LSTM, GRU and Elman RNN (tanh / relu)
// over a packed sequence, forward and backward through time. The GEMM half of the step (the
// recurrent product over the previous state) runs in csrc/cuda/gemm.cu; the Python mirrors
// (python/dlcore/cuda/kernels/rnn.py) walk the steps on the host, one GEMM (two when the
// previous states come from two arrays) and one of these kernels per step.
//
// Math (the CPU kernels' of csrc/cpu/rnn/, gate orders as PyTorch's), per cell of an active row:
//   LSTM  i, f, o = sigmoid(pre), g = tanh(pre); c = f c_prev + i g; h = o tanh(c)
//         back: dh = carry_h + grad_y; dc = carry_c + dh o (1 - tanh(c)^2)
//               d(i, f, g, o) = (dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2), dh tanh(c) o(1-o))
//               carry_c := dc f              (then carry_h := d_gates W_hh, a GEMM)
//   GRU   r = sigmoid(xr + hr); z = sigmoid(xz + hz); n = tanh(xn + r hn); h = (1-z) n + z h_prev
//         back: dn = dh (1-z)(1-n^2); dz = dh (h_prev - n) z(1-z); dr = dn hn r(1-r)
//               d(x side) = (dr, dz, dn); d(h side) = (dr, dz, dn r)
//               carry_h := dh z              (then carry_h += d(h side) W_hh, a GEMM)
//   RNN   h = tanh(pre) | max(pre, 0);  back: d_pre = dh (1 - h^2) | dh [h > 0]
//
// Layout (RnnStep, csrc/cuda/rnn.h): a step's arrays start at its first packed row; the rows
// [0, carried) read their previous state at the same index of the `prev` rows, the rest at row
// r of the initial state; so with e = r H + j both reads use index e.
// Preconditions: checked on the host here (step geometry, pointers) and in the mirrors
// (shapes, dtypes, devices). Every output element of the step is OVERWRITTEN; gates (and the
// Elman y) are updated in place, each element by the one thread that reads it.
// Determinism: one thread per cell, no atomics, no shared memory; the same bits every run.
// Threads: 256 per block (8 warps; these kernels are memory-bound and light on registers),
// grid-stride loops sized by grid_for; indices are int64.
// Tested: PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_rnn.py (each mirror against
// the CPU _C recurrence in float64 and float32, padded / packed / reverse; nn.LSTM, GRU, RNN and
// the cells against the same modules on the CPU, outputs and every gradient).
// Bound: memory; per cell the LSTM step moves ~11 values forward and ~12 backward, the GRU ~10
// and ~13, the RNN 2-3. The step's GEMM dominates from H ~ 64 up.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/rnn.h"

namespace dlcore::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int64_t thread_start() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }
__device__ __forceinline__ float tanh_of(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_of(double x) { return tanh(x); }

// From e = exp(-|x|) <= 1: never overflows, full relative precision in both tails.
template <class T>
__device__ __forceinline__ T sigmoid_of(T x) {
  const T e = exp_of(-fabs(x));
  const T s = T(1) / (T(1) + e);
  return x >= T(0) ? s : e * s;
}

// ---- LSTM ------------------------------------------------------------------------------------

template <class T>
__global__ void lstm_step_forward_kernel(RnnStep s, T* __restrict__ gates, const T* __restrict__ c_prev,
                                         const T* __restrict__ c0, T* __restrict__ h, T* __restrict__ c,
                                         T* __restrict__ h_n, T* __restrict__ c_n) {
  // gates (rows, 4H) in place; c_prev (carried, H); c0, h_n, c_n (B, H); h, c (rows, H)
  const int64_t H = s.H, total = s.rows * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t r = e / H, j = e % H;
    T* pre = gates + r * 4 * H + j;  // gate k of cell j at pre[k * H]
    const T i = sigmoid_of(pre[0]);
    const T f = sigmoid_of(pre[H]);
    const T g = tanh_of(pre[2 * H]);
    const T o = sigmoid_of(pre[3 * H]);
    const T cp = r < s.carried ? c_prev[e] : c0[e];
    const T c_new = f * cp + i * g;
    const T h_new = o * tanh_of(c_new);
    pre[0] = i;
    pre[H] = f;
    pre[2 * H] = g;
    pre[3 * H] = o;
    c[e] = c_new;
    h[e] = h_new;
    if (r >= s.finishing) {
      h_n[e] = h_new;
      c_n[e] = c_new;
    }
  }
}

template <class T>
__global__ void lstm_step_backward_kernel(RnnStep s, const T* __restrict__ gates, const T* __restrict__ c,
                                          const T* __restrict__ c_prev, const T* __restrict__ c0,
                                          const T* __restrict__ grad_y, const T* __restrict__ carry_h,
                                          T* __restrict__ carry_c, T* __restrict__ grad_gates) {
  // gates, grad_gates (rows, 4H); c, grad_y (rows, H); c_prev (carried, H); c0, carry_* (B, H)
  const int64_t H = s.H, total = s.rows * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t r = e / H, j = e % H;
    const T* act = gates + r * 4 * H + j;
    T* grad = grad_gates + r * 4 * H + j;
    const T i = act[0], f = act[H], g = act[2 * H], o = act[3 * H];
    const T cp = r < s.carried ? c_prev[e] : c0[e];
    const T tc = tanh_of(c[e]);
    const T dh = grad_y ? carry_h[e] + grad_y[e] : carry_h[e];
    const T dc = carry_c[e] + dh * o * (T(1) - tc * tc);
    grad[0] = dc * g * i * (T(1) - i);
    grad[H] = dc * cp * f * (T(1) - f);
    grad[2 * H] = dc * i * (T(1) - g * g);
    grad[3 * H] = dh * tc * o * (T(1) - o);
    carry_c[e] = dc * f;
  }
}

// ---- GRU -------------------------------------------------------------------------------------

template <class T>
__global__ void gru_step_forward_kernel(RnnStep s, T* __restrict__ gates, const T* __restrict__ hidden,
                                        const T* __restrict__ h_prev, const T* __restrict__ h0,
                                        T* __restrict__ h, T* __restrict__ h_n) {
  // gates (rows, 3H) in place; hidden (rows, 3H); h_prev (carried, H); h0, h_n (B, H); h (rows, H)
  const int64_t H = s.H, total = s.rows * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t r = e / H, j = e % H;
    T* x_side = gates + r * 3 * H + j;          // (xr, xz, xn) of cell j at k * H
    const T* h_side = hidden + r * 3 * H + j;   // (hr, hz, hn)
    const T rg = sigmoid_of(x_side[0] + h_side[0]);
    const T z = sigmoid_of(x_side[H] + h_side[H]);
    const T n = tanh_of(x_side[2 * H] + rg * h_side[2 * H]);
    const T hp = r < s.carried ? h_prev[e] : h0[e];
    const T h_new = (T(1) - z) * n + z * hp;
    x_side[0] = rg;
    x_side[H] = z;
    x_side[2 * H] = n;
    h[e] = h_new;
    if (r >= s.finishing) h_n[e] = h_new;
  }
}

template <class T>
__global__ void gru_step_backward_kernel(RnnStep s, const T* __restrict__ gates, const T* __restrict__ hidden,
                                         const T* __restrict__ h_prev, const T* __restrict__ h0,
                                         const T* __restrict__ grad_y, T* __restrict__ carry_h,
                                         T* __restrict__ grad_x, T* __restrict__ grad_h) {
  // gates, hidden, grad_x, grad_h (rows, 3H); grad_y (rows, H); h_prev (carried, H); h0, carry_h (B, H)
  const int64_t H = s.H, total = s.rows * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t r = e / H, j = e % H;
    const int64_t k = r * 3 * H + j;  // gate 0 of cell j; gate g at k + g * H
    const T rg = gates[k], z = gates[k + H], n = gates[k + 2 * H];
    const T hp = r < s.carried ? h_prev[e] : h0[e];
    const T dh = grad_y ? carry_h[e] + grad_y[e] : carry_h[e];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (hp - n) * z * (T(1) - z);
    const T dr = dn * hidden[k + 2 * H] * rg * (T(1) - rg);
    grad_x[k] = dr;
    grad_x[k + H] = dz;
    grad_x[k + 2 * H] = dn;
    grad_h[k] = dr;
    grad_h[k + H] = dz;
    grad_h[k + 2 * H] = dn * rg;
    carry_h[e] = dh * z;
  }
}

// ---- Elman RNN -------------------------------------------------------------------------------

template <class T>
__global__ void rnn_step_forward_kernel(RnnStep s, bool relu, T* __restrict__ y, T* __restrict__ h_n) {
  // y (rows, H) in place; h_n (B, H)
  const int64_t H = s.H, total = s.rows * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const T pre = y[e];
    const T h = relu ? (pre > T(0) ? pre : T(0)) : tanh_of(pre);
    y[e] = h;
    if (e / H >= s.finishing) h_n[e] = h;
  }
}

template <class T>
__global__ void rnn_step_backward_kernel(RnnStep s, bool relu, const T* __restrict__ y,
                                         const T* __restrict__ grad_y, const T* __restrict__ carry_h,
                                         T* __restrict__ grad_pre) {
  // y, grad_y, grad_pre (rows, H); carry_h (B, H)
  const int64_t total = s.rows * s.H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const T h = y[e];
    const T dh = grad_y ? carry_h[e] + grad_y[e] : carry_h[e];
    grad_pre[e] = relu ? (h > T(0) ? dh : T(0)) : dh * (T(1) - h * h);
  }
}

// ---- host checks and dispatch ------------------------------------------------------------------

// Calls fn(T{}) for float32 / float64, else std::invalid_argument naming the op.
template <class Fn>
void dispatch_float(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    default:
      throw std::invalid_argument(std::string(op) + ": expected float32 or float64, got " + dtype_name(dtype));
  }
}

void check_step(const char* op, const RnnStep& s) {
  if (s.H < 1 || s.rows < 1 || s.carried < 0 || s.carried > s.rows || s.finishing < 0 || s.finishing > s.rows)
    throw std::invalid_argument(std::string(op) + ": bad step geometry: rows = " + std::to_string(s.rows) +
                                ", H = " + std::to_string(s.H) + ", carried = " + std::to_string(s.carried) +
                                ", finishing = " + std::to_string(s.finishing) +
                                " (need rows, H >= 1 and 0 <= carried, finishing <= rows)");
}

// `p` must be set when `needed` (e.g. c_prev only when some row is carried).
void require(const char* op, const char* name, const void* p, bool needed = true) {
  if (needed && p == nullptr) throw std::invalid_argument(std::string(op) + ": " + name + " is a null pointer");
}

// Requires the previous-state pointers the step reads: `prev` for carried rows, `init` for the rest.
void require_states(const char* op, const RnnStep& s, const char* prev_name, const void* prev,
                    const char* init_name, const void* init) {
  require(op, prev_name, prev, s.carried > 0);
  require(op, init_name, init, s.carried < s.rows);
}

unsigned blocks_for(const RnnStep& s) { return grid_for(s.rows * s.H, kThreads); }

}  // namespace

void lstm_step_forward(DType dtype, const RnnStep& s, void* gates, const void* c_prev, const void* c0,
                       void* h, void* c, void* h_n, void* c_n) {
  const char* op = "lstm_step_forward";
  check_step(op, s);
  require_states(op, s, "c_prev", c_prev, "c0", c0);
  require(op, "gates", gates);
  require(op, "h", h);
  require(op, "c", c);
  require(op, "h_n", h_n, s.finishing < s.rows);
  require(op, "c_n", c_n, s.finishing < s.rows);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    lstm_step_forward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(
        s, static_cast<T*>(gates), static_cast<const T*>(c_prev), static_cast<const T*>(c0), static_cast<T*>(h),
        static_cast<T*>(c), static_cast<T*>(h_n), static_cast<T*>(c_n));
    check_launch("lstm_step_forward_kernel");
  });
}

void lstm_step_backward(DType dtype, const RnnStep& s, const void* gates, const void* c, const void* c_prev,
                        const void* c0, const void* grad_y, const void* carry_h, void* carry_c, void* grad_gates) {
  const char* op = "lstm_step_backward";
  check_step(op, s);
  require_states(op, s, "c_prev", c_prev, "c0", c0);
  require(op, "gates", gates);
  require(op, "c", c);
  require(op, "carry_h", carry_h);
  require(op, "carry_c", carry_c);
  require(op, "grad_gates", grad_gates);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    lstm_step_backward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(
        s, static_cast<const T*>(gates), static_cast<const T*>(c), static_cast<const T*>(c_prev),
        static_cast<const T*>(c0), static_cast<const T*>(grad_y), static_cast<const T*>(carry_h),
        static_cast<T*>(carry_c), static_cast<T*>(grad_gates));
    check_launch("lstm_step_backward_kernel");
  });
}

void gru_step_forward(DType dtype, const RnnStep& s, void* gates, const void* hidden, const void* h_prev,
                      const void* h0, void* h, void* h_n) {
  const char* op = "gru_step_forward";
  check_step(op, s);
  require_states(op, s, "h_prev", h_prev, "h0", h0);
  require(op, "gates", gates);
  require(op, "hidden", hidden);
  require(op, "h", h);
  require(op, "h_n", h_n, s.finishing < s.rows);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    gru_step_forward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(
        s, static_cast<T*>(gates), static_cast<const T*>(hidden), static_cast<const T*>(h_prev),
        static_cast<const T*>(h0), static_cast<T*>(h), static_cast<T*>(h_n));
    check_launch("gru_step_forward_kernel");
  });
}

void gru_step_backward(DType dtype, const RnnStep& s, const void* gates, const void* hidden, const void* h_prev,
                       const void* h0, const void* grad_y, void* carry_h, void* grad_x, void* grad_h) {
  const char* op = "gru_step_backward";
  check_step(op, s);
  require_states(op, s, "h_prev", h_prev, "h0", h0);
  require(op, "gates", gates);
  require(op, "hidden", hidden);
  require(op, "carry_h", carry_h);
  require(op, "grad_x", grad_x);
  require(op, "grad_h", grad_h);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    gru_step_backward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(
        s, static_cast<const T*>(gates), static_cast<const T*>(hidden), static_cast<const T*>(h_prev),
        static_cast<const T*>(h0), static_cast<const T*>(grad_y), static_cast<T*>(carry_h),
        static_cast<T*>(grad_x), static_cast<T*>(grad_h));
    check_launch("gru_step_backward_kernel");
  });
}

void rnn_step_forward(DType dtype, const RnnStep& s, bool relu, void* y, void* h_n) {
  const char* op = "rnn_step_forward";
  check_step(op, s);
  require(op, "y", y);
  require(op, "h_n", h_n, s.finishing < s.rows);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    rnn_step_forward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(s, relu, static_cast<T*>(y),
                                                                                  static_cast<T*>(h_n));
    check_launch("rnn_step_forward_kernel");
  });
}

void rnn_step_backward(DType dtype, const RnnStep& s, bool relu, const void* y, const void* grad_y,
                       const void* carry_h, void* grad_pre) {
  const char* op = "rnn_step_backward";
  check_step(op, s);
  require(op, "y", y);
  require(op, "carry_h", carry_h);
  require(op, "grad_pre", grad_pre);
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    rnn_step_backward_kernel<T><<<blocks_for(s), kThreads, 0, current_stream()>>>(
        s, relu, static_cast<const T*>(y), static_cast<const T*>(grad_y), static_cast<const T*>(carry_h),
        static_cast<T*>(grad_pre));
    check_launch("rnn_step_backward_kernel");
  });
}

}  // namespace dlcore::cuda

// CUDA nn family: gather along a dim (take; embedding forward is take on dim 0), its
// deterministic adjoint (index_add; embedding backward is index_add on dim 0 with a padding
// row), inverted dropout from a Philox4x32-10 stream, and the LSTM cell's pointwise part.
//
// Math:
//   take:       out[p, j, q] = x[p, wrap(index[j]), q]                 x (P, N, Q) -> (P, n, Q)
//   index_add:  out[p, r, q] = sum_{j : index[j] == r} grad[p, j, q]   grad (P, n, Q) -> (P, R, Q)
//   dropout:    keep[i] = bits(seed, i) >= ceil(p 2^32);  y[i] = keep ? x[i] / (1 - p) : 0
//   lstm_cell:  i, f, o = sigmoid(pre), g = tanh(pre); c = f c_prev + i g; h = o tanh(c)
//               (backward formulas: csrc/cpu/ref/lstm_cell.cpp, the same per cell here)
//
// Layout: every array contiguous row-major; (P, N, Q) is x viewed around the gathered dim.
// Preconditions (checked on the host by python/dlcore/cuda/kernels/nn.py): indices in range,
// shapes agree, float dtypes where the op needs arithmetic. Every output is OVERWRITTEN.
//
// Determinism: no atomics anywhere. index_add gets a CSR table built on the host (a stable
// sort of the indices: order (n), row starts offsets (R + 1)), and one thread owns one output
// element, summing its terms in increasing j. The sum is the CPU kernel's (0 + terms in j
// order), so results are the same bits every run and every launch configuration.
//
// Threads: 256 per block (8 warps: full occupancy on sm_80/sm_90 at these register counts),
// grid-stride loops sized by grid_for; all element indices are int64.
// Tested: pytest tests/cuda/test_nn.py (float64 NumPy oracles, Philox known-answer vectors and
// a NumPy Philox mask, bitwise reruns). Bound: memory; take moves 2 P n Q elements, index_add
// P n Q + P R Q, dropout 2 sizeof(T) + 1 bytes / element, the LSTM cell 11 sizeof(T) / cell.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/nn.h"

namespace dlcore::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int64_t thread_start() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// ---- take / index_add -----------------------------------------------------------------------

// E is an unsigned integer of the element's size: a gather copies bytes, whatever the dtype.
template <class E>
__global__ void take_kernel(int64_t P, int64_t N, int64_t Q, const E* __restrict__ x, int64_t n,
                            const int64_t* __restrict__ index, E* __restrict__ out) {
  // x (P, N, Q); index (n); out (P, n, Q)
  const int64_t total = P * n * Q;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t q = e % Q;
    const int64_t pj = e / Q;
    const int64_t j = pj % n;
    const int64_t p = pj / n;
    int64_t r = index[j];
    if (r < 0) r += N;
    out[e] = (r >= 0 && r < N) ? x[(p * N + r) * Q + q] : E(0);
  }
}

template <class T>
__global__ void index_add_kernel(int64_t P, int64_t R, int64_t Q, const int64_t* __restrict__ offsets,
                                 const int64_t* __restrict__ order, int64_t n,
                                 const T* __restrict__ grad, int64_t skip_row, T* __restrict__ out) {
  // offsets (R + 1); order (n); grad (P, n, Q); out (P, R, Q)
  const int64_t total = P * R * Q;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t q = e % Q;
    const int64_t pr = e / Q;
    const int64_t r = pr % R;
    const int64_t p = pr / R;
    const T* grad_p = grad + p * n * Q + q;  // column q of grad[p]: stride Q over j
    T acc = T(0);
    if (r != skip_row)
      for (int64_t k = offsets[r]; k < offsets[r + 1]; ++k) acc += grad_p[order[k] * Q];
    out[e] = acc;
  }
}

// ---- dropout ---------------------------------------------------------------------------------

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): ten
// rounds of two 32x32->64 multiplies with the paper's constants, the key bumped by the Weyl
// constants between rounds. Known-answer vectors from Random123 are checked (on the NumPy twin
// of this function) in tests/cuda/test_nn.py.
__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt 3)
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kM0, ctr.x), lo0 = kM0 * ctr.x;
    const uint32_t hi1 = __umulhi(kM1, ctr.z), lo1 = kM1 * ctr.z;
    ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    key.x += kW0;
    key.y += kW1;
  }
  return ctr;
}

// Bit-to-element mapping (the whole contract; any grid gives the same mask):
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (g & 0xffffffff, g >> 32, 0, 0) for the group g = i / 4 of element i
//   bits(i) = word (i % 4) of philox4x32_10(counter, key), in the order (x, y, z, w)
// keep[i] = bits(i) >= threshold with threshold = ceil(p * 2^32) (u = bits 2^-32 >= p in
// integers): p = 0 keeps everything, p = 1 (threshold 2^32) drops everything.
// One thread per group of 4 elements: one Philox call feeds 4 elements.
template <class T>
__global__ void dropout_forward_kernel(int64_t n, uint64_t threshold, uint2 key, T scale,
                                       const T* __restrict__ x, T* __restrict__ y,
                                       bool* __restrict__ keep) {
  // x, y, keep (n)
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = thread_start(); g < groups; g += grid_stride()) {
    const uint64_t ug = static_cast<uint64_t>(g);
    const uint4 r = philox4x32_10(make_uint4(static_cast<uint32_t>(ug), static_cast<uint32_t>(ug >> 32), 0u, 0u), key);
    const uint32_t words[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 4 * g + k;
      if (i < n) {
        const bool kept = static_cast<uint64_t>(words[k]) >= threshold;
        keep[i] = kept;
        y[i] = kept ? x[i] * scale : T(0);
      }
    }
  }
}

template <class T>
__global__ void dropout_backward_kernel(int64_t n, T scale, const bool* __restrict__ keep,
                                        const T* __restrict__ grad_y, T* __restrict__ grad_x) {
  // keep, grad_y, grad_x (n)
  for (int64_t i = thread_start(); i < n; i += grid_stride())
    grad_x[i] = keep[i] ? grad_y[i] * scale : T(0);
}

// ---- lstm_cell -------------------------------------------------------------------------------

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

template <class T>
__global__ void lstm_cell_forward_kernel(int64_t B, int64_t H, const T* __restrict__ gates_pre,
                                         const T* __restrict__ c_prev, T* __restrict__ h,
                                         T* __restrict__ c, T* __restrict__ gates) {
  // gates_pre, gates (B, 4H); c_prev, h, c (B, H); one thread per cell (b, j)
  const int64_t total = B * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t b = e / H, j = e % H;
    const T* pre = gates_pre + b * 4 * H + j;  // gate k of cell j at pre[k * H]
    T* act = gates + b * 4 * H + j;
    const T i = sigmoid_of(pre[0]);
    const T f = sigmoid_of(pre[H]);
    const T g = tanh_of(pre[2 * H]);
    const T o = sigmoid_of(pre[3 * H]);
    const T c_new = f * c_prev[e] + i * g;
    act[0] = i;
    act[H] = f;
    act[2 * H] = g;
    act[3 * H] = o;
    c[e] = c_new;
    h[e] = o * tanh_of(c_new);
  }
}

template <class T>
__global__ void lstm_cell_backward_kernel(int64_t B, int64_t H, const T* __restrict__ gates,
                                          const T* __restrict__ c_prev, const T* __restrict__ c,
                                          const T* __restrict__ grad_h, const T* __restrict__ grad_c,
                                          T* __restrict__ grad_gates_pre, T* __restrict__ grad_c_prev) {
  // gates, grad_gates_pre (B, 4H); c_prev, c, grad_c_prev (B, H); grad_h, grad_c (B, H) | null
  const int64_t total = B * H;
  for (int64_t e = thread_start(); e < total; e += grid_stride()) {
    const int64_t b = e / H, j = e % H;
    const T* act = gates + b * 4 * H + j;
    T* grad_pre = grad_gates_pre + b * 4 * H + j;
    const T i = act[0], f = act[H], g = act[2 * H], o = act[3 * H];
    const T tc = tanh_of(c[e]);
    const T dh = grad_h ? grad_h[e] : T(0);
    const T dc_total = (grad_c ? grad_c[e] : T(0)) + dh * o * (T(1) - tc * tc);
    grad_pre[0] = dc_total * g * i * (T(1) - i);
    grad_pre[H] = dc_total * c_prev[e] * f * (T(1) - f);
    grad_pre[2 * H] = dc_total * i * (T(1) - g * g);
    grad_pre[3 * H] = dh * tc * o * (T(1) - o);
    grad_c_prev[e] = dc_total * f;
  }
}

// ---- dispatch ----------------------------------------------------------------------------------

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

}  // namespace

void take(DType dtype, int64_t P, int64_t N, int64_t Q, const void* x, int64_t n,
          const int64_t* index, void* out) {
  const int64_t total = P * n * Q;
  if (total == 0) return;
  const unsigned blocks = grid_for(total, kThreads);
  auto launch = [&](auto tag) {
    using E = decltype(tag);
    take_kernel<E><<<blocks, kThreads, 0, current_stream()>>>(P, N, Q, static_cast<const E*>(x), n,
                                                              index, static_cast<E*>(out));
  };
  switch (dtype_size(dtype)) {
    case 1: launch(uint8_t{}); break;
    case 4: launch(uint32_t{}); break;
    case 8: launch(uint64_t{}); break;
    default: throw std::invalid_argument(std::string("take: unsupported dtype ") + dtype_name(dtype));
  }
  check_launch("take_kernel");
}

void index_add(DType dtype, int64_t P, int64_t R, int64_t Q, const int64_t* offsets,
               const int64_t* order, int64_t n, const void* grad, int64_t skip_row, void* out) {
  const int64_t total = P * R * Q;
  if (total == 0) return;
  const unsigned blocks = grid_for(total, kThreads);
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    index_add_kernel<T><<<blocks, kThreads, 0, current_stream()>>>(
        P, R, Q, offsets, order, n, static_cast<const T*>(grad), skip_row, static_cast<T*>(out));
  };
  switch (dtype) {
    case DType::f32: launch(float{}); break;
    case DType::f64: launch(double{}); break;
    case DType::i64: launch(int64_t{}); break;  // integer sums are exact in any order
    default: throw std::invalid_argument(std::string("index_add: unsupported dtype ") + dtype_name(dtype));
  }
  check_launch("index_add_kernel");
}

void dropout_forward(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y,
                     bool* keep) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("dropout_forward: p must be in [0, 1], got " + std::to_string(p));
  dispatch_float(dtype, "dropout_forward", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    // p * 2^32 is exact in double (a power-of-two scale); 2^32 exceeds every 32-bit draw.
    const uint64_t threshold = static_cast<uint64_t>(std::ceil(p * 4294967296.0));
    const uint2 key = make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    // p == 1 drops everything; a zero scale keeps inf * 0 out of the (discarded) products.
    const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
    dropout_forward_kernel<T><<<grid_for((n + 3) / 4, kThreads), kThreads, 0, current_stream()>>>(
        n, threshold, key, scale, static_cast<const T*>(x), static_cast<T*>(y), keep);
    check_launch("dropout_forward_kernel");
  });
}

void dropout_backward(DType dtype, int64_t n, double scale, const bool* keep, const void* grad_y,
                      void* grad_x) {
  dispatch_float(dtype, "dropout_backward", [&](auto tag) {
    using T = decltype(tag);
    if (n == 0) return;
    dropout_backward_kernel<T><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        n, static_cast<T>(scale), keep, static_cast<const T*>(grad_y), static_cast<T*>(grad_x));
    check_launch("dropout_backward_kernel");
  });
}

void lstm_cell_forward(DType dtype, int64_t B, int64_t H, const void* gates_pre, const void* c_prev,
                       void* h, void* c, void* gates) {
  dispatch_float(dtype, "lstm_cell_forward", [&](auto tag) {
    using T = decltype(tag);
    if (B * H == 0) return;
    lstm_cell_forward_kernel<T><<<grid_for(B * H, kThreads), kThreads, 0, current_stream()>>>(
        B, H, static_cast<const T*>(gates_pre), static_cast<const T*>(c_prev), static_cast<T*>(h),
        static_cast<T*>(c), static_cast<T*>(gates));
    check_launch("lstm_cell_forward_kernel");
  });
}

void lstm_cell_backward(DType dtype, int64_t B, int64_t H, const void* gates, const void* c_prev,
                        const void* c, const void* grad_h, const void* grad_c, void* grad_gates_pre,
                        void* grad_c_prev) {
  dispatch_float(dtype, "lstm_cell_backward", [&](auto tag) {
    using T = decltype(tag);
    if (B * H == 0) return;
    lstm_cell_backward_kernel<T><<<grid_for(B * H, kThreads), kThreads, 0, current_stream()>>>(
        B, H, static_cast<const T*>(gates), static_cast<const T*>(c_prev), static_cast<const T*>(c),
        static_cast<const T*>(grad_h), static_cast<const T*>(grad_c), static_cast<T*>(grad_gates_pre),
        static_cast<T*>(grad_c_prev));
    check_launch("lstm_cell_backward_kernel");
  });
}

}  // namespace dlcore::cuda

// Elementwise kernels: unary ops and their gradients, binary arithmetic, comparisons and
// where, over contiguous buffers (unary) or a broadcast iteration space (binary family).
//
// Math (PyTorch semantics):
//   unary    neg, exp, log, sqrt, abs, relu, tanh, sigmoid, clamp(alpha = min, beta = max;
//            +-inf = no bound; NaN stays NaN), pow_scalar (x^alpha).
//   backward grad_x = grad_y * f'(x), with f' taken from y = f(x) for exp (y), tanh
//            (1 - y^2), sigmoid (y (1 - y)), sqrt (1 / 2y) and from x for the rest;
//            relu'(0) = abs'(0) = 0; clamp' = 1 on [min, max] else 0; pow' = alpha x^(alpha-1),
//            0 when alpha == 0. neg reads neither x nor y.
//   binary   add, sub, mul, div, pow (std::pow), maximum / minimum (a NaN operand wins).
//   compare  eq, ne, lt, le, gt, ge (IEEE: every comparison with NaN is false except ne).
//   where    out = cond ? a : b.
//
// Layout: unary buffers are contiguous (n). Binary/compare/where read operands through
// BroadcastIter element strides (>= 0; 0 = broadcast) and write a contiguous output in
// it.shape. The bindings drop size-1 dims and merge adjacent dims first, so the common
// cases arrive as ndim <= 2 and each row's inner loop hits one of the specialised bodies:
// both operands contiguous, one a scalar (inner stride 0), or the strided fallback.
//
// Preconditions (checked in csrc/bindings/ops_elementwise.cpp): valid pointers for every
// element the iteration space addresses; out never aliases an input. Outputs are
// OVERWRITTEN.
//
// Threads: OpenMP only above kParallelMin elements; tiny ops (RNN steps) take the serial
// path with no OpenMP region at all. Work is split into contiguous row ranges per thread,
// long rows into column blocks, so results never depend on the thread count.
//
// Bound: memory traffic, (2 or 3 reads + 1 write) * sizeof(T) per element. float32 exp, log,
// tanh and sigmoid use the branch-free polynomials of cpu/vec_math.h, so their loops vectorise
// (<= 1 / 1 / 1.5 / 2.5 ulp): 4M floats on avx512, 1 thread, exp 1.5 ms, log 2.1, tanh 2.8,
// sigmoid 2.1 (NumPy 2.0 / 1.6 / 1.5 / 4.4; scalar libm was 9.3 / 10.4 / 64 / 30). float64 and
// pow keep std:: (scalar libm calls, compute bound).
//
// Tested by tests/kernels/test_elementwise_kernels.py (every op, every ISA, f32/f64,
// broadcast views, 0-D and empty):
//   DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/kernels/test_elementwise_kernels.py
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/vec_math.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Below this many elements an op runs on the calling thread: an OpenMP fork/join costs
// a few microseconds, more than ~32K simple element operations.
constexpr int64_t kParallelMin = 32768;
// Rows longer than this are cut into blocks so a 1-D op still spreads over threads.
constexpr int64_t kColBlock = 16384;

// y[i] := f(x[i]) for contiguous x, y (n).
template <class T, class F>
void map_unary(int64_t n, const T* __restrict x, T* __restrict y, F f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// grad_x[i] := f(v[i], grad_y[i]) where v is x or y (n), whichever the derivative needs.
template <class T, class F>
void map_grad(int64_t n, const T* __restrict v, const T* __restrict grad_y, T* __restrict grad_x,
              F f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) grad_x[i] = f(v[i], grad_y[i]);
}

// Walks the broadcast iteration space of `it` (NOps operands) row by row, calling
//   row(off, out_off, len)
// where off[k] is operand k's element offset of the row's first element, out_off the
// output offset, and len the row length; operand k advances by it.strides[k][ndim-1].
// Threads get contiguous ranges of (row, column block) tasks, unravelled once per range.
template <int NOps, class Row>
void for_each_row(const BroadcastIter& it, Row row) {
  const int64_t n = it.numel();
  if (n == 0) return;
  if (it.ndim == 0) {
    const int64_t off[NOps] = {};
    row(off, int64_t(0), int64_t(1));
    return;
  }
  const int nd = it.ndim;
  const int64_t len = it.shape[nd - 1];          // inner (row) length
  const int64_t rows = n / len;                  // product of the outer dims
  const int64_t blocks = (len + kColBlock - 1) / kColBlock;  // column blocks per row
  const int64_t tasks = rows * blocks;

  auto run = [&](int64_t t0, int64_t t1) {
    if (t0 >= t1) return;
    // Unravel task t0 into (row index counters, column block).
    int64_t row_index = t0 / blocks;
    int64_t block = t0 % blocks;
    int64_t counter[BroadcastIter::kMaxDims] = {};  // position in the outer dims [0, nd-1)
    int64_t off[NOps] = {};
    for (int d = nd - 2; d >= 0; --d) {
      counter[d] = row_index % it.shape[d];
      row_index /= it.shape[d];
      for (int k = 0; k < NOps; ++k) off[k] += counter[d] * it.strides[k][d];
    }
    int64_t out_row = (t0 / blocks) * len;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c0 = block * kColBlock;
      const int64_t c1 = std::min(len, c0 + kColBlock);
      int64_t block_off[NOps];
      for (int k = 0; k < NOps; ++k) block_off[k] = off[k] + c0 * it.strides[k][nd - 1];
      row(block_off, out_row + c0, c1 - c0);
      if (++block < blocks) continue;
      // Next row: odometer increment over the outer dims, innermost first.
      block = 0;
      out_row += len;
      for (int d = nd - 2; d >= 0; --d) {
        for (int k = 0; k < NOps; ++k) off[k] += it.strides[k][d];
        if (++counter[d] < it.shape[d]) break;
        for (int k = 0; k < NOps; ++k) off[k] -= counter[d] * it.strides[k][d];
        counter[d] = 0;
      }
    }
  };

  if (n <= kParallelMin) {
    run(0, tasks);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads();
    const int64_t id = omp_get_thread_num();
    run(tasks * id / nt, tasks * (id + 1) / nt);
  }
}

// out[i] := f(a[i * sa], b[i * sb]) for one row of `len` elements, with specialised bodies
// for the contiguous and scalar-operand cases so they vectorise.
template <class T, class R, class F>
inline void binary_row(int64_t len, const T* __restrict a, int64_t sa, const T* __restrict b,
                       int64_t sb, R* __restrict out, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < len; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = b[0];
    for (int64_t i = 0; i < len; ++i) out[i] = f(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = a[0];
    for (int64_t i = 0; i < len; ++i) out[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < len; ++i) out[i] = f(a[i * sa], b[i * sb]);
  }
}

// out (it.shape, contiguous) := f(a, b) over the broadcast space; R is T or bool.
template <class T, class R, class F>
void binary_apply(const BroadcastIter& it, const T* a, const T* b, R* out, F f) {
  const int64_t sa = it.ndim ? it.strides[0][it.ndim - 1] : 0;  // inner stride of a
  const int64_t sb = it.ndim ? it.strides[1][it.ndim - 1] : 0;  // inner stride of b
  for_each_row<2>(it, [&](const int64_t* off, int64_t out_off, int64_t len) {
    binary_row(len, a + off[0], sa, b + off[1], sb, out + out_off, f);
  });
}

}  // namespace

template <class T>
void unary_forward(UnaryOp op, int64_t n, const T* x, T* y, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return map_unary(n, x, y, [](T v) { return -v; });
    case UnaryOp::exp: return map_unary(n, x, y, [](T v) { return vec::exp(v); });
    case UnaryOp::log: return map_unary(n, x, y, [](T v) { return vec::log(v); });
    case UnaryOp::sqrt: return map_unary(n, x, y, [](T v) { return std::sqrt(v); });
    case UnaryOp::abs: return map_unary(n, x, y, [](T v) { return std::abs(v); });
    // `v <= 0 ? 0 : v` keeps NaN as NaN, like torch.relu.
    case UnaryOp::relu: return map_unary(n, x, y, [](T v) { return v <= T(0) ? T(0) : v; });
    case UnaryOp::tanh: return map_unary(n, x, y, [](T v) { return vec::tanh(v); });
    case UnaryOp::sigmoid: return map_unary(n, x, y, [](T v) { return vec::sigmoid(v); });
    case UnaryOp::clamp:
      return map_unary(n, x, y, [=](T v) { return v < alpha ? alpha : (v > beta ? beta : v); });
    case UnaryOp::pow_scalar: return map_unary(n, x, y, [=](T v) { return std::pow(v, alpha); });
  }
}
DLCORE_INSTANTIATE(unary_forward, UnaryForwardSig)

template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* grad_y, T* grad_x,
                    T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg:
      return map_grad(n, grad_y, grad_y, grad_x, [](T, T g) { return -g; });
    case UnaryOp::exp:
      return map_grad(n, y, grad_y, grad_x, [](T yv, T g) { return g * yv; });
    case UnaryOp::log:
      return map_grad(n, x, grad_y, grad_x, [](T xv, T g) { return g / xv; });
    case UnaryOp::sqrt:
      return map_grad(n, y, grad_y, grad_x, [](T yv, T g) { return g / (T(2) * yv); });
    case UnaryOp::abs:
      return map_grad(n, x, grad_y, grad_x,
                      [](T xv, T g) { return xv > T(0) ? g : (xv < T(0) ? -g : T(0)); });
    case UnaryOp::relu:
      return map_grad(n, x, grad_y, grad_x, [](T xv, T g) { return xv > T(0) ? g : T(0); });
    case UnaryOp::tanh:
      return map_grad(n, y, grad_y, grad_x, [](T yv, T g) { return g * (T(1) - yv * yv); });
    case UnaryOp::sigmoid:
      return map_grad(n, y, grad_y, grad_x, [](T yv, T g) { return g * yv * (T(1) - yv); });
    case UnaryOp::clamp:
      return map_grad(n, x, grad_y, grad_x,
                      [=](T xv, T g) { return (xv >= alpha && xv <= beta) ? g : T(0); });
    case UnaryOp::pow_scalar:
      if (alpha == T(0)) return map_grad(n, x, grad_y, grad_x, [](T, T) { return T(0); });
      return map_grad(n, x, grad_y, grad_x,
                      [=](T xv, T g) { return g * alpha * std::pow(xv, alpha - T(1)); });
  }
}
DLCORE_INSTANTIATE(unary_backward, UnaryBackwardSig)

template <class T>
void binary_forward(BinaryOp op, const BroadcastIter& it, const T* a, const T* b, T* out) {
  switch (op) {
    case BinaryOp::add: return binary_apply(it, a, b, out, [](T u, T v) { return u + v; });
    case BinaryOp::sub: return binary_apply(it, a, b, out, [](T u, T v) { return u - v; });
    case BinaryOp::mul: return binary_apply(it, a, b, out, [](T u, T v) { return u * v; });
    case BinaryOp::div: return binary_apply(it, a, b, out, [](T u, T v) { return u / v; });
    case BinaryOp::pow: return binary_apply(it, a, b, out, [](T u, T v) { return std::pow(u, v); });
    // `u != u` is the NaN test: a NaN in either operand is the result (torch.maximum).
    case BinaryOp::maximum:
      return binary_apply(it, a, b, out, [](T u, T v) { return (u != u || u > v) ? u : v; });
    case BinaryOp::minimum:
      return binary_apply(it, a, b, out, [](T u, T v) { return (u != u || u < v) ? u : v; });
  }
}
DLCORE_INSTANTIATE(binary_forward, BinaryForwardSig)

template <class T>
void compare_forward(CompareOp op, const BroadcastIter& it, const T* a, const T* b, bool* out) {
  switch (op) {
    case CompareOp::eq: return binary_apply(it, a, b, out, [](T u, T v) { return u == v; });
    case CompareOp::ne: return binary_apply(it, a, b, out, [](T u, T v) { return u != v; });
    case CompareOp::lt: return binary_apply(it, a, b, out, [](T u, T v) { return u < v; });
    case CompareOp::le: return binary_apply(it, a, b, out, [](T u, T v) { return u <= v; });
    case CompareOp::gt: return binary_apply(it, a, b, out, [](T u, T v) { return u > v; });
    case CompareOp::ge: return binary_apply(it, a, b, out, [](T u, T v) { return u >= v; });
  }
}
DLCORE_INSTANTIATE(compare_forward, CompareForwardSig)

template <class T>
void where_forward(const BroadcastIter& it, const bool* cond, const T* a, const T* b, T* out) {
  const int nd = it.ndim;
  const int64_t sc = nd ? it.strides[0][nd - 1] : 0;  // inner strides of cond, a, b
  const int64_t sa = nd ? it.strides[1][nd - 1] : 0;
  const int64_t sb = nd ? it.strides[2][nd - 1] : 0;
  for_each_row<3>(it, [&](const int64_t* off, int64_t out_off, int64_t len) {
    const bool* __restrict c = cond + off[0];  // (len) with stride sc
    const T* __restrict av = a + off[1];       // (len) with stride sa
    const T* __restrict bv = b + off[2];       // (len) with stride sb
    T* __restrict o = out + out_off;           // (len) contiguous
    if (sc == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < len; ++i) o[i] = c[i] ? av[i] : bv[i];
    } else {
      for (int64_t i = 0; i < len; ++i) o[i] = c[i * sc] ? av[i * sa] : bv[i * sb];
    }
  });
}
DLCORE_INSTANTIATE(where_forward, WhereForwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA

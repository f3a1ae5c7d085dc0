// Reductions over the middle axis of a (outer, R, inner) view: sum and max (with the
// index of the first max), and the max gradient scatter.
//
// Math: sum  out[o, i] = sum_r x[o, r, i]
//       max  out[o, i] = max_r x[o, r, i], index[o, i] = first r attaining it; a NaN is
//            the max (the first NaN), as in torch.max.
//       max backward  grad_x[o, r, i] = (r == index[o, i]) ? grad_out[o, i] : 0.
//
// Layout: x, grad_x (outer, R, inner) contiguous; out, index, grad_out (outer, inner)
// contiguous. The bindings reduce a run of adjacent dims [start, end) by viewing x as
// outer = prod(shape[:start]), R = prod(shape[start:end]), inner = prod(shape[end:]).
//
// Accuracy: sums accumulate in double for both float and double (for float this keeps the
// error far inside the K-scaled bound 2 K eps sum|x|; for double the vector lanes of
// `omp simd` make it a blocked sum, error <= K eps sum|x|).
//
// Preconditions (checked in csrc/bindings/ops_reduce.cpp): R >= 1 for max; index values
// in [0, R) for the backward. Outputs are OVERWRITTEN (grad_x everywhere, zeros included).
//
// Loops: inner == 1 reduces contiguous rows (`omp simd` reduction); inner > 1 walks r in
// the outer loop and a block of contiguous columns in the inner loop, with the block's
// accumulators on the stack. Threads over (outer, column block) tasks, only above
// kParallelMin elements. A sum's blocks are as wide as the threads allow (whole rows on one
// thread, up to kSumBlock columns): x is then read front to back, one stream. In blocks of 512
// columns a 1024-wide x was read as two interleaved half-row passes, and at 8 GB/s from memory
// (a bias gradient of (1600, 1024) right after the LSTM backward that wrote it: 0.75 ms,
// NumPy 0.21). Bound: one read of x, i.e. memory bandwidth.
//
// Tested by tests/kernels/test_reduce_kernels.py (every ISA, f32/f64, dim ranges first /
// middle / last / all, ties, empty):
//   DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/kernels/test_reduce_kernels.py
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {
namespace {

// Below this many elements a reduction runs on the calling thread (fork/join ~ µs).
constexpr int64_t kParallelMin = 32768;
// Columns per task of a max when inner > 1: 512 values and indices stay in L1.
constexpr int64_t kInnerBlock = 512;
// Widest column block of a sum: 4096 double accumulators (32 KiB) on the stack, in L1.
constexpr int64_t kSumBlock = 4096;

// Column blocks per (outer) row of a sum: the fewest that fit kSumBlock, but at least one per
// thread when there are fewer outer rows than threads.
inline int64_t sum_blocks(int64_t outer, int64_t inner, bool parallel) {
  int64_t blocks = (inner + kSumBlock - 1) / kSumBlock;
  if (parallel && outer < omp_get_max_threads())
    blocks = std::max(blocks, std::min<int64_t>(inner / 16, (omp_get_max_threads() + outer - 1) / outer));
  return std::max<int64_t>(1, blocks);
}

// sum_r row[r] for a contiguous row of R elements, accumulated in double.
template <class T>
double sum_row(int64_t R, const T* __restrict row) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t r = 0; r < R; ++r) s += static_cast<double>(row[r]);
  return s;
}

// a takes the place of the running max b: larger, or the first NaN.
template <class T>
inline bool beats(T a, T b) {
  return a > b || (a != a && b == b);
}

// Index of the first max of a contiguous row (R >= 1), or of its first NaN. Two passes that
// vectorise: the max and a NaN flag as `omp simd` reductions, then a search for the first
// element equal to the max. A one-pass running (max, index) loop carries a dependency
// through every element and runs ~10x slower.
template <class T>
int64_t argmax_row(int64_t R, const T* __restrict row) {
  T m = row[0];
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t r = 0; r < R; ++r) {
    m = row[r] > m ? row[r] : m;
    nan |= row[r] != row[r];
  }
  int64_t r = 0;
  if (nan) {
    while (row[r] == row[r]) ++r;
  } else {
    while (row[r] != m) ++r;
  }
  return r;
}

}  // namespace

template <class T>
void reduce_forward(ReduceOp op, int64_t outer, int64_t R, int64_t inner, const T* x, T* out,
                    int64_t* index) {
  const int64_t total = outer * R * inner;
  const bool parallel = total > kParallelMin;

  if (inner == 1) {
    // Contiguous rows x (outer, R) -> out (outer).
    if (op == ReduceOp::sum) {
      if (outer == 1) {
        // One long row: split it over the threads.
        double s = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (parallel)
        for (int64_t r = 0; r < R; ++r) s += static_cast<double>(x[r]);
        out[0] = static_cast<T>(s);
        return;
      }
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t o = 0; o < outer; ++o) out[o] = static_cast<T>(sum_row(R, x + o * R));
      return;
    }
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t arg = argmax_row(R, x + o * R);
      out[o] = x[o * R + arg];
      if (index) index[o] = arg;
    }
    return;
  }

  // inner > 1: tasks are (o, column block) of `width` columns, the same accumulators per column
  // (each sums its r in order, so the block width never changes a result).
  const int64_t sum_blk = op == ReduceOp::sum ? sum_blocks(outer, inner, parallel) : 0;
  const int64_t width = op == ReduceOp::sum ? ((inner + sum_blk - 1) / sum_blk + 15) / 16 * 16 : kInnerBlock;
  const int64_t blocks = (inner + width - 1) / width;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks;
    const int64_t c0 = (task % blocks) * width;
    const int64_t nc = std::min(width, inner - c0);
    const T* xo = x + o * R * inner + c0;  // (R, nc) with row stride inner
    T* out_o = out + o * inner + c0;       // (nc)
    if (op == ReduceOp::sum) {
      double acc[kSumBlock];  // (nc)
      for (int64_t c = 0; c < nc; ++c) acc[c] = 0.0;
      for (int64_t r = 0; r < R; ++r) {
        const T* __restrict xr = xo + r * inner;  // (nc)
        for (int64_t c = 0; c < nc; ++c) acc[c] += static_cast<double>(xr[c]);
      }
      for (int64_t c = 0; c < nc; ++c) out_o[c] = static_cast<T>(acc[c]);
    } else {
      T best[kInnerBlock];       // (nc)
      int64_t arg[kInnerBlock];  // (nc)
      for (int64_t c = 0; c < nc; ++c) {
        best[c] = xo[c];
        arg[c] = 0;
      }
      for (int64_t r = 1; r < R; ++r) {
        const T* __restrict xr = xo + r * inner;  // (nc)
        for (int64_t c = 0; c < nc; ++c) {
          const bool take = beats(xr[c], best[c]);
          best[c] = take ? xr[c] : best[c];
          arg[c] = take ? r : arg[c];
        }
      }
      std::memcpy(out_o, best, sizeof(T) * nc);
      if (index) std::memcpy(index + o * inner + c0, arg, sizeof(int64_t) * nc);
    }
  }
}
DLCORE_INSTANTIATE(reduce_forward, ReduceForwardSig)

template <class T>
void reduce_max_backward(int64_t outer, int64_t R, int64_t inner, const int64_t* index,
                         const T* grad_out, T* grad_x) {
  const int64_t total = outer * R * inner;
#pragma omp parallel for simd schedule(static) if (total > kParallelMin)
  for (int64_t i = 0; i < total; ++i) grad_x[i] = T(0);
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < inner; ++c) {
      // grad_x (outer, R, inner); index, grad_out (outer, inner)
      grad_x[(o * R + index[o * inner + c]) * inner + c] = grad_out[o * inner + c];
    }
  }
}
DLCORE_INSTANTIATE(reduce_max_backward, ReduceMaxBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA

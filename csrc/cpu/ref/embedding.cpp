// Embedding lookup and its gradient, reference kernels.
//
// Math: out[i, :] = weight[index[i], :];
//       grad_weight[r, :] = sum over i with index[i] == r of grad_out[i, :]  (0 if none),
//       and grad_weight[padding_idx, :] = 0 when padding_idx >= 0.
//
// Layout: weight, grad_weight (num, D) row-major; index (n) flat (any index shape, flattened
// by the binding); out, grad_out (n, D) row-major. All contiguous.
// Preconditions (checked in csrc/bindings/ops_nn.cpp): every index in [0, num);
// padding_idx < num.
// Nothing is saved for backward beyond index. Every output is OVERWRITTEN.
//
// Determinism: backward never uses atomics. After a zero fill, each thread owns a fixed block
// of columns [d0, d1) and walks i = 0 .. n-1 in order, so every grad_weight element is the sum
// of its terms in increasing i -- the same bits for any thread count, and no two threads ever
// write one element. Column blocks also balance skewed index distributions (a frequent word
// costs every thread the same), which splitting by weight row would not.
//
// Threads: OpenMP only above kParallelMin elements moved.
// Tested: pytest tests/kernels/test_nn_kernels.py -k embedding (repeated indices, padding_idx,
// 1 vs 2 threads bitwise). Bound: memory; forward moves 2 n D sizeof(T) bytes, backward
// num D sizeof(T) (fill) + 3 n D sizeof(T) (accumulate).
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "cpu/kernels.h"

namespace dlcore::cpu::DLCORE_ISA {

namespace {

// Elements copied or added below which the loop stays on the calling thread: 32K elements
// are ~100 KB to 250 KB of traffic, ~10 us, a few times the cost of waking the team.
constexpr int64_t kParallelMin = 1 << 15;

// Column blocks are multiples of 16 elements: 64 bytes for float, so float blocks start on
// cache-line boundaries of a row and neighbouring threads do not share lines.
constexpr int64_t kColumnAlign = 16;

}  // namespace

template <class T>
void embedding_forward(int64_t num, int64_t D, const T* weight, int64_t n, const int64_t* index,
                       T* out) {
  // weight (num, D); index (n); out (n, D)
  (void)num;
#pragma omp parallel for schedule(static) if (n * D >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T* __restrict src = weight + index[i] * D;  // (D)
    T* __restrict dst = out + i * D;                  // (D)
    for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
  }
}
DLCORE_INSTANTIATE(embedding_forward, EmbeddingForwardSig)

template <class T>
void embedding_backward(int64_t num, int64_t D, int64_t n, const int64_t* index,
                        int64_t padding_idx, const T* grad_out, T* grad_weight) {
  // index (n); grad_out (n, D); grad_weight (num, D)
#pragma omp parallel if ((num + n) * D >= kParallelMin)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < num; ++r) {
      T* __restrict row = grad_weight + r * D;  // (D)
      for (int64_t d = 0; d < D; ++d) row[d] = T(0);
    }
    // The implicit barrier after the fill orders it before every accumulation below.
    const int64_t threads = omp_get_num_threads();
    const int64_t thread = omp_get_thread_num();
    const int64_t block = (D + threads - 1) / threads;
    const int64_t block_aligned = (block + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
    const int64_t d0 = std::min(D, thread * block_aligned);
    const int64_t d1 = std::min(D, d0 + block_aligned);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = index[i];
      if (r == padding_idx) continue;
      const T* __restrict src = grad_out + i * D;  // (D)
      T* __restrict dst = grad_weight + r * D;     // (D)
      for (int64_t d = d0; d < d1; ++d) dst[d] += src[d];
    }
  }
}
DLCORE_INSTANTIATE(embedding_backward, EmbeddingBackwardSig)

}  // namespace dlcore::cpu::DLCORE_ISA

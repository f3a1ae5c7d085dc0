// Host entry points of the CUDA nn family (csrc/cuda/nn.cu): gathers along one dim (take,
// embedding forward), their deterministic adjoint (index_add, embedding backward), dropout
// from a Philox4x32-10 stream, and the LSTM cell's pointwise part. Plain C++ (no CUDA types)
// so g++-compiled bindings include it. Pointers are device addresses on the current device;
// every array is contiguous row-major. Every kernel OVERWRITES its outputs and runs on
// current_stream(). Errors throw std::invalid_argument / std::runtime_error naming the op.
#pragma once
#include <cstdint>

#include "cuda/dtype.h"

namespace dlcore::cuda {

// out[p, j, q] = x[p, wrap(index[j]), q] with wrap(i) = i < 0 ? i + N : i.
// x (P, N, Q), index (n), out (P, n, Q); any dtype (a gather moves bytes).
// Precondition (checked by the caller on the host): -N <= index[j] < N. The kernel also
// guards it: an out-of-range index writes zero bytes instead of reading out of bounds.
void take(DType dtype, int64_t P, int64_t N, int64_t Q, const void* x, int64_t n,
          const int64_t* index, void* out);

// out[p, r, q] = sum over k in [offsets[r], offsets[r+1]) of grad[p, order[k], q], summed in
// increasing k (so in increasing j when order is a stable sort of the indices), and 0 for
// rows without indices or r == skip_row (skip_row < 0: none). The CSR tables come from the
// host: order (n) sorts the (wrapped) indices stably, offsets (R + 1) are the row starts.
// grad (P, n, Q), out (P, R, Q); float32 / float64 / int64. No atomics: one thread per output element.
void index_add(DType dtype, int64_t P, int64_t R, int64_t Q, const int64_t* offsets,
               const int64_t* order, int64_t n, const void* grad, int64_t skip_row, void* out);

// Inverted dropout: keep[i] = philox_u32(seed, i) >= ceil(p * 2^32), y[i] = keep ? x * scale : 0
// with scale = 1 / (1 - p) (0 when p == 1). x, y (n) float32 / float64; keep (n) bool bytes.
void dropout_forward(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y,
                     bool* keep);
// grad_x[i] = keep[i] ? grad_y[i] * scale : 0.
void dropout_backward(DType dtype, int64_t n, double scale, const bool* keep, const void* grad_y,
                      void* grad_x);

// LSTM cell pointwise part, gate order (i, f, g, o): gates_pre, gates (B, 4H); c_prev, h, c (B, H).
void lstm_cell_forward(DType dtype, int64_t B, int64_t H, const void* gates_pre, const void* c_prev,
                       void* h, void* c, void* gates);
// grad_h / grad_c (B, H) may be null (zeros); grad_gates_pre (B, 4H), grad_c_prev (B, H).
void lstm_cell_backward(DType dtype, int64_t B, int64_t H, const void* gates, const void* c_prev,
                        const void* c, const void* grad_h, const void* grad_c, void* grad_gates_pre,
                        void* grad_c_prev);

}  // namespace dlcore::cuda

// Host entry points of the CUDA reduce family (csrc/cuda/reduce.cu): sum / max over the middle
// axis of an (outer, R, inner) view, the max gradient, softmax / log_softmax and their
// gradients, cross_entropy (fused log-softmax + NLL) and nll_loss. Plain C++ (no CUDA types),
// so the g++-compiled bindings include it.
//
// Pointers are device addresses of C-contiguous arrays; every output is OVERWRITTEN. Kernels
// run on current_stream() of the current device. Bad sizes or dtypes throw
// std::invalid_argument naming the op; CUDA errors throw std::runtime_error naming the kernel.
// Range checks of targets / indices are the caller's (python/dlcore/cuda/kernels/reduce.py);
// the kernels never read out of bounds whatever the values (see reduce.cu).
#pragma once
#include <cstdint>

#include "core/kernel_args.h"  // ReduceOp
#include "cuda/dtype.h"

namespace dlcore::cuda {

// x (outer, R, inner) of `dtype` (f32, f64, i64, b8).
// sum: out (outer, inner): `dtype` for floats (accumulated in double), int64 for i64 / b8
//      (exact); index is unused (may be null). R == 0 gives zeros.
// max: out (outer, inner) of `dtype`, index (outer, inner) int64: the first r of the max (a NaN
//      counts as the max, the first NaN wins). Requires R >= 1.
void reduce_forward(ReduceOp op, DType dtype, int64_t outer, int64_t R, int64_t inner, const void* x,
                    void* out, int64_t* index);

// grad_x (outer, R, inner) = grad_out[o, i] where r == index[o, i], else 0. index, grad_out
// (outer, inner); dtype f32 / f64 (grad_out and grad_x).
void reduce_max_backward(DType dtype, int64_t outer, int64_t R, int64_t inner, const int64_t* index,
                         const void* grad_out, void* grad_x);

// y (outer, R, inner) = softmax (log = false) or log_softmax (log = true) of x over r. R >= 1.
void softmax_forward(DType dtype, bool log, int64_t outer, int64_t R, int64_t inner, const void* x,
                     void* y);

// grad_x (outer, R, inner) of softmax / log_softmax from the forward output y and grad_y.
void softmax_backward(DType dtype, bool log, int64_t outer, int64_t R, int64_t inner, const void* y,
                      const void* grad_y, void* grad_x);

// logits (N, C), target (N) int64; loss, lse (N). loss[n] = lse[n] - logits[n, t], 0 where
// t == ignore_index. C >= 1 when N >= 1.
void cross_entropy_forward(DType dtype, int64_t N, int64_t C, const void* logits, const int64_t* target,
                           int64_t ignore_index, void* loss, void* lse);

// grad_logits (N, C) = grad_loss[n] * (exp(logits - lse[n]) - onehot(t)); zero rows where ignored.
void cross_entropy_backward(DType dtype, int64_t N, int64_t C, const void* logits, const int64_t* target,
                            int64_t ignore_index, const void* lse, const void* grad_loss, void* grad_logits);

// loss (N) = -logp[n, target[n]], 0 where ignored. logp (N, C).
void nll_loss_forward(DType dtype, int64_t N, int64_t C, const void* logp, const int64_t* target,
                      int64_t ignore_index, void* loss);

// grad_logp (N, C): -grad_loss[n] at (n, target[n]) for non-ignored rows, 0 elsewhere.
void nll_loss_backward(DType dtype, int64_t N, int64_t C, const int64_t* target, int64_t ignore_index,
                       const void* grad_loss, void* grad_logp);

}  // namespace dlcore::cuda

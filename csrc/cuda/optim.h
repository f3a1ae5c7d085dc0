// Host entry points of the fused CUDA optimizer steps (csrc/cuda/optim.cu): one launch updates
// every parameter of a list (same dtype, same device) in place. Plain C++ (no CUDA types) so
// g++-compiled bindings include it. The per-tensor records below are copied as they are into a
// device table, so they hold device addresses and stay plain data.
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/dtype.h"

namespace dlcore::cuda {

// One SGD parameter: param, grad, momentum_buffer (n) contiguous; momentum_buffer is null when
// momentum == 0. init_buffer: the buffer is set to d on this step (its first), as torch does.
struct SgdTensor {
  void* param;
  const void* grad;
  void* momentum_buffer;
  int64_t n;
  int64_t init_buffer;  // 0 / 1 (int64 keeps the record's layout free of padding)
};

// Scalars as python/dlcore/optim/sgd.py uses them (Python doubles, cast to the dtype in the kernel).
struct SgdOptions {
  double lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, maximize;
};

// One Adam parameter: param, grad, exp_avg, exp_avg_sq (n) contiguous, max_exp_avg_sq (n) or null
// without amsgrad. step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t) for
// this parameter's step t (computed by the caller exactly as python/dlcore/optim/adam.py does).
struct AdamTensor {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  void* max_exp_avg_sq;
  int64_t n;
  double step_size;
  double bias_correction2_sqrt;
};

// decay = 1 - lr * weight_decay (AdamW), one_minus_beta* = 1 - beta*: computed by the caller in
// Python so every scalar has the bits the CPU optimizer uses.
struct AdamOptions {
  double one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay;
  bool amsgrad, maximize, decoupled;
};

// Every record's param is on `device` (the current device: the caller makes it so), all of
// dtype `dtype` (float32 / float64).
void sgd_step(DType dtype, int device, const std::vector<SgdTensor>& tensors, const SgdOptions& options);
void adam_step(DType dtype, int device, const std::vector<AdamTensor>& tensors, const AdamOptions& options);

}  // namespace dlcore::cuda

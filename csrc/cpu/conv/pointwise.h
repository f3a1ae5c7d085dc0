// conv2d's direct path for pointwise convolutions (1x1 kernel, stride 1, no padding): each
// image is y[n] (C_out, P) = w (C_out, C) @ x[n] (C, P) per group, with x[n] read in place
// instead of packed; backward_weight likewise reads x[n]'s rows in place. See pointwise.cpp;
// csrc/cpu/ref/conv2d.cpp decides when it runs.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

namespace dlcore::cpu::DLCORE_ISA {

// 1x1 kernel, stride 1, padding 0 (dilation then does not matter).
bool pointwise_fits(const Conv2dShape& s);

// y (N, C_out, H, W) := conv of x (N, C, H, W) with w (C_out, Cg, 1, 1) (+ bias (C_out) or
// null), whole images per thread. Preconditions: pointwise_fits(s).
template <class T>
void pointwise_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// grad_w (C_out, Cg, 1, 1) := sum_n grad_y[n] (C_out, P) @ x[n]^T per group, per-thread
// partial sums added in thread order (deterministic for a given thread count).
// Preconditions: pointwise_fits(s).
template <class T>
void pointwise_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w);

}  // namespace dlcore::cpu::DLCORE_ISA

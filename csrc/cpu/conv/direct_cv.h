// The channels-in-vector variant of conv2d's direct path (stride 1, dilation 1): output
// channels across the vector lanes, output positions (or taps) as broadcast scalars, so no
// junk positions are computed. See direct_cv.cpp for the method, layout and measured numbers;
// csrc/cpu/ref/conv2d.cpp decides when it runs.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

namespace dlcore::cpu::DLCORE_ISA {

// Geometry the variant handles: stride 1 and dilation 1 (the tap offsets are immediates).
bool cv_fits(const Conv2dShape& s);

// Share of the vector lanes doing useful work: Cog / (Cog rounded up to the vector), for the
// rule that compares it with the wide variant's share.
template <class T>
double cv_lane_use(const Conv2dShape& s);

// y (N, C_out, OH, OW) := conv of x (N, C, H, W) with w (C_out, Cg, KH, KW) (+ bias (C_out)
// or null), whole images per thread. Preconditions: cv_fits(s).
template <class T>
void cv_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// grad_w (C_out, Cg, KH, KW) := sum_n grad_y[n] (C_out, P) @ col[n]^T, per-thread partial sums
// added in thread order (deterministic for a given thread count). Preconditions: cv_fits(s).
template <class T>
void cv_backward_weight(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w);

}  // namespace dlcore::cpu::DLCORE_ISA

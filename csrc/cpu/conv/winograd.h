// Winograd F(2x2, 3x3) convolution, float32, for the shapes dlcore::winograd_fits accepts
// (3x3, stride 1, dilation 1, padding <= 2, groups 1). See winograd.cpp for the method,
// the layout, the error measured against float64 and the speed.
#pragma once
#include <cstdint>

#include "core/conv_algo.h"
#include "core/kernel_args.h"

namespace dlcore::cpu::DLCORE_ISA {

// y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C, 3, 3)) + bias (C_out) or null.
void winograd_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      float* y);

// grad_x (N, C, H, W) := the input gradient from w and grad_y (N, C_out, OH, OW).
void winograd_backward_input(const Conv2dShape& s, const float* w, const float* grad_y,
                             float* grad_x);

// grad_w (C_out, C, 3, 3) := the weight gradient from x and grad_y (bias gradient: the caller).
void winograd_backward_weight(const Conv2dShape& s, const float* x, const float* grad_y,
                              float* grad_w);

// The auto rule: whether Winograd is the fastest algorithm for direction `dir` of `s` (a
// shape winograd_fits accepts), as measured on the benchmark shapes.
bool winograd_preferred(const Conv2dShape& s, ConvDirection dir);

}  // namespace dlcore::cpu::DLCORE_ISA

// conv2d on the GPU (csrc/cuda/conv.cu): forward, backward_input, backward_weight, NCHW,
// float32 / float64, any stride, padding, dilation and groups. Plain C++ (no CUDA types), so
// the g++-compiled bindings include it. Pointers are device addresses of C-contiguous arrays
// on the current device; every output is overwritten; all work is queued on current_stream().
#pragma once
#include <cstdint>

#include "core/kernel_args.h"  // Conv2dShape: the geometry the CPU kernels take too
#include "cuda/dtype.h"

namespace dlcore::cuda {

// Throws std::invalid_argument naming `op` unless `s` is a geometry the kernels accept: every
// size >= 1, stride and dilation >= 1, padding >= 0, C and C_out divisible by groups, OH and
// OW equal to (H + 2*pad_h - dil_h*(KH-1) - 1) / stride_h + 1 (same for W), and every tensor
// (and one image's column matrix) under 2^50 elements.
void check_conv2d_shape(const char* op, const Conv2dShape& s);

// y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out)
// (bias may be null).
void conv2d_forward(DType dtype, const Conv2dShape& s, const void* x, const void* w, const void* bias,
                    void* y);

// grad_x (N, C, H, W) := the input gradient from w and grad_y (N, C_out, OH, OW).
void conv2d_backward_input(DType dtype, const Conv2dShape& s, const void* w, const void* grad_y,
                           void* grad_x);

// grad_w (C_out, C/groups, KH, KW) := the weight gradient from x and grad_y; grad_bias (C_out)
// := grad_y summed over (N, OH, OW) when not null. Deterministic: a fixed summation order.
void conv2d_backward_weight(DType dtype, const Conv2dShape& s, const void* x, const void* grad_y,
                            void* grad_w, void* grad_bias);

}  // namespace dlcore::cuda

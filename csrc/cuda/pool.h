// max_pool2d and avg_pool2d on the GPU (csrc/cuda/pool.cu): forward and backward, NCHW,
// float32 / float64, the CPU kernels' conventions (csrc/cpu/ref/pool.cpp). Plain C++ (no CUDA
// types), so the g++-compiled bindings include it. Pointers are device addresses of
// C-contiguous arrays on the current device; every output is overwritten; all work is queued
// on current_stream(). N may be 0 (nothing is launched).
#pragma once
#include <cstdint>

#include "core/kernel_args.h"  // Pool2dShape: the geometry the CPU kernels take too
#include "cuda/dtype.h"

namespace dlcore::cuda {

// Throws std::invalid_argument naming `op` unless `s` is a geometry the kernels accept:
// N >= 0, C, H, W, kernel, stride, dilation >= 1, 0 <= padding <= kernel / 2, and OH, OW equal
// to PyTorch's pooling output size in floor or ceil mode (and >= 1). `avg` also requires
// dilation 1 (avg_pool2d has none).
void check_pool2d_shape(const char* op, const Pool2dShape& s, bool ceil_mode, bool avg);

// y (N, C, OH, OW) := max over each window; index (N, C, OH, OW) int64 := h*W + w of the max
// in its plane: first in row-major window order on ties, a NaN always wins (a later NaN takes
// over), -inf and -1 for a window with no in-bounds element.
void max_pool2d_forward(DType dtype, const Pool2dShape& s, const void* x, void* y, int64_t* index);

// grad_x (N, C, H, W) := sum of grad_y (N, C, OH, OW) over the windows whose index names that
// pixel. Index values that do not name a pixel of their own window are ignored (forward never
// makes them), so no index value can reach memory outside grad_x.
void max_pool2d_backward(DType dtype, const Pool2dShape& s, const int64_t* index, const void* grad_y,
                         void* grad_x);

// y (N, C, OH, OW) := sum over each window's in-bounds elements / divisor (PyTorch's rule,
// s.count_include_pad picks it).
void avg_pool2d_forward(DType dtype, const Pool2dShape& s, const void* x, void* y);

// grad_x (N, C, H, W) := sum of grad_y / divisor over the windows that hold each pixel.
void avg_pool2d_backward(DType dtype, const Pool2dShape& s, const void* grad_y, void* grad_x);

}  // namespace dlcore::cuda

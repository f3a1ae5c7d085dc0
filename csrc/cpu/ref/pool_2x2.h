// The float 2x2 stride-2 pooling kernels of one ISA (csrc/cpu/ref/pool_avx512.cpp,
// pool_avx2.cpp), called by csrc/cpu/ref/pool.cpp for the interior of each (n, c) plane.
//
// Contract: a rectangle of whole 2x2 windows, stride 2, no dilation, every tap inside the
// plane. x points at the top-left tap of the rectangle's first window, input rows W floats
// apart; the rectangle is rows x cols windows; y (and grad_y, and an index) rows ld elements
// apart; plane_base is the (H, W)-plane offset of x's first element, used for the plane index,
// which must fit int32 (H*W < 2^31). At most one of plane_index (int64 h*W + w) and
// window_index (uint8 kh*2 + kw) is non-null. Backward overwrites grad_x's 2*rows x 2*cols
// block at gx (rows W apart) and nothing else. The rules are those of pool.cpp's header (max:
// row-major taps, `v > best || isnan(v)`, bitwise equal to the portable code; avg: the sum in
// float times 1/4, exact scaling).
#pragma once
#include <cstdint>

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

struct Pool2x2Rect {
  int64_t W;           // input row stride (floats)
  int64_t rows, cols;  // windows
  int64_t ld;          // output row stride (elements)
  int64_t plane_base;  // plane offset of the first window's top-left tap
};

// Defined by this ISA's copy of pool_avx512.cpp or pool_avx2.cpp (the generic copy has none:
// pool.cpp calls them only where kHasPool2x2).
void max_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y, int64_t* plane_index,
                              uint8_t* window_index);
void max_pool2d_backward_2x2s2(const Pool2x2Rect& r, const int64_t* plane_index, const uint8_t* window_index,
                               const float* grad_y, float* grad_x);
void avg_pool2d_forward_2x2s2(const Pool2x2Rect& r, const float* x, float* y);
void avg_pool2d_backward_2x2s2(const Pool2x2Rect& r, const float* grad_y, float* grad_x);

}  // namespace dlcore::cpu::DLCORE_ISA

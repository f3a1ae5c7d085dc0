// The zero-padded image frame the direct convolution kernels read (csrc/cpu/ref/conv2d.cpp's
// wide variant, csrc/cpu/conv/direct_cv.cpp).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/kernel_args.h"

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

// xp (C, Hp, Wp), planes `plane` = Hp*Wp apart: the interior at (pad_h, pad_w) := x_n (C, H, W).
// Only the interior is written: the caller zeroes xp (borders, slack) once per thread, not per
// image (the fill had been ~2x the copy: 5.2K of 6.8K writes per image for LeNet conv2's
// backward_input).
template <class T>
void copy_into_padded_frame(const Conv2dShape& s, int64_t plane, int64_t Wp, const T* __restrict x_n,
                            T* __restrict xp) {
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t h = 0; h < s.H; ++h) {
      const T* __restrict src = x_n + (c * s.H + h) * s.W;                   // (W)
      T* __restrict dst = xp + c * plane + (h + s.pad_h) * Wp + s.pad_w;  // (W)
      std::copy(src, src + s.W, dst);
    }
}

}  // namespace dlcore::cpu::DLCORE_ISA

// The batch-in-vector variant of conv2d's direct path (stride 1, dilation 1, one group): V
// images across the vector lanes, weights as broadcast scalars, so neither junk positions nor
// unused channel lanes are computed, and the taps that fall wholly on zero padding are skipped.
// It serves backward_input with few input channels (LeNet conv2: 6), whose transposed problem
// has 6 output channels and half its taps on padding. See direct_bv.cpp for the method, layout
// and measured numbers; csrc/cpu/ref/conv2d.cpp decides when it runs.
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

namespace dlcore::cpu::DLCORE_ISA {

// Geometry the variant handles: stride 1, dilation 1, groups 1.
bool bv_fits(const Conv2dShape& s);

// y (N, C_out, OH, OW) := conv of x (N, C, H, W) with w (C_out, C, KH, KW), no bias: groups of
// V images per thread. Preconditions: bv_fits(s).
template <class T>
void bv_forward(const Conv2dShape& s, const T* x, const T* w, T* y);

}  // namespace dlcore::cpu::DLCORE_ISA

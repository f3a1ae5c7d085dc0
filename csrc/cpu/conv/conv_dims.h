// Sizes every conv2d path derives from a Conv2dShape (csrc/cpu/ref/conv2d.cpp, the direct
// variants in csrc/cpu/conv/).
#pragma once
#include <cstdint>

#include "core/kernel_args.h"

#ifndef DLCORE_ISA
#error "csrc/cpu sources must be compiled with -DDLCORE_ISA=<generic|avx2|avx512>"
#endif

namespace dlcore::cpu::DLCORE_ISA {

struct ConvDims {
  int64_t G, Cg, Cog;  // groups, input / output channels per group
  int64_t Kc;          // Cg*KH*KW: the gemm reduction length of forward
  int64_t P;           // OH*OW: output positions per image
  int64_t HW;          // H*W: input positions per image
  int64_t col_size;    // G*Kc*P: one image's column matrix
  bool direct;         // 1x1, stride 1, no padding: x[n] is its own column matrix
};

inline ConvDims dims_of(const Conv2dShape& s) {
  ConvDims d;
  d.G = s.groups;
  d.Cg = s.C / s.groups;
  d.Cog = s.C_out / s.groups;
  d.Kc = d.Cg * s.KH * s.KW;
  d.P = s.OH * s.OW;
  d.HW = s.H * s.W;
  d.col_size = d.G * d.Kc * d.P;
  d.direct = s.KH == 1 && s.KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
             s.pad_w == 0;
  return d;
}

// Balanced chunks: n items in ceil(n / max) chunks of at most `max`; returns the chunk size
// (the direct variants' tile widths: 14 columns as 4 + 4 + 4 + 2 at max 4, 10 + 10 + 10 of 30).
inline int64_t balanced_chunk(int64_t n, int64_t max) {
  const int64_t chunks = (n + max - 1) / max;
  return (n + chunks - 1) / chunks;
}

}  // namespace dlcore::cpu::DLCORE_ISA

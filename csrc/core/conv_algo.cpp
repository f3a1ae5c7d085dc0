#include "core/conv_algo.h"

namespace dlcore {

const char* conv_algo_name(ConvAlgo algo) {
  switch (algo) {
    case ConvAlgo::kAuto: return "auto";
    case ConvAlgo::kGemm: return "gemm";
    case ConvAlgo::kDirect: return "direct";
    case ConvAlgo::kWinograd: return "winograd";
  }
  return "?";
}

bool parse_conv_algo(const std::string& name, ConvAlgo& algo) {
  for (ConvAlgo a : {ConvAlgo::kAuto, ConvAlgo::kGemm, ConvAlgo::kDirect, ConvAlgo::kWinograd})
    if (name == conv_algo_name(a)) {
      algo = a;
      return true;
    }
  return false;
}

bool winograd_fits(const Conv2dShape& s, bool is_float32) {
  return is_float32 && s.KH == 3 && s.KW == 3 && s.stride_h == 1 && s.stride_w == 1 &&
         s.dil_h == 1 && s.dil_w == 1 && s.pad_h <= 2 && s.pad_w <= 2 && s.groups == 1;
}

std::string conv_algo_refusal(ConvAlgo algo, ConvDirection dir, const Conv2dShape& s,
                              bool is_float32) {
  const bool stride1 = s.stride_h == 1 && s.stride_w == 1;
  switch (algo) {
    case ConvAlgo::kAuto:
    case ConvAlgo::kGemm:
      return "";
    case ConvAlgo::kDirect:
      if (!stride1) return "the direct path needs stride 1";
      // backward_input runs as a forward conv of grad_y padded by (K-1)*dil - pad.
      if (dir == ConvDirection::kBackwardInput &&
          ((s.KH - 1) * s.dil_h < s.pad_h || (s.KW - 1) * s.dil_w < s.pad_w))
        return "the direct backward_input needs padding <= (kernel - 1) * dilation";
      return "";
    case ConvAlgo::kWinograd:
      if (!winograd_fits(s, is_float32))
        return "Winograd F(2x2, 3x3) needs float32, a 3x3 kernel, stride 1, dilation 1, "
               "padding <= 2 and groups 1";
      return "";
  }
  return "unknown algorithm";
}

}  // namespace dlcore
